// What every sweep shares: starting a variant with the shared queue rule, and one measured load point
// (stub_load or dnsperf) with CPU, RSS and the daemon's counters sampled exactly around its measured
// part. It never asserts anything about the numbers; it only records them.

import type { Lab } from '../../harness/topology.js'
import { runDnsperf } from '../lib/dnsperf.js'
import { cpuDeltaUs, readCpu, readStatus } from '../lib/proc.js'
import type { CpuSample } from '../lib/proc.js'
import { counterDeltas, parseProm, sample } from '../../harness/prom.js'
import type { Samples } from '../../harness/prom.js'
import { installQueueRule, readQueueStats, removeQueueRule } from '../lib/queue.js'
import { summarize } from '../../harness/stats.js'
import { runStub } from '../lib/stub.js'
import type { StubOptions } from '../lib/stub.js'
import { countWithin } from '../lib/sweep.js'
import type { LoadPoint } from '../lib/sweep.js'
import type { BenchContext, Running, Variant } from '../workloads/types.js'

export interface SweepEnv {
  lab: Lab
  repoRoot: string
  clkTck: number
  quick: boolean
  /** dnsperf query file (A and AAAA of hostN.example.test). */
  dataFile: string
  queue: number
  metricsPort: number
  npmNfqueueDir: string
  log(s: string): void
}

export function sweepContext(env: SweepEnv, over: Partial<BenchContext>): BenchContext {
  return {
    lab: env.lab,
    queue: env.queue,
    delayMs: 5,
    repoRoot: env.repoRoot,
    metricsPort: env.metricsPort,
    npmNfqueueDir: env.npmNfqueueDir,
    ...over,
  }
}

/** Starts `v` (and its queue rule), runs `fn`, always removes the rule and stops the variant. */
export async function withVariant<T>(
  env: SweepEnv,
  v: Variant,
  ctx: BenchContext,
  fn: (run: Running) => Promise<T>,
): Promise<T> {
  const why = await v.unavailable?.(ctx)
  if (why) throw new Error(`${v.id} unavailable: ${why}`)
  const router = env.lab.router.ns
  const queues = ctx.queues ?? 1
  let run: Running | undefined
  try {
    run = await v.start(ctx)
    if (v.queue) await installQueueRule(router, ctx.queue, queues)
    return await fn(run)
  } finally {
    if (v.queue) await removeQueueRule(router, ctx.queue, queues)
    if (run) await run.stop().catch(() => undefined)
  }
}

function pidsOf(run: Running | undefined): number[] {
  if (!run) return []
  return run.pids ?? (run.pid !== undefined ? [run.pid] : [])
}

/** CPU of several processes summed; schedstat only when every one has it. */
export function cpuOf(pids: number[]): CpuSample | undefined {
  if (pids.length === 0) return undefined
  let ticks = 0
  let runNs: number | undefined = 0
  for (const pid of pids) {
    const c = readCpu(pid)
    ticks += c.ticks
    runNs = runNs === undefined || c.runNs === undefined ? undefined : runNs + c.runNs
  }
  return { ticks, runNs }
}

export function rssOf(pids: number[]): number | undefined {
  if (pids.length === 0) return undefined
  let kb = 0
  for (const pid of pids) {
    const s = readStatus(pid)
    if (s.vmRssKb === undefined) return undefined
    kb += s.vmRssKb
  }
  return kb
}

interface Snap {
  cpu?: CpuSample
  metrics?: Samples
  rssKb?: number
  waiting?: number
}

/** Packets the kernel holds for a verdict on our queues (what it walks per verdict), summed. */
async function kernelWaiting(env: SweepEnv, queues: number): Promise<number | undefined> {
  let n: number | undefined
  for (let q = env.queue; q < env.queue + queues; q++) {
    const st = await readQueueStats(env.lab.router.ns, q)
    if (st) n = (n ?? 0) + st.waiting
  }
  return n
}

async function snap(env: SweepEnv, run: Running | undefined, queues: number): Promise<Snap> {
  const pids = pidsOf(run)
  // CPU first: it is the figure that must be taken at the instant the measured part starts or ends.
  const s: Snap = { cpu: cpuOf(pids), rssKb: rssOf(pids) }
  if (run) s.waiting = await kernelWaiting(env, queues)
  const text = run?.metrics ? await run.metrics() : undefined
  if (text) s.metrics = parseProm(text)
  return s
}

function finish(env: SweepEnv, p: LoadPoint, before: Snap, after: Snap): LoadPoint {
  if (before.cpu && after.cpu) {
    const c = cpuDeltaUs(before.cpu, after.cpu, env.clkTck)
    p.cpuUs = c.us
    p.cpuUsPerQuery = p.queries > 0 ? c.us / p.queries : undefined
  }
  if (after.metrics) {
    p.counters = counterDeltas(after.metrics, before.metrics)
    p.heldEnd = sample(after.metrics, 'dns_shaper_held_packets')
  }
  p.rssKb = after.rssKb
  p.waitingEnd = after.waiting
  return p
}

/**
 * One stub_load run (one socket per lookup) against `run` (undefined: nothing queued, the baseline).
 * `pairedUs`: an AAAA answered at most this long after its own A counts as released with it.
 */
export async function stubPoint(
  env: SweepEnv,
  run: Running | undefined,
  o: Omit<StubOptions, 'server'>,
  pairedUs?: number,
  queues = 1,
): Promise<LoadPoint> {
  let before: Snap = {}
  let after: Snap = {}
  const d = await runStub(
    env.lab.client.ns,
    env.repoRoot,
    { server: env.lab.server.ipv4, ...o },
    {
      onStart: async () => {
        before = await snap(env, run, queues)
      },
      onEnd: async () => {
        after = await snap(env, run, queues)
      },
    },
  )
  const perLookup = (o.types ?? 'pair') === 'pair' ? 2 : 1
  const p: LoadPoint = {
    client: 'stub',
    rate: o.rate,
    queries: d.lookups * perLookup,
    lostA: d.lostA,
    lostAAAA: d.lostAAAA,
    a: summarize(d.a),
    aaaa: summarize(d.aaaa),
    lateMaxUs: d.summary.lateMaxUs,
    sendErrors: d.summary.sendErrors,
  }
  if (pairedUs !== undefined) {
    p.aaaaPaired = countWithin(d.aaaaMinusA, pairedUs)
    p.bothAnswered = d.aaaaMinusA.length
  }
  return finish(env, p, before, after)
}

/** One dnsperf run (-c clients: a name's A and AAAA on different sockets) against `run`. */
export async function dnsperfPoint(
  env: SweepEnv,
  run: Running | undefined,
  rate: number,
  seconds: number,
  clients = 10,
  queues = 1,
): Promise<LoadPoint & { achievedQps: number }> {
  const before = await snap(env, run, queues)
  const d = await runDnsperf(env.lab.client.ns, {
    server: env.lab.server.ipv4,
    dataFile: env.dataFile,
    rate,
    durationS: seconds,
    clients,
    timeoutS: 2,
    verbose: true,
  })
  const after = await snap(env, run, queues)
  const p: LoadPoint & { achievedQps: number } = {
    client: 'dnsperf',
    rate,
    queries: d.sent,
    lostA: d.lostByType.A,
    lostAAAA: d.lostByType.AAAA,
    a: summarize(d.latencyUs.A),
    aaaa: summarize(d.latencyUs.AAAA),
    achievedQps: d.qps,
  }
  finish(env, p, before, after)
  return p
}
