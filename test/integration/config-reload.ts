// The --config file changes under a running daemon (in the lab's router namespace) the way kubelet
// updates a mounted ConfigMap, by swapping the `..data` symlink, and the daemon applies it with no
// signal and no restart: the new hold shows in dns_shaper_hold_configured_seconds and in the AAAA
// latency, the reload time and result in their metrics; a broken edit keeps the running policy.
// Metrics listen on `[IPv4]:port`, the manifest's form. Every wait is bounded.
import t from 'tap'
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Lab } from '../../harness/topology.js'
import { runProbeIn } from '../../harness/probe-runner.js'
import { DaemonProcess, fetchIn } from '../../harness/daemon.js'
import { metricValue } from '../../harness/prom.js'
import { skipFileUnless } from '../../harness/skip.js'
import { withDnsLab } from '../../harness/dns-lab.js'

skipFileUnless({ root: 'network namespaces, iptables, NFQUEUE' })

const METRICS = 9363
const work = mkdtempSync(join(tmpdir(), 'dnss-reload-'))
let lab: Lab
withDnsLab(l => (lab = l), { cleanup: () => rmSync(work, { recursive: true, force: true }) })

/** A ConfigMap volume as kubelet lays it out: config.json -> ..data/config.json, ..data -> a versioned dir. */
const volume = join(work, 'volume')
mkdirSync(volume)
let version = 0
function writeConfigMap(text: string): void {
  const dir = `..${Date.now()}_${version++}`
  mkdirSync(join(volume, dir))
  writeFileSync(join(volume, dir, 'config.json'), text)
  // Atomic, like kubelet's AtomicWriter: a new symlink renamed over ..data.
  symlinkSync(dir, join(volume, '..data_tmp'))
  renameSync(join(volume, '..data_tmp'), join(volume, '..data'))
}
writeConfigMap(JSON.stringify({ holds: { AAAA: 5 } }))
symlinkSync('..data/config.json', join(volume, 'config.json'))

const until = async (what: string, f: () => Promise<boolean>, timeoutMs = 10000): Promise<void> => {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    if (await f()) return
    await new Promise(r => setTimeout(r, 100))
  }
  throw new Error(`not within ${timeoutMs} ms: ${what}`)
}

t.test('a ConfigMap edit applies without a signal; a broken one keeps the running policy', async t => {
  const url = `http://${lab.router.clientIpv4}:${METRICS}/metrics`
  const d = new DaemonProcess(lab.router.ns, [
    'run',
    '--hooks',
    'prerouting',
    '--config',
    join(volume, 'config.json'),
    '--config-poll-interval',
    '1',
    '--metrics-listen',
    `[${lab.router.clientIpv4}]:${METRICS}`,
  ])
  t.teardown(() => d.stop())
  await d.ready()
  const metric = async (sample: string): Promise<number> => {
    const r = await fetchIn(lab.router.ns, url)
    return r.code === 200 ? (metricValue(r.body, sample) ?? NaN) : NaN
  }
  const HOLD = 'dns_shaper_hold_configured_seconds{qtype="AAAA"}'
  const STAMP = 'dns_shaper_config_last_reload_timestamp_seconds'
  t.equal(await metric(HOLD), 0.005, 'AAAA held 5 ms from the file; metrics on [IPv4]:port')
  const t0 = await metric(STAMP)
  t.ok(Math.abs(t0 - Date.now() / 1000) < 60, `start counts as the first load (${t0})`)
  t.equal(await metric('dns_shaper_config_last_reload_successful'), 1)

  writeConfigMap(JSON.stringify({ holds: { AAAA: 25 } }))
  await until('the new hold in dns_shaper_hold_configured_seconds', async () => (await metric(HOLD)) === 0.025)
  t.pass('dns_shaper_hold_configured_seconds{qtype="AAAA"} 0.025 with no signal sent')
  // The watcher, not a signal, applied it: counted as a successful reload (metrics, not log wording).
  t.equal(await metric('dns_shaper_config_reloads_total{result="error"}'), 0, 'no failed reload so far')
  t.ok((await metric(STAMP)) > t0, 'the reload time is exported, later than the start')
  t.equal(await metric('dns_shaper_config_reloads_total{result="ok"}'), 1)
  const r = await runProbeIn(lab.client.ns, {
    server: lab.server.ipv4,
    types: ['AAAA'],
    count: 10,
    intervalMs: 2,
    timeoutMs: 2000,
  })
  t.equal(r.lost, 0)
  t.ok((r.byType.AAAA?.minUs ?? 0) >= 25_000, `AAAA now held 25 ms (fastest ${r.byType.AAAA?.minUs} us)`)

  writeConfigMap('{"holds": {"AAAA": ')
  await until(
    'the failed reload counted',
    async () => (await metric('dns_shaper_config_reloads_total{result="error"}')) === 1,
  )
  t.equal(await metric('dns_shaper_config_last_reload_successful'), 0, 'the failure is visible')
  t.equal(await metric(HOLD), 0.025, 'the running policy is kept')
  await new Promise(r => setTimeout(r, 2500))
  t.equal(await metric('dns_shaper_config_reloads_total{result="error"}'), 1, 'the same broken content is tried once')

  writeConfigMap(JSON.stringify({ holds: { AAAA: 10 }, 'dns-port': 5353 }))
  await until('the fix applied', async () => (await metric(HOLD)) === 0.01)
  t.equal(await metric('dns_shaper_config_last_reload_successful'), 1)
  await d.waitLog(l => l.msg === 'these settings change only on restart; kept the running values', 5000)
  t.ok(
    d.logs.some(l => l.msg.startsWith('these settings') && JSON.stringify(l.settings) === '["dnsPort"]'),
    'a restart-only setting is named in the log',
  )
  t.equal((await d.stop()).code, 0)
})
