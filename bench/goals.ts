// The benchmark's goals as ratios against the C reference measured in the same run, and the latency plot of
// a run. Pure: reports, never asserts (a goal missed is a row in the report, not a failure).
import { ADDED_FLOOR_US, holdGoal, ratioGoal } from './lib/analyze.js'
import type { GoalCheck } from './lib/analyze.js'
import { renderSvg } from './lib/plot.js'
import type { Panel } from './lib/plot.js'
import type { BenchReport, RunResult, VariantResult } from './lib/report.js'

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

export function plot(rep: BenchReport, plotRate: number): string {
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
