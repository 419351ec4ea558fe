// Crashes with packets held, in the lab (client ─ router with the daemon ─ unbound): an uncaught
// exception, an unhandled rejection and a stray process.exit. On each, every held AAAA must still be
// answered (released, not dropped with the socket) and the cause logged; the first two also remove the
// rules and exit 1. The crash is injected by a preloaded fixture (test/fixtures/crash/on-signal.mjs).
// A SIGTERM case is the control, and checks that the hooks our rules created go only after the release
// (deleting a base chain makes the kernel drop everything queued in the namespace).
import t from 'tap'
import { fileURLToPath } from 'node:url'
import type { Lab } from '../../harness/topology.js'
import { DaemonProcess } from '../../harness/daemon.js'
import { metricValue } from '../../harness/prom.js'
import { skipFileUnless } from '../../harness/skip.js'
import { routerMetrics, withDnsLab } from '../../harness/dns-lab.js'
import { aaaaLookups } from '../helpers/shaping.js'

skipFileUnless({ root: 'network namespaces, iptables, NFQUEUE' })

const FIXTURE = fileURLToPath(new URL('../fixtures/crash/on-signal.mjs', import.meta.url))
const N = 5
let lab: Lab
withDnsLab(l => (lab = l))

async function held(): Promise<number> {
  return metricValue(await routerMetrics(lab), 'dns_shaper_held_packets') ?? NaN
}

const jumps = async (): Promise<number> =>
  (await lab.router.ns.execOk(['iptables-save', '-t', 'raw'])).stdout
    .split('\n')
    .filter(l => l.startsWith('-A PREROUTING') && l.includes('dns-shaper')).length

/** Base chains hooked at raw priority in the router namespace (nft list ruleset). */
const rawHooks = async (): Promise<number> =>
  (await lab.router.ns.execOk(['nft', 'list', 'ruleset'])).stdout
    .split('\n')
    .filter(l => /type filter hook \w+ priority raw/.test(l)).length

const cases = [
  { mode: 'sigterm', code: 0, cause: /^stopping$/, clean: true },
  { mode: 'exception', code: 1, cause: /^uncaught exception: stopping/, clean: true },
  { mode: 'rejection', code: 1, cause: /^unhandled promise rejection: stopping/, clean: true },
  { mode: 'exit', code: 3, cause: /^exiting without a clean stop/, clean: false },
] as const

for (const c of cases) {
  t.test(`${c.mode} with ${N} AAAA held: all answered at once, cause logged`, async t => {
    const d = new DaemonProcess(
      lab.router.ns,
      [
        'run',
        '--hooks',
        'prerouting',
        '--mode',
        'fixed',
        '--delay',
        '10000',
        '--metrics-listen',
        `${lab.router.clientIpv4}:9363`,
      ],
      { nodeArgs: ['--import', FIXTURE], env: { ...process.env, DNS_SHAPER_TEST_CRASH: c.mode } },
    )
    t.teardown(() => d.stop())
    const hooksBefore = await rawHooks()
    await d.ready()
    const pending = aaaaLookups(lab, N, 12000)
    const until = Date.now() + 8000
    while ((await held()) < N && Date.now() < until) await new Promise(r => setTimeout(r, 50))
    t.equal(await held(), N, `${N} AAAA held before the crash`)
    const crashed = Date.now()
    d.signal(c.mode === 'sigterm' ? 'SIGTERM' : 'SIGUSR2')
    const exit = await d.exited
    const results = await pending
    t.equal(exit.code, c.code, `exit code ${c.code}`)
    t.equal(
      results.reduce((a, r) => a + r.lost, 0),
      0,
      'every held AAAA answered',
    )
    t.ok(Date.now() - crashed < 5000, `answered ${Date.now() - crashed} ms after the crash, not after the 10 s hold`)
    const cause = d.logs.find(l => (l.level === 'error' || c.mode === 'sigterm') && c.cause.test(l.msg))
    t.ok(cause, `cause logged: ${cause?.msg ?? d.stderr.slice(-500)}`)
    if (c.mode === 'exception' || c.mode === 'rejection')
      t.match(cause, { err: `test: injected ${c.mode === 'exception' ? 'uncaught exception' : 'unhandled rejection'}` })
    if (c.mode === 'exit') t.match(cause, { reason: 'process exit with code 3', releasedAtStop: N })
    if (c.clean) {
      t.equal(await jumps(), 0, 'rules removed')
      t.equal(await rawHooks(), hooksBefore, 'no raw-table base chain left hooked (nft)')
    }
    if (process.env.DEBUG_CRASH) t.comment(d.stderr)
  })
}
