// `dns-shaper check` on a node where the race is happening: the race lab's router namespace, with the
// A and AAAA of each socket sent from two CPUs through a random DNAT, must show a non-zero clash rate;
// and both conntrack statistics sources (ctnetlink, procfs) must count the same clashes.
import t, { type Test } from 'tap'
import os from 'node:os'
import { createRaceLab, buildClients, clientArgv, type RaceLab, type ClientBins } from '../../lab/src/race.js'
import { CLI } from '../helpers/daemon.js'
import { fileURLToPath } from 'node:url'
import { statsFromNetlink } from '../../src/kernel/conntrack-stats.js'
import { parseConntrackStats, type ConntrackStats } from '../../src/kernel/procfs.js'
import type { ConntrackCpuCounters } from '../../src/dataplane/nfqueue.js'
import { pairedDeltas } from '../helpers/conntrack.js'

const ADDON = fileURLToPath(new URL('../../build/Release/nfqueue.node', import.meta.url))

if (process.getuid?.() !== 0) {
  t.plan(0, 'integration tests need root (network namespaces, iptables)')
  process.exit(0)
}
if (os.cpus().length < 2) {
  t.plan(0, 'forcing a conntrack clash needs two CPUs')
  process.exit(0)
}

let race: RaceLab
let clients: ClientBins
t.before(async () => {
  clients = await buildClients()
  race = await createRaceLab()
})
t.teardown(async () => {
  await race?.destroy()
  clients?.remove()
})

interface Report {
  exitCode: number
  verdict: { need: string; line: string }
  items: { id: string; status: string; found: string }[]
  conntrack: {
    loaded: boolean
    source: string
    sources: Record<string, { ok: boolean; error?: string }>
    ratesPerSecond?: Record<string, number>
  }
}

const check = async (t: Test, sample: number): Promise<Report> => {
  const r = await race.router.exec(
    [process.execPath, CLI, 'check', '--json', '--sample', String(sample), '--metrics-listen', 'off'],
    { timeoutMs: 60000 },
  )
  t.equal(r.code, 0, `check exits 0 (ready): ${r.stderr}`)
  return JSON.parse(r.stdout) as Report
}

t.test('quiet node: clash rate 0, the kernel resolves clashes', async t => {
  const rep = await check(t, 1)
  t.equal(rep.conntrack.ratesPerSecond?.clash_resolve, 0)
  t.equal(rep.conntrack.source, 'netlink', 'check --json names the source: ctnetlink, as root')
  t.same(rep.conntrack.sources, { netlink: { ok: true }, procfs: { ok: true } }, 'and both sources answered')
  t.match(rep.verdict.line, /^optional: the kernel resolves clashes \(0\/s seen\)/)
})

t.test('forced clashes: the sampled clash rate is non-zero and named in the verdict', async t => {
  const split = clients.bins.split!
  const load = race.client.exec(
    clientArgv(split, { client: 'split', family: 4, lookups: 100000, threads: 1, maxSeconds: 8 }),
    { timeoutMs: 30000 },
  )
  await new Promise(r => setTimeout(r, 500))
  const rep = await check(t, 3)
  const res = await load
  t.equal(res.code, 0, 'client ran')
  const rate = rep.conntrack.ratesPerSecond?.clash_resolve ?? 0
  t.ok(rate > 0, `clash_resolve ${rate}/s while the split-CPU client runs`)
  t.match(rep.verdict.line, /^optional: the kernel resolves clashes \([\d.]+[k]?\/s seen\)/)
  t.notMatch(rep.verdict.line, /\(0\/s seen\)/)
  t.match(rep.items.find(i => i.id === 'conntrack')?.found ?? '', /clash_resolve [1-9]/)
})

/** Both conntrack statistics sources of `ns`, read back to back by one process in it. */
const readBoth = async (ns: RaceLab['router']): Promise<{ netlink: ConntrackStats; procfs: ConntrackStats }> => {
  const script = `
const addon = require(${JSON.stringify(ADDON)})
const procfs = require('node:fs').readFileSync('/proc/net/stat/nf_conntrack', 'utf8')
process.stdout.write(JSON.stringify({ netlink: addon.conntrackStats(), procfs }))`
  const r = await ns.execOk([process.execPath, '-e', script])
  const j = JSON.parse(r.stdout) as { netlink: ConntrackCpuCounters[]; procfs: string }
  return { netlink: statsFromNetlink(j.netlink), procfs: parseConntrackStats(j.procfs) }
}

t.test('forced clashes: ctnetlink and /proc/net/stat/nf_conntrack deltas agree, per namespace', async t => {
  const split = clients.bins.split!
  const r0 = await readBoth(race.router)
  const c0 = await readBoth(race.client)
  const res = await race.client.exec(
    clientArgv(split, { client: 'split', family: 4, lookups: 20000, threads: 1, maxSeconds: 4 }),
    { timeoutMs: 30000 },
  )
  t.equal(res.code, 0, `client ran: ${res.stderr}`)
  const r1 = await readBoth(race.router)
  const c1 = await readBoth(race.client)
  const router = pairedDeltas(r0.netlink, r1.netlink, r0.procfs, r1.procfs)
  t.ok(Object.keys(router).length >= 8, `compared ${Object.keys(router).join(', ')}`)
  for (const [name, d] of Object.entries(router)) t.equal(d.netlink, d.procfs, `router ${name}: +${d.netlink} in both`)
  t.ok((router.clash_resolve?.netlink ?? 0) > 0, `clashes provoked: clash_resolve +${router.clash_resolve?.netlink}`)
  // The clashes happen where the DNAT is (the router); the client namespace's counters do not see them.
  const client = pairedDeltas(c0.netlink, c1.netlink, c0.procfs, c1.procfs)
  t.equal(client.clash_resolve?.netlink, 0, 'client namespace: no clash over netlink')
  t.equal(client.clash_resolve?.procfs, 0, 'nor in its stat file')
  t.comment(`router deltas: ${JSON.stringify(router)}`)
})
