// The precedence trap of issue 26, on a real daemon in the lab's router namespace: with the config
// file the manifests used to ship ("delay": 5 and "holds": {"AAAA": 5}), `--delay 1` and
// DNS_SHAPER_DELAY=1 must set the AAAA hold the daemon runs with (dns_shaper_hold_configured_seconds),
// `config print` must say so and where it came from, and a misspelt DNS_SHAPER_* variable must stop the
// daemon with exit 2 and one JSON log line. Every wait is bounded; the lab is deleted at the end.
import t, { type Test } from 'tap'
import { writeFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { CLI, DaemonProcess, fetchIn } from '../../harness/daemon.js'
import { metricValue } from '../../harness/prom.js'
import { daemonEnv, labFixture } from '../helpers/lab-fixture.js'

if (process.getuid?.() !== 0) {
  t.plan(0, 'integration tests need root (network namespaces, iptables, NFQUEUE)')
  process.exit(0)
}

const { lab: theLab, work } = labFixture('dnss-precedence-')
const file = join(work, 'config.json')
writeFileSync(file, JSON.stringify({ delay: 5, holds: { AAAA: 5 } }))
const envWith = daemonEnv

async function configuredAaaaHold(t: Test, args: string[], env: Record<string, string>): Promise<number | undefined> {
  const listen = `${theLab().router.clientIpv4}:9363`
  const d = new DaemonProcess(
    theLab().router.ns,
    ['run', '--config', file, '--hooks', 'prerouting', '--metrics-listen', listen, ...args],
    { env: envWith(env) },
  )
  try {
    await d.ready(20000)
    const m = await fetchIn(theLab().router.ns, `http://${listen}/metrics`)
    return metricValue(m.body, 'dns_shaper_hold_configured_seconds{qtype="AAAA"}')
  } finally {
    const r = await d.stop()
    t.equal(r.code, 0, 'SIGTERM exits 0')
  }
}

t.test('the file alone: AAAA held 5 ms', async t => {
  t.equal(await configuredAaaaHold(t, [], {}), 0.005)
})

t.test('--delay 1 wins over the file (delay and holds)', async t => {
  t.equal(await configuredAaaaHold(t, ['--delay', '1'], {}), 0.001)
})

t.test('DNS_SHAPER_DELAY=1 wins over the file too', async t => {
  t.equal(await configuredAaaaHold(t, [], { DNS_SHAPER_DELAY: '1' }), 0.001)
})

t.test('config print says which value runs and where it came from', async t => {
  const r = spawnSync(process.execPath, [CLI, 'config', 'print', '--config', file], {
    env: envWith({ DNS_SHAPER_DELAY: '1' }),
    encoding: 'utf8',
    timeout: 20000,
  })
  t.equal(r.status, 0, r.stderr)
  const p = JSON.parse(r.stdout) as Record<string, { value: unknown; source: unknown }>
  t.same(p.holds, { value: { AAAA: 1 }, source: { AAAA: { source: 'env', by: 'DNS_SHAPER_DELAY' } } })
})

t.test('a misspelt DNS_SHAPER_* variable: exit 2, one JSON log line naming it', async t => {
  const d = new DaemonProcess(theLab().router.ns, ['run', '--config', file, '--metrics-listen', 'off'], {
    env: envWith({ DNS_SHAPER_DELAYS: '3' }),
  })
  const timer = setTimeout(() => d.signal('SIGKILL'), 20000)
  const r = await d.exited
  clearTimeout(timer)
  t.equal(r.code, 2)
  const lines = d.stderr.trim().split('\n')
  t.equal(lines.length, 1, 'one line')
  t.match(JSON.parse(lines[0]!), { level: 'error', msg: 'invalid configuration', flag: 'DNS_SHAPER_DELAYS' })
})
