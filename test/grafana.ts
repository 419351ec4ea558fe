// The Grafana dashboard (deploy/grafana/dns-shaper.json) must only query metrics the daemon exports:
// the list comes from rendering a real Metrics instance, so a typo or a renamed metric fails here.
import t from 'tap'
import { readFileSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { exportedNames, metricNames } from './helpers/promql.js'
import { parse as parseYaml } from 'yaml'
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap'
import { DASHBOARD_CONFIGMAP, DASHBOARD_KEY, renderDashboardConfigMap } from '../scripts/dashboard-configmap.mjs'

const DASHBOARD = fileURLToPath(new URL('../deploy/grafana/dns-shaper.json', import.meta.url))

interface Target {
  expr?: string
  refId?: string
  datasource?: { type?: string; uid?: string }
}
interface Panel {
  id: number
  type: string
  title: string
  gridPos: { x: number; y: number; w: number; h: number }
  targets?: Target[]
  datasource?: { uid?: string }
  panels?: Panel[]
}
interface Variable {
  name: string
  type: string
  query?: string | { query?: string }
}
interface Dashboard {
  uid: string
  title: string
  panels: Panel[]
  templating: { list: Variable[] }
}

const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard
const allPanels = dashboard.panels.flatMap(p => [p, ...(p.panels ?? [])])
const queryPanels = allPanels.filter(p => p.type !== 'row')
const exprs = queryPanels.flatMap(p =>
  (p.targets ?? []).map(tg => ({ panel: p.title, refId: tg.refId, expr: tg.expr ?? '' })),
)
const variableQueries = dashboard.templating.list
  .filter(v => v.type === 'query')
  .map(v => ({ name: v.name, query: typeof v.query === 'string' ? v.query : (v.query?.query ?? '') }))

t.test('the extractor finds metric names and nothing else', async t => {
  t.same(
    metricNames(
      'sum by (action) (rate(dns_shaper_packets_total{instance=~"$instance", action="held"}[$__rate_interval]))',
    ),
    ['dns_shaper_packets_total'],
  )
  t.same(metricNames('histogram_quantile(0.99, sum by (le) (rate(dns_shaper_hold_seconds_bucket[5m])))'), [
    'dns_shaper_hold_seconds_bucket',
  ])
  t.same(metricNames('sum(rate(a_sum[1m])) / sum(rate(a_count[1m])) > 0 and on (instance) b offset 5m'), [
    'a_sum',
    'a_count',
    'b',
  ])
  t.same(metricNames('max(x{le="0.005"}) by (job) unless ignoring(queue) group_left y'), ['x', 'y'])
  t.same(
    metricNames('dns_shaper_helds_packets'),
    ['dns_shaper_helds_packets'],
    'a typo is kept, so the lookup below fails it',
  )
})

t.test('every metric the dashboard queries is one the daemon exports', async t => {
  const exported = await exportedNames()
  t.ok(
    exported.has('dns_shaper_hold_seconds_bucket') &&
      exported.has('dns_shaper_conntrack_clash_resolve_total') &&
      exported.has('dns_shaper_rules_installed'),
    'the exported list is complete',
  )
  t.notOk(exported.has('dns_shaper_helds_packets'))
  t.ok(exprs.length >= 20, `${exprs.length} target expressions`)
  const used = new Set<string>()
  for (const e of exprs) {
    t.not(e.expr.trim(), '', `${e.panel}/${e.refId}: has an expr`)
    for (const name of metricNames(e.expr)) {
      used.add(name)
      t.ok(exported.has(name), `${e.panel}/${e.refId}: ${name} is exported`)
    }
  }
  for (const v of variableQueries) {
    const sel = /^label_values\((.*),\s*\w+\)$/.exec(v.query)?.[1]
    t.ok(sel, `variable ${v.name}: label_values query`)
    for (const name of metricNames(sel ?? '')) t.ok(exported.has(name), `variable ${v.name}: ${name} is exported`)
  }
  const unused = [...exported].filter(n => n.startsWith('dns_shaper_') && !used.has(n))
  t.comment(`exported dns_shaper_* series not on the dashboard: ${unused.join(', ') || 'none'}`)
})

t.test('the panels the operators need are there', async t => {
  const uses = (name: string): boolean => exprs.some(e => metricNames(e.expr).includes(name))
  for (const name of [
    'dns_shaper_packets_total',
    'dns_shaper_held_packets',
    'dns_shaper_hold_seconds_bucket',
    'dns_shaper_verdict_latency_seconds_bucket',
    'dns_shaper_parse_failures_total',
    'dns_shaper_queue_dropped_total',
    'dns_shaper_queue_user_dropped_total',
    'dns_shaper_queue_waiting',
    'dns_shaper_conntrack_insert_failed_total',
    'dns_shaper_conntrack_clash_resolve_total',
    'dns_shaper_conntrack_drop_total',
    'dns_shaper_pair_released_total',
    'dns_shaper_rules_reinstalled_total',
    'dns_shaper_config_reloads_total',
    'dns_shaper_config_last_reload_successful',
    'dns_shaper_rules_installed',
    'dns_shaper_rules_sync_errors_total',
    'dns_shaper_rules_last_sync_timestamp_seconds',
    'dns_shaper_scrape_source_success',
    'dns_shaper_conntrack_source',
    'dns_shaper_build_info',
  ])
    t.ok(uses(name), `dashboard uses ${name}`)
  // The race made visible: the conntrack clash counters and the AAAA held rate in one panel.
  const race = queryPanels.find(p => {
    const e = (p.targets ?? []).map(tg => tg.expr ?? '')
    return (
      e.some(x => x.includes('conntrack_clash_resolve')) &&
      e.some(x => x.includes('conntrack_insert_failed')) &&
      e.some(x => /action="held"/.test(x) && /qtype="AAAA"/.test(x))
    )
  })
  t.ok(race, 'one panel has clash_resolve, insert_failed and the AAAA held rate side by side')
  const hold = queryPanels.find(p =>
    (p.targets ?? []).some(tg => /histogram_quantile\(0\.5,.*dns_shaper_hold_seconds_bucket/.test(tg.expr ?? '')),
  )
  t.ok(hold, 'hold p50 from the histogram')
  t.ok(
    hold?.targets?.some(tg => /histogram_quantile\(0\.99,/.test(tg.expr ?? '')),
    'and p99 in the same panel',
  )
  t.ok(
    hold?.targets?.some(tg => (tg.expr ?? '').includes('dns_shaper_hold_configured_seconds')),
    'and the configured hold beside them, as the daemon exports it',
  )
})

t.test('variables: cluster, job, and the node label the PodMonitor sets', async t => {
  const podMonitor = readFileSync(new URL('../deploy/kubernetes/components/monitoring/podmonitor.yaml', import.meta.url), 'utf8')
  t.match(
    podMonitor,
    /sourceLabels: \[__meta_kubernetes_pod_node_name\]\s+targetLabel: node/,
    'the PodMonitor sets node',
  )
  const byName = new Map(variableQueries.map(v => [v.name, v.query]))
  t.same(
    dashboard.templating.list.map(v => v.name),
    ['datasource', 'cluster', 'job', 'node'],
  )
  t.match(byName.get('cluster'), /^label_values\(dns_shaper_\w+, cluster\)$/)
  t.match(byName.get('node'), /^label_values\(dns_shaper_\w+\{cluster=~"\$cluster", job=~"\$job"\}, node\)$/)
  const all = dashboard.templating.list as (Variable & { allValue?: string })[]
  t.equal(all.find(v => v.name === 'cluster')?.allValue, '.*', 'All matches series without a cluster label too')
  t.equal(all.find(v => v.name === 'node')?.allValue, '.*')
  for (const e of exprs) {
    t.notMatch(e.expr, /\$instance|instance=~/, `${e.panel}/${e.refId}: no instance variable left`)
    if (metricNames(e.expr).some(n => n.startsWith('dns_shaper_') || n.startsWith('process_')))
      t.match(
        e.expr,
        /cluster=~"\$cluster", job=~"\$job", node=~"\$node"/,
        `${e.panel}/${e.refId}: filtered by the variables`,
      )
  }
})

t.test('rule health panels', async t => {
  const row = dashboard.panels.find(p => p.type === 'row' && p.title === 'Rule health')
  t.ok(row, 'a Rule health row')
  const below = dashboard.panels.filter(p => p.type !== 'row' && p.gridPos.y > row!.gridPos.y)
  const nextRow = dashboard.panels.find(p => p.type === 'row' && p.gridPos.y > row!.gridPos.y)
  const inRow = below.filter(p => !nextRow || p.gridPos.y < nextRow.gridPos.y)
  const uses = (name: string): boolean =>
    inRow.some(p => (p.targets ?? []).some(tg => metricNames(tg.expr ?? '').includes(name)))
  for (const n of [
    'dns_shaper_rules_installed',
    'dns_shaper_rules_sync_errors_total',
    'dns_shaper_rules_last_sync_timestamp_seconds',
    'dns_shaper_rules_reinstalled_total',
  ])
    t.ok(uses(n), `the row shows ${n}`)
})

t.test('dashboard structure: ids, refIds, data source, layout', async t => {
  t.equal(dashboard.uid, 'dns-shaper')
  const ids = allPanels.map(p => p.id)
  t.equal(new Set(ids).size, ids.length, 'panel ids unique')
  for (const p of queryPanels) {
    t.equal(p.datasource?.uid, '${datasource}', `${p.title}: uses the data source variable`)
    const refs = (p.targets ?? []).map(tg => tg.refId)
    t.ok(refs.length > 0, `${p.title}: has targets`)
    t.equal(new Set(refs).size, refs.length, `${p.title}: refIds unique`)
    t.ok(p.gridPos.x >= 0 && p.gridPos.x + p.gridPos.w <= 24 && p.gridPos.h > 0, `${p.title}: fits the 24-column grid`)
  }
  // No two panels overlap.
  const boxes = allPanels.map(p => p.gridPos)
  let overlaps = 0
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i]!,
        b = boxes[j]!
      if (a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h) overlaps++
    }
  }
  t.equal(overlaps, 0, 'no overlapping panels')
  t.ok(
    dashboard.templating.list.some(v => v.name === 'datasource' && v.type === 'datasource'),
    'data source variable',
  )
})

/** Grafana's variables replaced by values Prometheus accepts. */
function substituteVariables(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__range', '1h')
    .replaceAll('$cluster', '.*')
    .replaceAll('$node', '.*')
    .replaceAll('$job', '.+')
}

const noPromtool = spawnSync('promtool', ['--version']).error
  ? 'promtool not installed (Debian package prometheus)'
  : false
t.test('every expression is valid PromQL (promtool check rules)', { skip: noPromtool }, async t => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dns-shaper-grafana-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const rules = exprs.map((e, i) => ({ record: `dashboard:expr_${i}`, expr: substituteVariables(e.expr) }))
  t.notOk(
    rules.some(r => r.expr.includes('$')),
    'every Grafana variable substituted',
  )
  const file = path.join(dir, 'rules.yml')
  writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboard', rules }] }))
  const ok = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8', timeout: 20000 })
  t.equal(ok.status, 0, `promtool accepts all ${rules.length}: ${ok.stdout}${ok.stderr}`)
  // And the check can fail: a broken expression is rejected.
  writeFileSync(
    file,
    JSON.stringify({
      groups: [{ name: 'broken', rules: [{ record: 'x:y', expr: 'sum(rate(dns_shaper_packets_total[1m])' }] }],
    }),
  )
  const bad = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8', timeout: 20000 })
  t.not(bad.status, 0, 'promtool rejects an unbalanced expression')
})

t.test('the dashboard ConfigMap for the Grafana sidecar is generated from the JSON', async t => {
  const text = readFileSync(DASHBOARD_CONFIGMAP, 'utf8')
  const json = readFileSync(DASHBOARD, 'utf8')
  t.equal(text, renderDashboardConfigMap(json), 'up to date: run `node scripts/dashboard-configmap.mjs` after editing')
  const cm = parseYaml(text) as { metadata: { labels: Record<string, string> }; data: Record<string, string> }
  t.doesNotThrow(() => new ConfigMap(cm as never).validate(), 'a valid v1 ConfigMap')
  t.equal(cm.metadata.labels.grafana_dashboard, '1', 'labelled for the sidecar (a string, as labels must be)')
  t.equal(cm.data[DASHBOARD_KEY], json, 'carries the dashboard byte for byte')
  t.ok(Buffer.byteLength(text) < 262144, 'small enough for kubectl apply (last-applied annotation limit)')
  const edited = renderDashboardConfigMap(json.replace('"title": "dns-shaper"', '"title": "edited"'))
  t.not(edited, text, 'an edit of the JSON makes the check fail')
})
