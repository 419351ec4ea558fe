// The Grafana dashboard (deploy/grafana/dns-shaper.json) must only query metrics the daemon exports:
// the list comes from rendering a real Metrics instance, so a typo or a renamed metric fails here. It
// must stay readable at fleet scale: a fleet overview row (counts, top 10 nodes with a drill-down
// link), and no panel whose series grow with the number of nodes (promtool evaluates every query on
// 40 synthetic nodes, each exporting what a real daemon exports).
import t from 'tap'
import { readFileSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { exportedNames, exportedText, metricNames } from './helpers/promql.js'
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml'
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
  fieldConfig?: { defaults?: { links?: { title: string; url: string }[] } }
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
      // `up` is Prometheus's own series for every target.
      t.ok(exported.has(name) || name === 'up', `${e.panel}/${e.refId}: ${name} is exported`)
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
  const podMonitor = readFileSync(
    new URL('../deploy/kubernetes/components/monitoring/podmonitor.yaml', import.meta.url),
    'utf8',
  )
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

t.test('a fleet overview row first: counts and top-10 nodes, each line a drill-down to its node', async t => {
  const first = dashboard.panels[0]!
  t.same([first.type, first.title, first.gridPos.y], ['row', 'Fleet overview', 0], 'the first row')
  const next = dashboard.panels.find(p => p.type === 'row' && p.gridPos.y > 0)!
  const overview = dashboard.panels.filter(p => p.type !== 'row' && p.gridPos.y < next.gridPos.y)
  const counts = overview.filter(p => p.type === 'stat')
  t.ok(counts.length >= 4, `${counts.length} count tiles`)
  for (const p of counts)
    for (const tg of p.targets ?? [])
      t.match(tg.expr ?? '', /^count\(.*\) or vector\(0\)$/, `${p.title}: a count across nodes, 0 rather than no data`)
  const tops = overview.filter(p => p.type === 'timeseries')
  t.ok(tops.length >= 3, `${tops.length} top-10 panels`)
  for (const p of [...tops, ...queryPanels.filter(q => (q.targets ?? []).some(tg => /^topk\(/.test(tg.expr ?? '')))]) {
    for (const tg of p.targets ?? []) t.match(tg.expr ?? '', /^topk\((5|10), .*by \(node/, `${p.title}: top nodes`)
    const link = p.fieldConfig?.defaults?.links?.find(l => l.url.includes('var-node=${__field.labels.node}'))
    t.ok(link, `${p.title}: a line links to this dashboard with that node selected`)
    t.match(
      link?.url ?? '',
      /^\/d\/dns-shaper\/.*\$\{__url_time_range\}/,
      `${p.title}: same dashboard, same time range`,
    )
  }
})

/** Input series for `nodes` synthetic nodes, each exporting what one real daemon exports (only the
 * metrics in `names`), as promtool's unit tests take them: counters and gauges rising by one a step. */
function fleetSeries(exposition: string, names: Set<string>, nodes: number): { series: string; values: string }[] {
  const out: { series: string; values: string }[] = []
  const samples = exposition.split('\n').filter(l => l && !l.startsWith('#'))
  for (let i = 0; i < nodes; i++) {
    const target = `job="kube-system/dns-shaper",instance="198.51.100.${i + 1}:9363",node="node-${i}"`
    out.push({ series: `up{${target}}`, values: '1x40' })
    for (const line of samples) {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? /.exec(line)
      if (!m || !names.has(m[1]!)) continue
      out.push({ series: `${m[1]}{${[m[2], target].filter(Boolean).join(',')}}`, values: '0+1x40' })
    }
  }
  return out
}

t.test(
  'no panel grows with the fleet: every query, node=All, on 40 nodes returns at most 20 series',
  { skip: noPromtool },
  async t => {
    const NODES = 40
    const LIMIT = 20
    const used = new Set(exprs.flatMap(e => metricNames(e.expr)))
    const input = fleetSeries(await exportedText(), used, NODES)
    t.ok(input.length > NODES * 20, `${input.length} input series`)
    const dir = mkdtempSync(path.join(tmpdir(), 'dns-shaper-grafana-fleet-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    // One alert per query: it fires when the query returns more than LIMIT series.
    const run = (queries: { name: string; expr: string }[]) => {
      const rules = queries.map(q => ({ alert: q.name, expr: `count(${substituteVariables(q.expr)}) > ${LIMIT}` }))
      writeFileSync(path.join(dir, 'rules.yml'), stringifyYaml({ groups: [{ name: 'fleet', rules }] }))
      const tests = {
        rule_files: ['rules.yml'],
        evaluation_interval: '1m',
        tests: [
          {
            interval: '15s',
            input_series: input,
            alert_rule_test: rules.map(r => ({ eval_time: '9m', alertname: r.alert, exp_alerts: [] })),
          },
        ],
      }
      writeFileSync(path.join(dir, 'tests.yml'), stringifyYaml(tests))
      return spawnSync('promtool', ['test', 'rules', 'tests.yml'], { cwd: dir, encoding: 'utf8', timeout: 120000 })
    }
    const queries = exprs.map((e, i) => ({ name: `panel_${i}_${e.refId ?? ''}`, expr: e.expr, title: e.panel }))
    const r = run(queries)
    const failing = queries.filter(q => new RegExp(`alertname: ${q.name}\\b|${q.name}`).test(`${r.stdout}${r.stderr}`))
    t.equal(r.status, 0, `every query stays within ${LIMIT} series: ${failing.map(q => q.title).join(', ') || 'ok'}`)
    // And the check can fail: one line per node is caught.
    const perNode = run([{ name: 'per_node', expr: 'sum by (node) (dns_shaper_held_packets{node=~"$node"})' }])
    t.not(perNode.status, 0, 'a query drawing one line per node fails it')
    t.match(`${perNode.stdout}${perNode.stderr}`, /per_node/)
  },
)
