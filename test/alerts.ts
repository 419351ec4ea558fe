// deploy/kubernetes/components/monitoring/prometheusrule.yaml: a valid PrometheusRule (operator
// schema, no unknown fields), accepted by promtool, each alert firing and staying quiet on the series
// in test/fixtures/alerts/dns-shaper.test.yaml (promtool test rules, on the rules as
// deploy/variants/monitoring renders them), each with a severity, a summary that names the node on
// either scrape path, an absolute runbook link to a section that exists in docs/metrics.md, and
// naming only metrics the daemon exports (or kube-state-metrics' node series).
import t from 'tap'
import { readFileSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parse, parseAllDocuments, stringify } from 'yaml'
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule'
import { fileURLToPath } from 'node:url'
import { exportedNames, metricNames } from './helpers/promql.js'
import { typeErrors } from './helpers/model-types.js'
import { renderKustomization } from './helpers/kustomize.js'

const COMPONENT = new URL('../deploy/kubernetes/components/monitoring/', import.meta.url)
const RULE_FILE = new URL('prometheusrule.yaml', COMPONENT)
const VARIANT = new URL('../deploy/variants/monitoring/', import.meta.url)
const TESTS_FILE = new URL('./fixtures/alerts/dns-shaper.test.yaml', import.meta.url)
const METRICS_DOC = new URL('../docs/metrics.md', import.meta.url)
const KUSTOMIZATION = new URL('../deploy/kubernetes/kustomization.yaml', import.meta.url)
/** Series Prometheus itself records for every target, and kube-state-metrics' node state (cordoned,
 * not ready), which the target-down alerts leave out. Not exported by the daemon. */
const SCRAPE_SERIES = new Set(['up', 'kube_node_status_condition', 'kube_node_spec_unschedulable'])
const SEVERITIES = ['critical', 'warning', 'info']

interface Rule {
  alert?: string
  record?: string
  expr: string
  for?: string
  labels?: Record<string, string>
  annotations?: Record<string, string>
}
interface Group {
  name: string
  rules: Rule[]
}

const docs = parseAllDocuments(readFileSync(RULE_FILE, 'utf8'))
const obj = docs[0]!.toJS() as { kind: string; metadata: { namespace?: string }; spec: { groups: Group[] } }
/** The rules as the monitoring variant applies them: runbook links carry its base URL. */
const rendered = renderKustomization(fileURLToPath(VARIANT)).find(o => o.kind === 'PrometheusRule')!
const groups = rendered.spec.groups as Group[]
const settings = parse(readFileSync(new URL('settings.yaml', VARIANT), 'utf8')) as { data: Record<string, string> }
const RUNBOOK_BASE = settings.data['runbook-base-url']!
const alerts = groups.flatMap(g => g.rules).filter((r): r is Rule & { alert: string } => r.alert !== undefined)

t.test('a valid PrometheusRule: operator schema, no unknown fields, one document', async t => {
  t.equal(docs.length, 1)
  t.same(
    docs.flatMap(d => d.errors.map(e => e.message)),
    [],
  )
  const raw = obj.spec.groups.flatMap(g => g.rules).filter(r => r.alert)
  t.ok(
    raw.every(r => /^https:\/\/[^#]+#[a-z]+$/.test(r.annotations?.runbook_url ?? '')),
    'applied without kustomize too, every runbook link is absolute',
  )
  t.equal(obj.kind, 'PrometheusRule')
  t.doesNotThrow(() => new PrometheusRule(obj as never).validate(), 'monitoring.coreos.com/v1 schema')
  const from = '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule'
  t.same(typeErrors(obj, 'IPrometheusRule', from), [], 'no unknown or mistyped fields')
  const typo = structuredClone(obj) as unknown as { spec: { groups: { rules: Record<string, unknown>[] }[] } }
  typo.spec.groups[0]!.rules[0]!.anotations = {}
  t.match(typeErrors(typo, 'IPrometheusRule', from).join('\n'), /anotations/, 'and a misspelt field is caught')
})

t.test('a kustomize component, not in the base; no namespace of its own', async t => {
  const k = parse(readFileSync(KUSTOMIZATION, 'utf8')) as { namespace: string; resources: string[] }
  t.notOk(
    k.resources.some(r => r.includes('prometheusrule')),
    'not a base resource: it needs the operator CRDs',
  )
  const c = parse(readFileSync(new URL('kustomization.yaml', COMPONENT), 'utf8')) as {
    kind: string
    resources: string[]
  }
  t.equal(c.kind, 'Component')
  t.ok(c.resources.includes('prometheusrule.yaml'), 'the monitoring component carries it')
  t.equal(obj.metadata.namespace, undefined, 'no hard-coded namespace: the kustomization gives it')
  t.equal((rendered.metadata as { namespace?: string }).namespace, k.namespace, 'rendered beside the DaemonSet')
})

t.test('the alerts operators were promised are there', async t => {
  t.same(
    alerts.map(a => a.alert),
    [
      'DnsShaperAbsent',
      'DnsShaperDown',
      'DnsShaperFleetDown',
      'DnsShaperDataPlaneNotRunning',
      'DnsShaperPacketsUnshaped',
      'DnsShaperConntrackInsertFailed',
      'DnsShaperHoldsSlow',
      'DnsShaperHeldOverflow',
      'DnsShaperQueriesLost',
      'DnsShaperRulesMissing',
      'DnsShaperRulesFlapping',
      'DnsShaperConfigReloadFailed',
      'DnsShaperConntrackCountersUnavailable',
    ],
  )
  const unshaped = alerts.find(a => a.alert === 'DnsShaperPacketsUnshaped')!
  for (const m of [
    'dns_shaper_packets_total',
    'dns_shaper_queue_user_dropped_total',
    'dns_shaper_enobufs_total',
    'dns_shaper_verdict_errors_total',
    'dns_shaper_send_errors_total',
  ])
    t.ok(metricNames(unshaped.expr).includes(m), `unshaped packets include ${m}`)
  t.equal(unshaped.for, '10m')
  const byName = (n: string): Rule => alerts.find(a => a.alert === n)!
  t.match(byName('DnsShaperAbsent').expr, /^absent\(/, 'a job-level absent() alert')
  t.equal(byName('DnsShaperDown').labels?.severity, 'warning', 'one node down is a warning')
  t.equal(byName('DnsShaperFleetDown').labels?.severity, 'critical', 'a share of the fleet down pages')
  for (const n of ['DnsShaperDown', 'DnsShaperFleetDown']) {
    t.match(
      byName(n).expr,
      /kube_node_status_condition\{condition="Ready", status="true"\} == 0/,
      `${n}: not-ready nodes left out`,
    )
    t.match(byName(n).expr, /kube_node_spec_unschedulable == 1/, `${n}: cordoned nodes left out`)
  }
  const slow = alerts.find(a => a.alert === 'DnsShaperHoldsSlow')!
  t.match(slow.expr, /histogram_quantile\(0\.99, rate\(dns_shaper_hold_seconds_bucket/)
  t.match(slow.expr, /dns_shaper_hold_configured_seconds/)
})

/** GitHub's anchor for a Markdown heading. */
const slug = (heading: string): string =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\w\- ]/g, '')
    .replace(/ /g, '-')

t.test('each alert: severity, summary, description, a runbook section with what to check and do', async t => {
  const doc = readFileSync(METRICS_DOC, 'utf8')
  const headings = [...doc.matchAll(/^#{2,4} (.+)$/gm)].map(m => ({ title: m[1]!, at: m.index }))
  const anchors = new Map(headings.map((h, i) => [slug(h.title), doc.slice(h.at, headings[i + 1]?.at ?? doc.length)]))
  for (const a of alerts) {
    t.ok(SEVERITIES.includes(a.labels?.severity ?? ''), `${a.alert}: severity ${a.labels?.severity}`)
    t.ok((a.annotations?.summary ?? '').length > 20, `${a.alert}: summary`)
    t.ok((a.annotations?.description ?? '').length > 20, `${a.alert}: description`)
    const url = a.annotations?.runbook_url ?? ''
    t.equal(url, `${RUNBOOK_BASE}#${a.alert.toLowerCase()}`, `${a.alert}: runbook_url from the one setting`)
    t.match(url, /^https:\/\//, `${a.alert}: absolute, clickable in Alertmanager`)
    // Where a node's series has no node label (the annotation scrape path), the summary names the pod.
    const summary = a.annotations?.summary ?? ''
    if (summary.includes('$labels.node'))
      t.match(
        summary,
        /\{\{ with \$labels\.node \}\}\{\{ \. \}\}\{\{ else \}\}\{\{ with \$labels\.pod \}\}/,
        `${a.alert}: summary falls back to pod, instance`,
      )
    const section = anchors.get(url.split('#')[1] ?? '')
    t.ok(section, `${a.alert}: docs/metrics.md has the section #${url.split('#')[1]}`)
    for (const part of ['What it means', 'How to check', 'What to do'])
      t.match(section ?? '', new RegExp(`\\*\\*${part}`), `${a.alert}: runbook says ${part.toLowerCase()}`)
  }
})

t.test('every metric an alert names is one the daemon exports', async t => {
  const exported = await exportedNames()
  t.ok(exported.has('dns_shaper_rules_installed'), 'rule health is in the exported list')
  const known = new Set([...exported, ...SCRAPE_SERIES])
  for (const a of alerts) {
    const names = metricNames(a.expr)
    t.ok(names.length > 0, `${a.alert}: selects at least one metric`)
    for (const n of names) t.ok(known.has(n), `${a.alert}: ${n} is exported`)
  }
  t.notOk(known.has('dns_shaper_held_overflows_total'), 'and a misspelt name would not be')
})

const noPromtool = spawnSync('promtool', ['--version']).error
  ? 'promtool not installed (Debian package prometheus)'
  : false

/** Runs promtool with the rule groups of `groups` and the unit tests in a fresh directory. */
function promtool(args: string[], rules: Group[]): { status: number | null; out: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'dns-shaper-alerts-'))
  try {
    writeFileSync(path.join(dir, 'dns-shaper.rules.yaml'), stringify({ groups: rules }))
    writeFileSync(path.join(dir, 'dns-shaper.test.yaml'), readFileSync(TESTS_FILE))
    const r = spawnSync('promtool', args, { cwd: dir, encoding: 'utf8', timeout: 60000 })
    return { status: r.status, out: `${r.stdout}${r.stderr}` }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

t.test('promtool check rules', { skip: noPromtool }, async t => {
  const r = promtool(['check', 'rules', 'dns-shaper.rules.yaml'], groups)
  t.equal(r.status, 0, r.out)
  t.match(r.out, new RegExp(`SUCCESS: ${alerts.length} rules found`))
  const bad = structuredClone(groups)
  bad[0]!.rules[0]!.expr = 'up{job=~".*dns-shaper.*" == 0'
  t.not(promtool(['check', 'rules', 'dns-shaper.rules.yaml'], bad).status, 0, 'a broken expression is rejected')
})

interface UnitTests {
  tests: { alert_rule_test: { alertname: string; eval_time: string; exp_alerts: unknown[] }[] }[]
}

t.test(
  'promtool test rules: each alert fires on some series and stays quiet on others',
  { skip: noPromtool },
  async t => {
    const cases = (parse(readFileSync(TESTS_FILE, 'utf8')) as UnitTests).tests.flatMap(x => x.alert_rule_test)
    for (const a of alerts) {
      t.ok(
        cases.some(c => c.alertname === a.alert && c.exp_alerts.length > 0),
        `${a.alert}: a case where it fires`,
      )
      t.ok(
        cases.some(c => c.alertname === a.alert && c.exp_alerts.length === 0),
        `${a.alert}: a case where it does not`,
      )
    }
    const r = promtool(['test', 'rules', 'dns-shaper.test.yaml'], groups)
    t.equal(r.status, 0, r.out)
    t.match(r.out, /SUCCESS/)
    // The unit tests can fail: an alert that fires too early breaks the "not yet" cases.
    const early = structuredClone(groups)
    const down = early[0]!.rules.find(x => x.alert === 'DnsShaperDown')!
    down.for = '1m'
    const failed = promtool(['test', 'rules', 'dns-shaper.test.yaml'], early)
    t.not(failed.status, 0, 'DnsShaperDown with for: 1m fails the tests')
    t.match(failed.out, /DnsShaperDown/)
    // And the cordoned and not-ready cases are real: without the exclusions, they fire.
    const noExclusions = structuredClone(groups)
    for (const r of noExclusions[0]!.rules)
      if (r.alert === 'DnsShaperDown' || r.alert === 'DnsShaperFleetDown')
        r.expr = r.expr.replace(/unless on \(node\) \([^\n]*\)\n/g, '')
    const loud = promtool(['test', 'rules', 'dns-shaper.test.yaml'], noExclusions)
    t.not(loud.status, 0, 'target-down alerts that do not leave out cordoned or not-ready nodes fail the tests')
    t.match(loud.out, /DnsShaperDown/)
    t.match(loud.out, /DnsShaperFleetDown/)
  },
)
