// Least privilege: the daemon as uid 65534 with only CAP_NET_ADMIN and CAP_NET_RAW (setpriv, util-linux)
// inside the lab router must start, install its rules and shape; without the capabilities it must fail
// with exit 1 and a message naming CAP_NET_ADMIN. Also records what each iptables backend needs.
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Lab } from '../../harness/topology.js'
import { runProbeIn } from '../../harness/probe-runner.js'
import { CLI, DaemonProcess, fetchIn } from '../../harness/daemon.js'
import { metricValue } from '../../harness/prom.js'
import { skipFileUnless } from '../../harness/skip.js'
import { withDnsLab } from '../../harness/dns-lab.js'

skipFileUnless({ root: 'network namespaces, iptables, NFQUEUE, setpriv' })
const noSetpriv = spawnSync('setpriv', ['--version']).status !== 0 ? 'setpriv (util-linux) not installed' : false

const NOBODY = '65534'
const CAPS = '+net_admin,+net_raw'
/** setpriv argv: uid/gid 65534, no groups, and exactly `caps` (e.g. '+net_admin,+net_raw' or ''). */
function setpriv(caps: string): string[] {
  const set = caps ? `-all,${caps}` : '-all'
  return [
    'setpriv',
    `--reuid=${NOBODY}`,
    `--regid=${NOBODY}`,
    '--clear-groups',
    `--inh-caps=${set}`,
    `--ambient-caps=${set}`,
    `--bounding-set=${set}`,
  ]
}

let lab: Lab
const work = mkdtempSync(join(tmpdir(), 'dnss-priv-'))
chmodSync(work, 0o777) // the xtables lock file of the legacy case lives here, written by uid 65534
withDnsLab(l => (lab = l), { cleanup: () => rmSync(work, { recursive: true, force: true }) })

/** `ip netns exec ROUTER env -i [env ...] setpriv ... node dist/cli.js run ...` through harness/daemon. */
function runAs(caps: string, args: string[], env: string[] = []): DaemonProcess {
  // A clean environment: no root-only PATH entries, and none of the test runner's NODE_OPTIONS hooks
  // (they write under .tap/, which uid 65534 cannot).
  const prefix = [
    'env',
    '-i',
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    ...env,
    ...setpriv(caps),
  ]
  const d = new DaemonProcess(
    lab.router.ns,
    ['run', '--hooks', 'prerouting', '--metrics-listen', `${lab.router.clientIpv4}:9363`, ...args],
    { prefix },
  )
  const killer = setTimeout(() => d.signal('SIGKILL'), 60_000)
  void d.exited.then(() => clearTimeout(killer))
  return d
}

/** True once /readyz answers 200, false when the daemon exits (or times out) first. */
const started = (d: DaemonProcess): Promise<boolean> =>
  d.ready().then(
    () => true,
    () => false,
  )
const exitCode = async (d: DaemonProcess): Promise<number | null> => (await d.exited).code

async function jumps(): Promise<number> {
  let n = 0
  for (const cmd of ['iptables-nft-save', 'ip6tables-nft-save', 'iptables-legacy-save', 'ip6tables-legacy-save']) {
    const out = (await lab.router.ns.execOk([cmd, '-t', 'raw'])).stdout
    n += out.split('\n').filter(l => l.startsWith('-A PREROUTING') && l.includes('dns-shaper')).length
  }
  return n
}

/** CapEff of a process as a bigint. */
function capEff(pid: number): bigint {
  const m = /^CapEff:\s+([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return BigInt(`0x${m?.[1] ?? '0'}`)
}
const CAP_NET_ADMIN = 12n
const CAP_NET_RAW = 13n
const CAP_DAC_READ_SEARCH = 2n

async function shapesAsNobody(
  t: Test,
  backend: string,
  env: string[] = [],
  caps = CAPS,
  capBits = (1n << CAP_NET_ADMIN) | (1n << CAP_NET_RAW),
): Promise<void> {
  const d = runAs(caps, ['--delay', '20', '--iptables-backend', backend], env)
  t.teardown(() => {
    if (d.child.exitCode === null) d.child.kill('SIGKILL')
  })
  t.ok(await started(d), `starts (stderr: ${d.stderr.slice(-400)})`)
  if (d.child.exitCode !== null) return
  const status = readFileSync(`/proc/${d.child.pid}/status`, 'utf8')
  t.match(status, new RegExp(`^Uid:\\s+${NOBODY}\\s+${NOBODY}\\s+${NOBODY}\\s+${NOBODY}$`, 'm'), 'runs as uid 65534')
  t.equal(capEff(d.child.pid!), capBits, `effective capabilities: exactly ${caps}`)
  t.equal(await jumps(), 2, 'rules installed: one jump per family')
  const a = await runProbeIn(lab.client.ns, {
    server: lab.server.ipv4,
    types: ['A'],
    count: 10,
    intervalMs: 2,
    timeoutMs: 2000,
  })
  const aaaa = await runProbeIn(lab.client.ns, {
    server: lab.server.ipv6,
    types: ['AAAA'],
    count: 10,
    intervalMs: 2,
    timeoutMs: 2000,
  })
  t.equal(a.lost + aaaa.lost, 0, 'nothing lost')
  t.ok((aaaa.byType.AAAA?.minUs ?? 0) >= 20_000, `AAAA held (min ${aaaa.byType.AAAA?.minUs} us)`)
  t.ok((a.byType.A?.p50Us ?? Infinity) < 20_000, `A not held (p50 ${a.byType.A?.p50Us} us)`)
  const m = await fetchIn(lab.router.ns, `http://${lab.router.clientIpv4}:9363/metrics`)
  t.equal(m.code, 200, 'metrics served')
  t.equal(metricValue(m.body, 'dns_shaper_packets_total{action="held",qtype="AAAA"}'), 10)
  // /proc/net/netfilter/nfnetlink_queue is 0440 root: without CAP_DAC_READ_SEARCH these are not readable.
  t.comment(
    `queue stats as uid 65534: dns_shaper_queue_dropped_total{queue="0"} = ${metricValue(m.body, 'dns_shaper_queue_dropped_total{queue="0"}')}`,
  )
  d.child.kill('SIGTERM')
  t.equal(await exitCode(d), 0, 'SIGTERM exits 0')
  t.equal(await jumps(), 0, 'rules removed at stop')
}

t.test(
  'uid 65534 with only CAP_NET_ADMIN + CAP_NET_RAW, nft backend: starts, installs rules, shapes',
  { skip: noSetpriv },
  async t => {
    await shapesAsNobody(t, 'nft')
  },
)

t.test('legacy backend as uid 65534 with the two capabilities', { skip: noSetpriv }, async t => {
  // The full `iptables-legacy-save` reads /proc/net/ip_tables_names (0440 root); the rule manager
  // then reads the raw table alone. iptables-legacy-restore opens the xtables lock, root's 0600
  // /run/xtables.lock by default: point XTABLES_LOCKFILE at a lock the daemon may open (in a pod:
  // the host's lock mounted and readable), or add CAP_DAC_READ_SEARCH.
  t.test('with XTABLES_LOCKFILE it may open, it shapes', async t => {
    await shapesAsNobody(t, 'legacy', [`XTABLES_LOCKFILE=${join(work, 'xtables.lock')}`])
  })
  t.test('with CAP_DAC_READ_SEARCH added (default lock file) it shapes', async t => {
    await shapesAsNobody(
      t,
      'legacy',
      [],
      `${CAPS},+dac_read_search`,
      (1n << CAP_NET_ADMIN) | (1n << CAP_NET_RAW) | (1n << CAP_DAC_READ_SEARCH),
    )
  })
})

t.test('auto backend as uid 65534 with the two capabilities', { skip: noSetpriv }, async t => {
  const d = runAs(CAPS, ['--delay', '20'])
  t.teardown(() => {
    if (d.child.exitCode === null) d.child.kill('SIGKILL')
  })
  t.ok(
    await started(d),
    `starts with --iptables-backend auto (stderr: ${/"msg":"could not start".*$/m.exec(d.stderr)?.[0] ?? ''})`,
  )
  if (d.child.exitCode === null) {
    d.child.kill('SIGTERM')
    t.equal(await exitCode(d), 0)
  }
  await lab.router.ns.exec([process.execPath, CLI, 'rules', 'remove', '--hooks', 'prerouting'], { timeoutMs: 20_000 })
})

t.test('without capabilities: exit 1, and the message names CAP_NET_ADMIN', { skip: noSetpriv }, async t => {
  const d = runAs('', ['--delay', '20', '--iptables-backend', 'nft'])
  t.notOk(await started(d), 'does not start')
  t.equal(await exitCode(d), 1, 'exit 1')
  const line = /"msg":"could not start".*$/m.exec(d.stderr)?.[0] ?? d.stderr
  t.match(line, /CAP_NET_ADMIN/, `names the capability: ${line}`)
  t.equal(await jumps(), 0, 'no rules installed')
})
