// `dns-shaper check` as operators run it in the DaemonSet's pod (`kubectl exec ds/dns-shaper --
// dns-shaper check --config /etc/dns-shaper/config.json`): uid 0 with only CAP_NET_ADMIN and CAP_NET_RAW
// (setpriv: bounding, inheritable and ambient sets), no new privileges, beside the running daemon
// (started the same way, with the DaemonSet's --metrics-listen on the node address), in the lab's
// router namespace. The verdict must be true (exit 0 on this healthy node) and each item must say
// what it is: the queue and the metrics port in use by the running dns-shaper, NFQUEUE and xt_bpf
// not probed for lack of CAP_SYS_ADMIN with advice that fits, no modprobe. Bounded waits; the lab is
// deleted at the end.
import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { CLI, DaemonProcess } from '../../harness/daemon.js'
import { daemonEnv, labFixture } from '../helpers/lab-fixture.js'

if (process.getuid?.() !== 0) {
  t.plan(0, 'integration tests need root (network namespaces, iptables, NFQUEUE, setpriv)')
  process.exit(0)
}
const noSetpriv = spawnSync('setpriv', ['--version']).status !== 0 ? 'setpriv (util-linux) not installed' : false

/** The DaemonSet's container: uid 0, capabilities NET_ADMIN and NET_RAW only, allowPrivilegeEscalation false. */
const POD_CAPS = '-all,+net_admin,+net_raw'
const asPod = (argv: string[]): string[] => [
  'setpriv',
  `--inh-caps=${POD_CAPS}`,
  `--ambient-caps=${POD_CAPS}`,
  `--bounding-set=${POD_CAPS}`,
  '--no-new-privs',
  ...argv,
]
const CAP_NET_ADMIN = 12n
const CAP_NET_RAW = 13n

const { lab: theLab, work } = labFixture('dnss-check-pod-')
const configFile = join(work, 'config.json')

interface Item {
  id: string
  status: string
  found: string
  action: string
}

t.test('check in the pod beside the running daemon: ready, each item true', { skip: noSetpriv }, async t => {
  // The ConfigMap's file; the DaemonSet gives the listen address as a flag, which `kubectl exec
  // ... check --config` does not repeat.
  const lab = theLab()
  writeFileSync(configFile, JSON.stringify({ 'dns-ip': lab.server.ipv4, hooks: 'prerouting' }))
  const listen = `[${lab.router.clientIpv4}]:9363`
  const env = daemonEnv()
  const d = new DaemonProcess(lab.router.ns, ['run', '--config', configFile, '--metrics-listen', listen], {
    env,
  })
  t.teardown(() => d.stop())
  // The daemon itself with the pod's privileges would need the same setpriv; the check is what is
  // under test here, so the daemon runs as root. Its capabilities do not change what check may do.
  await d.ready(20000)

  const r = await lab.router.ns.exec(
    asPod([process.execPath, CLI, 'check', '--json', '--sample', '1', '--config', configFile]),
    { timeoutMs: 60000 },
  )
  let report: { exitCode: number; verdict: { line: string }; items: Item[]; daemon: unknown }
  try {
    report = JSON.parse(r.stdout) as typeof report
  } catch {
    t.fail(`check printed no JSON (exit ${String(r.code)}): ${r.stderr}`)
    return
  }
  const byId = (id: string): Item | undefined => report.items.find(i => i.id === id)
  t.comment(report.items.map(i => `${i.status} ${i.id}: ${i.found}`).join('\n'))
  t.comment(`verdict: ${report.verdict.line}`)
  t.equal(r.code, 0, `exit 0: ${report.verdict.line}`)
  t.equal(report.exitCode, 0)
  t.notMatch(report.verdict.line, /cannot run/)
  t.same(
    report.items.filter(i => i.status === 'fail').map(i => i.id),
    [],
    'no item fails',
  )
  t.match(byId('privileges'), { status: 'ok', found: 'uid 0, CAP_NET_ADMIN, CAP_NET_RAW' })
  t.match(byId('queue'), { status: 'ok', found: /^queue 0 in use by the running dns-shaper/ })
  t.match(byId('metrics'), {
    status: 'ok',
    found: new RegExp(`^\\[${lab.router.clientIpv4.replace(/\./g, '\\.')}\\]:9363 in use by the running dns-shaper`),
  })
  t.match(byId('nfqueue'), { status: 'ok', found: /^in use by the running dns-shaper.*needs CAP_SYS_ADMIN/ })
  t.match(byId('xt_bpf'), {
    status: 'info',
    found: /not probed: .*CAP_SYS_ADMIN/,
    action: /as root|--profile=sysadmin/,
  })
  t.match(byId('shaper-rules'), { status: 'info', found: /rules for queue 0, bound: a dns-shaper is running$/ })
  t.notMatch(JSON.stringify(report.items), /modprobe/, 'no advice to load modules that are there')
  t.match(report.daemon, { pid: d.child.pid, listen, healthz: { status: 200 } })

  // And the check really ran with the pod's privileges: the same setpriv shows exactly these.
  const caps = await lab.router.ns.exec(asPod(['grep', '^CapEff:', '/proc/self/status']), { timeoutMs: 10000 })
  t.equal(
    BigInt(`0x${caps.stdout.trim().split(/\s+/)[1] ?? '0'}`),
    (1n << CAP_NET_ADMIN) | (1n << CAP_NET_RAW),
    'CapEff: NET_ADMIN and NET_RAW only',
  )
  t.ok(readFileSync(`/proc/${d.child.pid}/cmdline`, 'utf8').includes('run'), 'the daemon was still running')
})
