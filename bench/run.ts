// Benchmark entry: the latency and cost dns-shaper adds, side by side with the C reference (nfq_ref),
// an unqueued baseline and optionally the npm `nfqueue` package, all in one throwaway lab.
// Run as root: npm run bench -- [--quick] [--rates 1000,10000] [--duration S] (options: bench/options.ts)
// Writes bench/results/latest.{json,md,svg}. Goals are reported as ratios, never asserted.

import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { repoRoot } from '../harness/paths.js'
import { fileURLToPath } from 'node:url'
import { createRunLab } from '../harness/topology.js'
import type { Lab } from '../harness/topology.js'
import { startBenchServer } from './lib/server.js'
import type { DnsperfResult } from './lib/dnsperf.js'
import { runDnsperf, writeQueryFile } from './lib/dnsperf.js'
import { added, cpuPerPacket, holdFromLatency, shaperHold } from './lib/analyze.js'
import { runStub, shortenConntrackTimeouts } from './lib/stub.js'
import { cpuDeltaUs, readCpu, readStatus } from './lib/proc.js'
import type { CpuSample } from './lib/proc.js'
import { counterDeltas, histogram, histogramDelta, histogramQuantile, parseProm } from '../harness/prom.js'
import type { Samples } from '../harness/prom.js'
import { installQueueRule, queueDelta, readQueueStats, removeQueueRule } from './lib/queue.js'
import { renderMarkdown, renderText } from './lib/report.js'
import type { BenchReport, MaxRate, Profile, RateTest, RunResult, VariantResult } from './lib/report.js'
import { cdfPoints, sortedCopy, summarize } from '../harness/stats.js'
import type { Dist } from '../harness/stats.js'
import { dnsShaper } from './workloads/dns-shaper.js'
import type { BenchContext, Running, Variant } from './workloads/types.js'
import { rerenderSweeps, runSweeps } from './sweeps/run-sweeps.js'
import { ALL_VARIANTS, parseOptions, type Options } from './options.js'
import { goals, plot } from './goals.js'
import { clkTck, machine } from './lib/machine.js'

const REPO = repoRoot(import.meta.url)

const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

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

async function main(argv: string[]): Promise<number> {
  let o: Options
  try {
    o = parseOptions(argv, REPO)
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
  const { lab, close } = await createRunLab()
  const results: VariantResult[] = []
  let bench: Bench | undefined
  try {
    await startBenchServer(lab, o.hosts)
    if (o.pairs) await shortenConntrackTimeouts(lab.router.ns)
    log(`lab ${lab.id} up; ${variants.length} variants, rates ${o.rates.join(',')}, ${o.durationS} s each`)
    bench = new Bench(o, lab, q.path)
    for (const v of variants) results.push(await bench.variant(v, log))
  } finally {
    await close(log)
    q.remove()
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
