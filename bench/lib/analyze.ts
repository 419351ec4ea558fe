// Turns raw runs into the reported numbers: latency added over the baseline, the AAAA hold as the
// client saw it, early releases, CPU per packet, and the goals as ratios against nfq_ref.
// Pure: every input is passed in, so the rules can be unit-tested.

import type { Histogram } from '../../harness/prom.js'
import { histogramQuantile, countCertainlyBelow } from '../../harness/prom.js'
import type { Dist } from '../../harness/stats.js'
import { countBelow, percentile, ratio, sortedCopy, summarize } from '../../harness/stats.js'

export interface Added {
  p50: number
  p99: number
  p999: number
}

/** Per-percentile difference variant − baseline (µs); may be negative within noise. */
export function added(v: Dist, base: Dist): Added {
  return { p50: v.p50 - base.p50, p99: v.p99 - base.p99, p999: v.p999 - base.p999 }
}

export interface HoldStats {
  configuredMs: number
  /** AAAA latency − the baseline's AAAA median at the same rate, ms. */
  p50Ms: number
  p99Ms: number
  maxMs: number
  /** AAAA answers whose latency minus the baseline's fastest answer is below the hold: certainly released early. */
  early: number
  /** AAAA answers counted. */
  n: number
  baseMedianUs: number
  baseMinUs: number
}

/**
 * The hold as the client sees it. A held AAAA's latency is the hold plus the path; the path is at
 * least the baseline's fastest answer, so latency − baseMin < hold proves an early release.
 * The distribution subtracts the baseline's median path instead (the typical path).
 */
export function holdFromLatency(
  aaaaUs: ArrayLike<number>,
  delayMs: number,
  baseMedianUs: number,
  baseMinUs: number,
): HoldStats {
  const hold = sortedCopy(Array.from(aaaaUs, v => v - baseMedianUs))
  const threshold = delayMs * 1000 + baseMinUs
  return {
    configuredMs: delayMs,
    p50Ms: percentile(hold, 50) / 1000,
    p99Ms: percentile(hold, 99) / 1000,
    maxMs: hold.length ? hold[hold.length - 1]! / 1000 : NaN,
    early: countBelow(aaaaUs, threshold),
    n: aaaaUs.length,
    baseMedianUs,
    baseMinUs,
  }
}

export interface ShaperHold {
  count: number
  p50Ms: number
  p99Ms: number
  /** Holds in buckets entirely below the configured hold (certainly early). */
  belowConfigured: number
}

/** dns_shaper_hold_seconds (delta over one run) summarised. */
export function shaperHold(h: Histogram, delayMs: number): ShaperHold {
  return {
    count: h.count,
    p50Ms: histogramQuantile(h, 0.5) * 1000,
    p99Ms: histogramQuantile(h, 0.99) * 1000,
    belowConfigured: countCertainlyBelow(h, delayMs / 1000),
  }
}

/** CPU µs per packet, or undefined without a process or packets. */
export function cpuPerPacket(cpuUs: number | undefined, packets: number): number | undefined {
  return cpuUs === undefined || packets <= 0 ? undefined : cpuUs / packets
}

/** Latency summary in µs of one type's answers. */
export function dist(values: ArrayLike<number>): Dist {
  return summarize(values)
}

export interface GoalCheck {
  goal: string
  variant: string
  reference: string
  rate?: number
  value: number | null
  referenceValue: number | null
  ratio: number | null
  limit: string
  pass: boolean | null
}

/** Floor for added-latency ratios: below ~5 µs the difference is dnsperf's resolution and noise. */
export const ADDED_FLOOR_US = 5

export function ratioGoal(
  goal: string,
  variant: string,
  reference: string,
  value: number | null | undefined,
  refValue: number | null | undefined,
  maxRatio: number | null,
  minRatio: number | null,
  rate?: number,
  floor = 0,
): GoalCheck {
  const r = ratio(value, refValue, floor)
  const pass = r === null ? null : (maxRatio === null || r <= maxRatio) && (minRatio === null || r >= minRatio)
  return {
    goal,
    variant,
    reference,
    rate,
    value: value ?? null,
    referenceValue: refValue ?? null,
    ratio: r,
    limit: maxRatio !== null ? `≤ ${maxRatio}×` : `≥ ${minRatio}×`,
    pass,
  }
}

/** Hold goal: p99 within `slackMs` of the configured hold and nothing early. */
export function holdGoal(variant: string, h: HoldStats | undefined, slackMs: number, rate?: number): GoalCheck {
  const over = h ? h.p99Ms - h.configuredMs : null
  return {
    goal: 'AAAA hold p99 − configured (ms), early releases',
    variant,
    reference: 'configured',
    rate,
    value: over,
    referenceValue: h ? h.early : null,
    ratio: null,
    limit: `≤ ${slackMs} ms, 0 early`,
    pass: h && over !== null && Number.isFinite(over) ? over <= slackMs && h.early === 0 : null,
  }
}
