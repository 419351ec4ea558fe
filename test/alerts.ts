// deploy/kubernetes/prometheusrule.yaml: a valid PrometheusRule (operator schema, no unknown fields),
// accepted by promtool, each alert firing and staying quiet on the series in
// test/fixtures/alerts/dns-shaper.test.yaml (promtool test rules), each with a severity, a summary and
// a runbook section that exists in docs/metrics.md, and naming only metrics the daemon exports.
import t from 'tap'
import { readFileSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parse, parseAllDocuments, stringify } from 'yaml'
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule'
import { exportedNames, metricNames } from './helpers/promql.js'
import { typeErrors } from './helpers/model-types.js'

const RULE_FILE = new URL('../deploy/kubernetes/prometheusrule.yaml', import.meta.url)
const TESTS_FILE = new URL('./fixtures/alerts/dns-shaper.test.yaml', import.meta.url)
const METRICS_DOC = new URL('../docs/metrics.md', import.meta.url)
const KUSTOMIZATION = new URL('../deploy/kubernetes/kustomization.yaml', import.meta.url)
/** Series Prometheus itself records for every target (not exported by the daemon). */
const SCRAPE_SERIES = new Set(['up'])
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
const obj = docs[0]!.toJS() as { kind: string; metadata: { namespace: string }; spec: { groups: Group[] } }
const groups = obj.spec.groups
const alerts = groups.flatMap(g => g.rules).filter((r): r is Rule & { alert: string } => r.alert !== undefined)

t.test('a valid PrometheusRule: operator schema, no unknown fields, one document', async t => {
  t.equal(docs.length, 1)
  t.same(
    docs.flatMap(d => d.errors.map(e => e.message)),
    [],
  )
  t.equal(obj.kind, 'PrometheusRule')
  t.doesNotThrow(() => new PrometheusRule(obj as never).validate(), 'monitoring.coreos.com/v1 schema')
  const from = '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule'
  t.same(typeErrors(obj, 'IPrometheusRule', from), [], 'no unknown or mistyped fields')
  const typo = structuredClone(obj) as unknown as { spec: { groups: { rules: Record<string, unknown>[] }[] } }
  typo.spec.groups[0]!.rules[0]!.anotations = {}
  t.match(typeErrors(typo, 'IPrometheusRule', from).join('\n'), /anotations/, 'and a misspelt field is caught')
})

t.test('optional in the kustomization, like the PodMonitor', async t => {
  const k = parse(readFileSync(KUSTOMIZATION, 'utf8')) as { namespace: string; resources: string[] }
  t.notOk(k.resources.includes('prometheusrule.yaml'), 'not a resource: it needs the operator CRDs')
  t.match(readFileSync(KUSTOMIZATION, 'utf8'), /prometheusrule\.yaml/, 'but named in its comment')
  t.equal(obj.metadata.namespace, k.namespace)
})

t.test('the alerts operators were promised are there', async t => {
  t.same(
    alerts.map(a => a.alert),
    [
      'DnsShaperDown',
      'DnsShaperDataPlaneNotRunning',
      'DnsShaperPacketsUnshaped',
      'DnsShaperConntrackInsertFailed',
      'DnsShaperHoldsSlow',
      'DnsShaperHeldOverflow',
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
    t.equal(url, `docs/metrics.md#${a.alert.toLowerCase()}`, `${a.alert}: runbook_url`)
    const section = anchors.get(url.split('#')[1] ?? '')
    t.ok(section, `${a.alert}: docs/metrics.md has the section ${url}`)
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
  },
)
