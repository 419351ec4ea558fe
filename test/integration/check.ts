// `dns-shaper check` on a node where the race is happening: the race lab's router namespace, with the
// A and AAAA of each socket sent from two CPUs through a random DNAT, must show a non-zero clash rate.
import t, { type Test } from 'tap'
import os from 'node:os'
import { createRaceLab, buildClients, clientArgv, type RaceLab, type ClientBins } from '../../lab/src/race.js'
import { CLI } from '../helpers/daemon.js'

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
  conntrack: { loaded: boolean; ratesPerSecond?: Record<string, number> }
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
