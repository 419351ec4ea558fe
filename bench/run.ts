// Benchmark entry: the latency and cost dns-shaper adds, side by side with the C reference (nfq_ref),
// an unqueued baseline and optionally the npm `nfqueue` package, all in one throwaway lab.
// Run as root: node --import=@tapjs/typescript/import bench/run.ts [--quick] [--rates 1000,10000] [--duration S]
// Writes bench/results/latest.{json,md,svg}. Goals are reported as ratios, never asserted.

import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createLab } from '../lab/src/topology.js'
import type { Lab } from '../lab/src/topology.js'
import { startUnbound } from '../lab/src/unbound.js'
import type { DnsperfResult } from './lib/dnsperf.js'
import { parseDnsperfVersion, runDnsperf, writeQueryFile } from './lib/dnsperf.js'
import { ADDED_FLOOR_US, added, cpuPerPacket, holdFromLatency, holdGoal, ratioGoal, shaperHold } from './lib/analyze.js'
import type { GoalCheck } from './lib/analyze.js'
import { renderSvg } from './lib/plot.js'
import { runStub, shortenConntrackTimeouts } from './lib/stub.js'
import type { Panel } from './lib/plot.js'
import { cpuDeltaUs, readCpu, readStatus } from './lib/proc.js'
import type { CpuSample } from './lib/proc.js'
import { counterDeltas, histogram, histogramDelta, histogramQuantile, parseProm } from './lib/prom.js'
import type { Samples } from './lib/prom.js'
import { installQueueRule, queueDelta, readQueueStats, removeQueueRule } from './lib/queue.js'
import { renderMarkdown, renderText } from './lib/report.js'
import type { BenchReport, Machine, MaxRate, Profile, RateTest, RunResult, VariantResult } from './lib/report.js'
import { cdfPoints, sortedCopy, summarize } from './lib/stats.js'
import type { Dist } from './lib/stats.js'
import { baseline } from './workloads/baseline.js'
import { dnsShaperFixed, dnsShaperFixedKfilter } from './workloads/dns-shaper-fixed.js'
import { dnsShaperPair } from './workloads/dns-shaper-pair.js'
import { dnsShaper } from './workloads/dns-shaper.js'
import { nfqRefAccept } from './workloads/nfq-ref-accept.js'
import { nfqRefHold } from './workloads/nfq-ref-hold.js'
import { npmNfqueue } from './workloads/npm-nfqueue.js'
import type { BenchContext, Running, Variant } from './workloads/types.js'
import { SWEEPS } from './lib/sweep.js'
import type { SweepName } from './lib/sweep.js'
import { rerenderSweeps, runSweeps } from './sweeps/run-sweeps.js'

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..')

const ALL_VARIANTS: Variant[] = [
  baseline,
  nfqRefAccept,
  nfqRefHold,
  dnsShaperFixed,
  dnsShaperFixedKfilter,
  dnsShaperPair,
  npmNfqueue('hold'),
  npmNfqueue('accept'),
]
const DEFAULT_VARIANTS = [
  'baseline',
  'nfq-ref-accept',
  'nfq-ref-hold',
  'dns-shaper-fixed',
  'dns-shaper-fixed-kfilter',
  'dns-shaper-pair',
  'npm-nfqueue-hold',
]

export interface Options {
  quick: boolean
  rates: number[]
  durationS: number
  variants: string[]
  delayMs: number
  /** Max-rate search: probes after the cap (0 disables the search). */
  searchSteps: number
  searchDurationS: number
  searchCapQps: number
  /** Top up each variant's packet count to this many before the final RSS reading (0: no top-up). */
  rssPackets: number
  /** Also run baseline and pair mode with one client socket, where A and AAAA of a name share a flow. */
  pairs: boolean
  outDir: string
  npmNfqueueDir: string
  queue: number
  hosts: number
  /** Node binary the dns-shaper variants run on (default: the one running the benchmark). */
  daemonNode: string
  /** Another built checkout whose dns-shaper runs right after this one's, in the same lab and run. */
  compare?: string
  /** Scaling sweeps to run instead of the operating-point benchmark (empty: none). */
  sweeps: SweepName[]
  /** Re-render sweeps.md and its plots from this sweeps.json, run nothing. */
  rerender?: string
}

const USAGE = `usage: node --import=@tapjs/typescript/import bench/run.ts [options]   (root: network namespaces)
  --quick               smoke run (< 60 s): one rate (5000), 2 s runs, a 1-step search capped at 4x it, no top-up
  --rates LIST          dnsperf -Q rates, comma separated (default 1000,10000,50000)
  --duration S          seconds per measured run (default 8)
  --variants LIST       of ${ALL_VARIANTS.map(v => v.id).join(', ')} (default ${DEFAULT_VARIANTS.join(',')})
  --delay MS            AAAA hold (default 5)
  --search-steps N      zero-loss max-rate probes after the cap (default 5; 0 = off)
  --search-duration S   seconds per probe (default 2)
  --search-cap QPS      highest rate tried (default 200000)
  --rss-packets N       packets each variant sees before the final RSS reading (default 1000000)
  --no-pairs            skip the stub-client runs (one socket per A+AAAA, bench/clients/stub_load) of
                        baseline, nfq_ref hold and pair mode
  --compare DIR         also run DIR's dns-shaper (another built checkout, e.g. main) right after each
                        dns-shaper variant, as <id>@before, in the same lab and run
  --daemon-node PATH    node binary for the dns-shaper variants, e.g. the image's Node.js 24
                        (default: this one); they run with the image's node flags (Dockerfile ENTRYPOINT)
  --npm-nfqueue DIR     npm nfqueue package dir (default /tmp/nfq-npm/node_modules/nfqueue)
  --sweeps LIST         instead: the scaling sweeps ${SWEEPS.join(',')} or all (bench/results/sweeps.*);
                        with --quick a smoke run of each
  --rerender-sweeps F   re-render sweeps.md and the plots into --out from a saved sweeps.json (no root)
  --out DIR             results directory (default bench/results)`

export function parseOptions(argv: readonly string[]): Options {
  const o: Options = {
    quick: false,
    rates: [1000, 10_000, 50_000],
    durationS: 8,
    variants: DEFAULT_VARIANTS,
    delayMs: 5,
    searchSteps: 5,
    searchDurationS: 2,
    searchCapQps: 200_000,
    rssPackets: 1_000_000,
    pairs: true,
    outDir: join(REPO, 'bench', 'results'),
    npmNfqueueDir: '/tmp/nfq-npm/node_modules/nfqueue',
    queue: 0,
    hosts: 250,
    daemonNode: process.execPath,
    sweeps: [],
  }
  const set = new Set<string>()
  const posNum = (flag: string, v: string | undefined, int = true): number => {
    const n = Number(v)
    if (v === undefined || !Number.isFinite(n) || n < 0 || (int && !Number.isInteger(n)))
      throw new Error(`${flag} needs a non-negative ${int ? 'integer' : 'number'}, got ${v}`)
    return n
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const v = argv[i + 1]
    const take = (): string | undefined => {
      i++
      set.add(a)
      return v
    }
    switch (a) {
      case '--quick':
        o.quick = true
        break
      case '--rates':
        o.rates = (take() ?? '')
          .split(',')
          .map(s => posNum(a, s))
          .filter(n => n > 0)
        break
      case '--duration':
        o.durationS = posNum(a, take(), false)
        break
      case '--variants':
        o.variants = (take() ?? '')
          .split(',')
          .map(s => s.trim())
          .filter(Boolean)
        break
      case '--delay':
        o.delayMs = posNum(a, take(), false)
        break
      case '--search-steps':
        o.searchSteps = posNum(a, take())
        break
      case '--search-duration':
        o.searchDurationS = posNum(a, take(), false)
        break
      case '--search-cap':
        o.searchCapQps = posNum(a, take())
        break
      case '--rss-packets':
        o.rssPackets = posNum(a, take())
        break
      case '--no-pairs':
        o.pairs = false
        break
      case '--npm-nfqueue':
        o.npmNfqueueDir = take() ?? ''
        break
      case '--daemon-node':
        o.daemonNode = take() ?? ''
        break
      case '--compare':
        o.compare = take() ?? ''
        break
      case '--out':
        o.outDir = take() ?? ''
        break
      case '--rerender-sweeps':
        o.rerender = take() ?? ''
        break
      case '--sweeps': {
        const list = (take() ?? '')
          .split(',')
          .map(x => x.trim())
          .filter(Boolean)
        const names = list.includes('all') ? [...SWEEPS] : list
        const bad = names.filter(x => !(SWEEPS as readonly string[]).includes(x))
        if (bad.length || names.length === 0)
          throw new Error(`--sweeps takes ${SWEEPS.join(',')} or all, got ${list.join(',') || 'nothing'}`)
        o.sweeps = [...new Set(names)] as SweepName[]
        break
      }
      case '-h':
      case '--help':
        throw new Error(USAGE)
      default:
        throw new Error(`unknown argument ${a}\n${USAGE}`)
    }
  }
  if (o.quick) {
    if (!set.has('--rates')) o.rates = [5000]
    if (!set.has('--duration')) o.durationS = 2
    if (!set.has('--search-steps')) o.searchSteps = 1
    if (!set.has('--search-cap')) o.searchCapQps = 4 * Math.max(...o.rates)
    if (!set.has('--search-duration')) o.searchDurationS = 1
    if (!set.has('--rss-packets')) o.rssPackets = 0
  }
  if (o.rates.length === 0) throw new Error('--rates needs at least one positive rate')
  if (o.durationS <= 0 || o.durationS > 120) throw new Error('--duration must be in (0, 120] seconds')
  if (o.searchDurationS <= 0 || o.searchDurationS > 30) throw new Error('--search-duration must be in (0, 30] seconds')
  if (o.searchSteps > 10) throw new Error('--search-steps must be at most 10')
  const unknown = o.variants.filter(id => !ALL_VARIANTS.some(v => v.id === id))
  if (unknown.length)
    throw new Error(`unknown variant(s) ${unknown.join(', ')}; known: ${ALL_VARIANTS.map(v => v.id).join(', ')}`)
  return o
}

const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

function machine(): Machine {
  let dnsperf: string | undefined
  try {
    dnsperf = parseDnsperfVersion(
      execFileSync('dnsperf', ['-h'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }),
    )
  } catch (e: unknown) {
    // dnsperf -h exits 1 after printing its usage.
    const err = e as { stdout?: string; stderr?: string }
    dnsperf = parseDnsperfVersion(`${err.stdout ?? ''}${err.stderr ?? ''}`)
  }
  return {
    nproc: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? '?',
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
    node: process.version,
    dnsperf,
    loadavg: loadavg(),
  }
}

function clkTck(): number {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())
    return n > 0 ? n : 100
  } catch {
    return 100
  }
}

interface Snapshot {
  cpu?: CpuSample
  queue?: Awaited<ReturnType<typeof readQueueStats>>
  metrics?: Samples
}

async function snapshot(ctx: BenchContext, v: Variant, run: Running): Promise<Snapshot> {
  const s: Snapshot = {}
  if (run.pid !== undefined) {
    try {
      s.cpu = readCpu(run.pid)
    } catch {
      /* exited: reported at stop */
    }
  }
  if (v.queue) s.queue = await readQueueStats(ctx.lab.router.ns, ctx.queue)
  const text = run.metrics ? await run.metrics() : undefined
  if (text) s.metrics = parseProm(text)
  return s
}

/** Baseline figures a variant's run is compared with (same profile and rate). */
interface BaseRef {
  a: Dist
  aaaa: Dist
  minUs: number
}

class Bench {
  readonly o: Options
  readonly ctx: BenchContext
  readonly clk = clkTck()
  readonly dataFile: string
  readonly base = new Map<string, BaseRef>()
  readonly notes: string[] = []

  constructor(o: Options, lab: Lab, dataFile: string) {
    this.o = o
    this.dataFile = dataFile
    this.ctx = {
      lab,
      queue: o.queue,
      delayMs: o.delayMs,
      repoRoot: REPO,
      metricsPort: 9363,
      npmNfqueueDir: o.npmNfqueueDir,
      daemonNode: o.daemonNode,
    }
  }

  dnsperf(rate: number, durationS: number, verbose: boolean, clients = 10, timeoutS = 2): Promise<DnsperfResult> {
    return runDnsperf(this.ctx.lab.client.ns, {
      server: this.ctx.lab.server.ipv4,
      dataFile: this.dataFile,
      rate,
      durationS,
      clients,
      timeoutS,
      verbose,
    })
  }

  /**
   * Stub-like clients at `rate` queries/s: one socket per A+AAAA lookup (bench/clients/stub_load), in
   * dnsperf's result shape. dnsperf cannot do this: it spreads a name's A and AAAA over its sockets.
   */
  async stub(rate: number, durationS: number): Promise<DnsperfResult> {
    const d = await runStub(this.ctx.lab.client.ns, REPO, {
      server: this.ctx.lab.server.ipv4,
      rate: Math.max(1, Math.round(rate / 2)),
      seconds: durationS,
      timeoutMs: 2000,
    })
    const completed = d.a.length + d.aaaa.length
    return {
      sent: d.lookups * 2,
      completed,
      lost: d.lostA + d.lostAAAA,
      qps: completed / durationS,
      runTimeS: durationS,
      rcodes: {},
      latencyUs: { A: d.a, AAAA: d.aaaa },
      lostByType: { A: d.lostA, AAAA: d.lostAAAA },
      errors: 0,
      otherTypes: 0,
    }
  }

  async measure(v: Variant, run: Running, profile: Profile, rate: number): Promise<RunResult> {
    const before = await snapshot(this.ctx, v, run)
    const d =
      profile === 'pairs' ? await this.stub(rate, this.o.durationS) : await this.dnsperf(rate, this.o.durationS, true)
    const after = await snapshot(this.ctx, v, run)
    const aSorted = sortedCopy(d.latencyUs.A)
    const a = summarize(aSorted)
    const aaaa = summarize(d.latencyUs.AAAA)
    const r: RunResult = {
      profile,
      rate,
      durationS: this.o.durationS,
      achievedQps: d.qps,
      sent: d.sent,
      completed: d.completed,
      lost: d.lost,
      lostA: d.lostByType.A,
      lostAAAA: d.lostByType.AAAA,
      rcodeErrors: d.errors,
      a,
      aaaa,
      cdfA: cdfPoints(aSorted),
    }
    const key = `${profile}/${rate}`
    if (v.id === 'baseline') this.base.set(key, { a, aaaa, minUs: Math.min(a.min, aaaa.min) })
    const b = this.base.get(key)
    if (b) {
      r.addedA = added(a, b.a)
      r.addedAAAA = added(aaaa, b.aaaa)
    }
    if (v.holdsAAAA) {
      // Without a baseline at this rate, the path is taken as zero: the hold is then overstated.
      r.hold = holdFromLatency(d.latencyUs.AAAA, this.o.delayMs, b?.aaaa.p50 ?? 0, b?.minUs ?? 0)
      r.cdfHoldMs = cdfPoints(sortedCopy(d.latencyUs.AAAA.map(x => (x - (b?.aaaa.p50 ?? 0)) / 1000)))
    }
    if (before.cpu && after.cpu) {
      const c = cpuDeltaUs(before.cpu, after.cpu, this.clk)
      r.cpuUs = c.us
      r.cpuSource = c.source
      r.cpuUsPerPacket = cpuPerPacket(c.us, d.sent)
    }
    r.queue = queueDelta(before.queue, after.queue)
    if (after.metrics) {
      const h = histogram(after.metrics, 'dns_shaper_hold_seconds')
      if (h)
        r.shaperHold = shaperHold(
          histogramDelta(h, before.metrics && histogram(before.metrics, 'dns_shaper_hold_seconds')),
          this.o.delayMs,
        )
      const vl = histogram(after.metrics, 'dns_shaper_verdict_latency_seconds')
      if (vl) {
        const dv = histogramDelta(vl, before.metrics && histogram(before.metrics, 'dns_shaper_verdict_latency_seconds'))
        r.shaperVerdictUs = {
          p50: histogramQuantile(dv, 0.5) * 1e6,
          p99: histogramQuantile(dv, 0.99) * 1e6,
          count: dv.count,
        }
      }
      r.counters = counterDeltas(after.metrics, before.metrics)
    }
    return r
  }

  /** Bracketing search for the highest rate with zero loss (and the rate actually achieved). */
  async searchMaxRate(knownPass: number): Promise<{ max: MaxRate; packets: number }> {
    const tests: RateTest[] = []
    let packets = 0
    const probe = async (rate: number): Promise<boolean> => {
      const d = await this.dnsperf(rate, this.o.searchDurationS, false, 10, 1)
      packets += d.sent
      const pass = d.lost === 0 && d.qps >= 0.97 * rate
      tests.push({ rate, achievedQps: d.qps, sent: d.sent, lost: d.lost, pass })
      return pass
    }
    let lo = knownPass
    let hi = this.o.searchCapQps
    if (await probe(hi)) return { max: { zeroLossQps: hi, capped: true, tests }, packets }
    for (let i = 0; i < this.o.searchSteps && hi / Math.max(lo, 1) > 1.1; i++) {
      const mid = Math.round(lo > 0 ? Math.sqrt(lo * hi) : hi / 2)
      if (await probe(mid)) lo = mid
      else hi = mid
    }
    return { max: { zeroLossQps: lo, failedQps: hi, capped: false, tests }, packets }
  }

  rss(pid: number | undefined): { rss?: number; hwm?: number; anon?: number; file?: number } {
    if (pid === undefined) return {}
    try {
      const s = readStatus(pid)
      return { rss: s.vmRssKb, hwm: s.vmHwmKb, anon: s.rssAnonKb, file: s.rssFileKb }
    } catch {
      return {}
    }
  }

  async variant(v: Variant, log: (s: string) => void): Promise<VariantResult> {
    const res: VariantResult = { id: v.id, label: v.label, packets: 0, runs: [] }
    const why = await v.unavailable?.(this.ctx)
    if (why) {
      res.skipped = why
      log(`${v.id}: skipped: ${why}`)
      return res
    }
    const router = this.ctx.lab.router.ns
    let run: Running | undefined
    try {
      run = await v.start(this.ctx)
      if (v.queue) await installQueueRule(router, this.ctx.queue)
      // At rest: RSS, and CPU burnt with no traffic (timers, metrics), which inflates CPU/packet at low rates.
      const idleMs = this.o.quick ? 500 : 1000
      const c0 = run.pid !== undefined ? readCpu(run.pid) : undefined
      await sleep(idleMs)
      if (c0 && run.pid !== undefined)
        res.idleCpuPct = (cpuDeltaUs(c0, readCpu(run.pid), this.clk).us / (idleMs * 1000)) * 100
      // At rest as docs/deploy.md and the image test state it: started, rules in place, one scrape.
      await run.metrics?.()
      const rest = this.rss(run.pid)
      res.rssRestKb = rest.rss
      res.rssRestAnonKb = rest.anon
      res.rssRestFileKb = rest.file
      // Warm-up: first packets fault in code and fill conntrack; not measured.
      res.packets += (await this.dnsperf(1000, this.o.quick ? 0.5 : 1, false)).sent
      const profiles: Profile[] = ['c10']
      // Stub clients for pair mode, and for the baseline and the C floor it is compared with.
      if (this.o.pairs && (v.id === 'baseline' || v.id === 'nfq-ref-hold' || v.pairMode)) profiles.push('pairs')
      for (const profile of profiles) {
        for (const rate of this.o.rates) {
          const r = await this.measure(v, run, profile, rate)
          res.runs.push(r)
          res.packets += r.sent
          log(
            `${v.id} ${profile} ${rate}/s: A p50 ${r.a.p50} p99 ${r.a.p99} µs, AAAA p50 ${r.aaaa.p50} µs, lost ${r.lost}` +
              (r.cpuUsPerPacket !== undefined ? `, ${r.cpuUsPerPacket.toFixed(2)} µs CPU/pkt` : ''),
          )
        }
      }
      if (this.o.searchSteps > 0) {
        const known = Math.max(
          0,
          ...res.runs
            .filter(r => r.profile === 'c10' && r.lost === 0 && r.achievedQps >= 0.97 * r.rate)
            .map(r => r.rate),
        )
        const s = await this.searchMaxRate(known)
        res.maxRate = s.max
        res.packets += s.packets
        log(
          `${v.id}: zero-loss max ${s.max.zeroLossQps}/s${s.max.capped ? ' (cap)' : ` (fails at ${s.max.failedQps}/s)`}`,
        )
      }
      if (res.packets < this.o.rssPackets && run.pid !== undefined) {
        const rate = Math.max(1000, Math.min(50_000, Math.round((res.maxRate?.zeroLossQps ?? 20_000) * 0.8)))
        const secs = Math.min(30, Math.ceil((this.o.rssPackets - res.packets) / rate))
        res.packets += (await this.dnsperf(rate, secs, false)).sent
      }
      const end = this.rss(run.pid)
      res.rssEndKb = end.rss
      res.hwmKb = end.hwm
    } catch (e: unknown) {
      res.error = e instanceof Error ? e.message.split('\n')[0] : String(e)
      log(`${v.id}: error: ${res.error}`)
    } finally {
      if (v.queue) await removeQueueRule(router, this.ctx.queue)
      if (run) res.exitSummary = await run.stop().catch(() => undefined)
    }
    return res
  }
}

/** Goals: dns-shaper against nfq_ref hold (same rule, same hold) measured in the same run. */
export function goals(variants: VariantResult[]): GoalCheck[] {
  const ref = variants.find(v => v.id === 'nfq-ref-hold' && !v.skipped && !v.error)
  const out: GoalCheck[] = []
  for (const v of variants) {
    if (!v.id.startsWith('dns-shaper') || v.skipped) continue
    // Pair mode is also compared on stub clients (the only traffic where it pairs), with the C floor's
    // stub-client run at the same rate.
    for (const r of v.runs.filter(x => x.profile === 'c10' || (v.id.endsWith('pair') && x.profile === 'pairs'))) {
      const rr = ref?.runs.find(x => x.profile === r.profile && x.rate === r.rate)
      if (ref && (r.profile === 'c10' || rr)) {
        const sfx = r.profile === 'pairs' ? ', stub clients' : ''
        // Faster than the baseline is noise, not a negative cost: count it as nothing added.
        const addedP99 = r.addedA ? Math.max(0, r.addedA.p99) : undefined
        out.push(
          ratioGoal(
            `added A p99 (µs)${sfx}`,
            v.id,
            ref.id,
            addedP99,
            rr?.addedA?.p99,
            1.3,
            null,
            r.rate,
            ADDED_FLOOR_US,
          ),
        )
        out.push(
          ratioGoal(`CPU per packet (µs)${sfx}`, v.id, ref.id, r.cpuUsPerPacket, rr?.cpuUsPerPacket, 1.5, null, r.rate),
        )
      }
      if (!v.id.endsWith('pair') && r.profile === 'c10') out.push(holdGoal(v.id, r.hold, 0.5, r.rate))
    }
    if (ref)
      out.push(
        ratioGoal(
          'zero-loss max rate (qps)',
          v.id,
          ref.id,
          v.maxRate?.zeroLossQps,
          ref.maxRate?.zeroLossQps,
          null,
          0.8,
        ),
      )
  }
  return out
}

function plot(rep: BenchReport, plotRate: number): string {
  const label = (v: VariantResult, r: RunResult): string => `${v.id}${r.profile === 'pairs' ? ' (stub clients)' : ''}`
  const pick = (v: VariantResult): RunResult[] => v.runs.filter(r => r.rate === plotRate)
  const a: Panel = {
    title: `A query latency CDF at ${plotRate} qps`,
    xLabel: 'latency (µs, log)',
    log: true,
    series: rep.variants.flatMap(v =>
      pick(v).map(r => ({ label: label(v, r), points: r.cdfA.filter(([x]) => x > 0) })),
    ),
  }
  const d = Number(rep.config['delayMs'])
  const h: Panel = {
    title: `AAAA hold (latency − baseline median) at ${plotRate} qps`,
    xLabel: 'hold (ms)',
    log: false,
    series: rep.variants.flatMap(v =>
      pick(v)
        .filter(r => r.cdfHoldMs && r.profile === 'c10')
        .map(r => ({ label: label(v, r), points: r.cdfHoldMs! })),
    ),
    markers: [{ x: d, label: `configured ${d} ms` }],
    xMin: Math.max(0, d - 1.5),
    xMax: d + 3,
  }
  return renderSvg(
    'dns-shaper benchmark',
    [a, h],
    `${rep.date} · ${rep.machine.nproc} CPUs · ${rep.machine.cpuModel} · kernel ${rep.machine.kernel}`,
  )
}

async function main(argv: string[]): Promise<number> {
  let o: Options
  try {
    o = parseOptions(argv)
  } catch (e: unknown) {
    process.stderr.write(`${(e as Error).message}\n`)
    return 2
  }
  if (o.rerender) return rerenderSweeps(o.rerender, o.outDir, s => process.stderr.write(`${s}\n`))
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench: needs root (network namespaces, iptables, NFQUEUE)\n')
    return 1
  }
  const t0 = Date.now()
  const log = (s: string): void => {
    process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${s}\n`)
  }
  const mach = machine()
  if (!mach.dnsperf) {
    process.stderr.write('bench: dnsperf not found (apt-get install dnsperf)\n')
    return 1
  }
  if (o.sweeps.length)
    return runSweeps(
      {
        sweeps: o.sweeps,
        quick: o.quick,
        outDir: o.outDir,
        repoRoot: REPO,
        queue: o.queue,
        hosts: o.hosts,
        npmNfqueueDir: o.npmNfqueueDir,
        clkTck: clkTck(),
      },
      mach,
      ALL_VARIANTS,
      log,
    )
  const variants = ALL_VARIANTS.filter(v => o.variants.includes(v.id)).flatMap(v => {
    // The other checkout's daemon right after this one's: the closest two runs on a shared machine.
    const m = /^dns-shaper-(fixed|pair)(-kfilter)?$/.exec(v.id)
    return o.compare && m
      ? [v, dnsShaper(m[1] as 'fixed' | 'pair', m[2] !== undefined, { root: o.compare, tag: 'before' })]
      : [v]
  })
  // The baseline first: every other run is compared with it.
  variants.sort((x, y) => Number(y.id === 'baseline') - Number(x.id === 'baseline'))
  const q = writeQueryFile(o.hosts)
  const lab = await createLab()
  const onSignal = (): void => {
    void lab.destroy().finally(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const results: VariantResult[] = []
  let bench: Bench | undefined
  try {
    await startUnbound({
      ns: lab.server.ns,
      addresses: [lab.server.ipv4, lab.server.ipv6],
      hosts: o.hosts,
      services: 0,
    })
    if (o.pairs) await shortenConntrackTimeouts(lab.router.ns)
    log(`lab ${lab.id} up; ${variants.length} variants, rates ${o.rates.join(',')}, ${o.durationS} s each`)
    bench = new Bench(o, lab, q.path)
    for (const v of variants) results.push(await bench.variant(v, log))
  } finally {
    await lab.destroy().catch((e: unknown) => log(`lab cleanup: ${(e as Error).message}`))
    q.remove()
    process.removeListener('SIGINT', onSignal)
    process.removeListener('SIGTERM', onSignal)
  }
  const notes = [...(bench?.notes ?? [])]
  if (mach.loadavg[0]! > mach.nproc * 0.5)
    notes.push(
      `load average ${mach.loadavg[0]!.toFixed(2)} on ${mach.nproc} CPUs at start: other work shares the CPUs, numbers are noisy`,
    )
  const pairRuns = results.find(v => v.id === 'dns-shaper-pair')?.runs ?? []
  if (pairRuns.some(r => r.profile === 'c10')) {
    notes.push(
      'dns-shaper-pair with 10 clients: dnsperf sends A and AAAA of a name from different sockets (different flows), so no AAAA can pair and each leaves at the window deadline; the "stub" rows use bench/clients/stub_load, one socket per A+AAAA lookup sent back to back as glibc and musl do',
    )
  }
  const report: BenchReport = {
    date: new Date().toISOString(),
    machine: mach,
    config: {
      quick: o.quick,
      rates: o.rates,
      durationS: o.durationS,
      delayMs: o.delayMs,
      clients: 10,
      searchSteps: o.searchSteps,
      searchDurationS: o.searchDurationS,
      searchCapQps: o.searchCapQps,
      rssPackets: o.rssPackets,
      hosts: o.hosts,
    },
    variants: results,
    goals: goals(results),
    notes,
    elapsedS: (Date.now() - t0) / 1000,
  }
  mkdirSync(o.outDir, { recursive: true })
  const plotRate = o.rates.includes(10_000) ? 10_000 : o.rates[0]!
  // Indented for diffs, but [x, p] CDF points on one line each.
  const json = JSON.stringify(report, null, 1).replace(/\[\n\s*(-?[\d.e+-]+),\n\s*(-?[\d.e+-]+)\n\s*\]/g, '[$1, $2]')
  writeFileSync(join(o.outDir, 'latest.json'), json + '\n')
  writeFileSync(join(o.outDir, 'latest.svg'), plot(report, plotRate))
  writeFileSync(join(o.outDir, 'latest.md'), renderMarkdown(report, 'latest.svg'))
  process.stdout.write(renderText(report) + '\n')
  log(`wrote ${join(o.outDir, 'latest.{json,md,svg}')}`)
  return results.some(v => v.error) ? 1 : 0
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then(
    code => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`)
      process.exit(1)
    },
  )
}
