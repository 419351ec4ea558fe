// The release files an operator relies on: LICENSE is the full Apache-2.0 text package.json declares
// (its section 4 requires handing it on, so the npm package carries it), CHANGELOG.md states a
// compatibility policy for flags, config keys and metric names and has an entry per released
// version, SECURITY.md says how to report, docs/upgrade.md and docs/troubleshooting.md cover what
// the issue asked for; and every metric, alert, deploy path and relative link those documents name
// exists, so they cannot silently go stale. Reads files only.
import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { exportedNames } from './helpers/promql.js'

const repo = fileURLToPath(new URL('../', import.meta.url))
const read = (p: string): string => readFileSync(join(repo, p), 'utf8')
const pkg = JSON.parse(read('package.json')) as { version: string; license: string }
const DOCS = ['CHANGELOG.md', 'SECURITY.md', 'docs/upgrade.md', 'docs/troubleshooting.md']

t.test('LICENSE: the full Apache License 2.0, as package.json declares', async t => {
  t.equal(pkg.license, 'Apache-2.0')
  const text = read('LICENSE')
  t.match(text, /Apache License\s+Version 2\.0, January 2004/)
  t.match(text, /TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION/)
  for (let s = 1; s <= 9; s++) t.match(text, new RegExp(`\\n\\s*${s}\\. [A-Z]`), `section ${s}`)
  t.match(text, /END OF TERMS AND CONDITIONS/)
  t.match(text, /APPENDIX: How to apply the Apache License to your work/)
  t.ok(text.length > 10000, `the full text (${text.length} characters), not a pointer to it`)
})

t.test(
  'the npm package carries LICENSE',
  { skip: !existsSync(join(repo, 'dist/cli.js')) && 'dist/ not built' },
  async t => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: repo,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    })
    const files = (JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map(f => f.path)
    t.ok(files.includes('LICENSE'), 'LICENSE in the tarball')
  },
)

t.test('CHANGELOG: a compatibility policy, and an entry for this version', async t => {
  const text = read('CHANGELOG.md')
  const policy = /## Compatibility policy\n([\s\S]*?)\n## /.exec(text)?.[1] ?? ''
  t.ok(policy, 'a "Compatibility policy" section')
  for (const what of [/flag/i, /config(uration)? (file|keys?)/i, /metric/i, /exit code/i, /Breaking/, /[Dd]eprecat/])
    t.match(policy, what, `the policy covers ${String(what)}`)
  t.match(text, new RegExp(`^## \\[${pkg.version.replace(/\./g, '\\.')}\\]`, 'm'), `an entry for ${pkg.version}`)
  t.match(text, /^## \[Unreleased\]/m, 'and one for what is not released yet')
})

t.test('SECURITY.md: how to report, what is supported, the trust model', async t => {
  const text = read('SECURITY.md')
  for (const h of ['Reporting a vulnerability', 'Supported versions']) t.match(text, new RegExp(`^## ${h}`, 'm'))
  t.match(text, /privately/i)
  t.match(text, /NET_ADMIN/)
})

t.test('upgrade and troubleshooting guides cover what operators asked for', async t => {
  const upgrade = read('docs/upgrade.md')
  for (const h of ['Upgrade', 'Roll back', 'Mixed versions', 'Config changes', 'A canary first'])
    t.match(upgrade, new RegExp(`^#{2,3} ${h}`, 'm'), `upgrade.md: ${h}`)
  const ds = parse(read('deploy/kubernetes/daemonset.yaml')) as {
    spec: { minReadySeconds: number; updateStrategy: { rollingUpdate: { maxUnavailable: string } } }
  }
  t.match(
    upgrade,
    new RegExp(`maxUnavailable: ${ds.spec.updateStrategy.rollingUpdate.maxUnavailable}`),
    'says the rollout size the DaemonSet has',
  )
  t.match(upgrade, new RegExp(`minReadySeconds: ${ds.spec.minReadySeconds}`), 'and its minReadySeconds')
  const trouble = read('docs/troubleshooting.md')
  for (const h of [
    'Lookups still take 5 s',
    'CrashLoopBackOff, exit 2',
    'CrashLoopBackOff, exit 1',
    'Queue busy',
    '`check` says "cannot run"',
  ])
    t.match(trouble, new RegExp(`^## ${h.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'), `troubleshooting.md: ${h}`)
})

t.test('what the documents name exists: metrics, alerts, deploy paths, relative links', async t => {
  const exported = await exportedNames()
  const rule = parse(read('deploy/kubernetes/components/monitoring/prometheusrule.yaml')) as {
    spec: { groups: { rules: { alert?: string }[] }[] }
  }
  const alerts = new Set(rule.spec.groups.flatMap(g => g.rules.map(r => r.alert).filter(Boolean)))
  const histograms = new Set([...exported].filter(n => n.endsWith('_bucket')).map(n => n.slice(0, -'_bucket'.length)))
  for (const doc of DOCS) {
    const text = read(doc)
    for (const [m] of text.matchAll(/\bdns_shaper_[a-z0-9_]+\b/g))
      t.ok(exported.has(m) || histograms.has(m), `${doc}: metric ${m} is exported`)
    for (const [m] of text.matchAll(/\bDnsShaper[A-Za-z]+\b/g)) t.ok(alerts.has(m), `${doc}: alert ${m} exists`)
    for (const [m] of text.matchAll(/\bdeploy\/[A-Za-z0-9_./-]*[A-Za-z0-9_-]/g))
      t.ok(existsSync(join(repo, m)), `${doc}: ${m} exists`)
    for (const [, target] of text.matchAll(/\]\((?!https?:|#)([^)#\s]+)(?:#[^)]*)?\)/g))
      t.ok(existsSync(resolve(dirname(join(repo, doc)), target!)), `${doc}: link ${target} resolves`)
  }
  t.notOk(exported.has('dns_shaper_held_overflows_total'), 'a misspelt metric would be caught')
})
