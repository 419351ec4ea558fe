// Results of the scaling sweeps: the row and result shapes each sweep fills, and what is read from them
// (the depth knees, the supported flows, the marginal bytes per held packet). Pure: no I/O.
import type { MaxRate } from './report.js'
import { findKnee } from './sweep.js'
import type { DepthOptions, FlowsOptions, GapKind, LoadPoint, MemoryOptions, QueuesOptions } from './sweep.js'

export interface DepthRow extends Partial<LoadPoint> {
  variant: string
  holdMs: number
  expectedDepth: number
  /** Held depth measured: packets waiting in the kernel queue when the measured part ended. */
  depth?: number
  addedA?: { p50: number; p99: number }
  /** Ratios to nfq-ref-hold at the same hold and rate. */
  cpuRatio?: number | null
  addedP99Ratio?: number | null
  error?: string
}

export interface Knee {
  variant: string
  rate: number
  /** First held depth with CPU per query over 2x its value at the lowest depth (undefined: none). */
  cpuKneeDepth?: number
  /** First held depth with A p50 over 2x its value at the lowest depth (p50: the p99 of a shared machine is noise). */
  latencyKneeDepth?: number
  maxDepth?: number
}

export interface DepthResult {
  options: DepthOptions
  baseline: LoadPoint[]
  rows: DepthRow[]
  knees: Knee[]
}

export interface FlowsRow extends Partial<LoadPoint> {
  variant: string
  windowMs: number
  gap: GapKind
  gapUs: number
  flows: number
  /** Client view: lookups whose AAAA came at most W/2 after its A, of those with both answers. */
  pairedShare?: number
  /**
   * Daemon view (exact, what the shaper did): pair_released / (pair_released + deadline_released) over
   * the measured part. The supported maximum is read from it.
   */
  pairedShareCounters?: number
  evictions?: number
  evictionsPerLookup?: number
  cpuRatio?: number | null
  error?: string
}

export interface FlowsResult {
  options: FlowsOptions
  floor?: LoadPoint
  rows: FlowsRow[]
  /** Largest flows per window with >= 99 % paired, per gap kind. */
  supported: Array<{ gap: GapKind; maxFlowsPaired99?: number; firstBelow99?: number }>
  evictionCounter: boolean
}

export interface QueuesRow {
  client: 'dnsperf' | 'stub'
  variant: string
  queues: number
  point?: LoadPoint
  maxRate?: MaxRate
  /** Zero-loss max in queries per second (stub: 2 per lookup). */
  maxQps?: number
  cpuRatio?: number | null
  maxRatio?: number | null
  error?: string
}

export interface QueuesResult {
  options: QueuesOptions
  rows: QueuesRow[]
}

export interface MemoryRow {
  variant: string
  /** Queues (and so processes, for the C floor) this point ran with. */
  queues: number
  target: number
  rate: number
  /** Packets waiting in the kernel queue (nfnetlink_queue) at the end of the measured part. */
  held?: number
  /** dns_shaper_held_packets then (the daemon's own count). */
  heldGauge?: number
  /** AAAA accepted at once instead of held (--max-held reached, or bypassed by the kernel). */
  notHeld?: number
  rssKb?: number
  rssRestKb?: number
  /** (RSS − RSS at rest) / held, bytes. */
  rssBytesPerHeld?: number
  /** Hold FIFO ring (zero-filled at the first hold) / held, bytes; C floor: its static FIFO is not touched ahead. */
  preallocBytes?: number
  preallocBytesPerHeld?: number
  rssRatio?: number | null
  error?: string
}

export interface MemoryResult {
  options: MemoryOptions
  rows: MemoryRow[]
}

/** The knee of each variant's curves at each rate, from depth rows. */
export function depthKnees(rows: readonly DepthRow[], factor = 2): Knee[] {
  const out: Knee[] = []
  const keys = [...new Set(rows.map(r => `${r.variant}\u0000${r.rate}`))]
  for (const k of keys) {
    const [variant, rateS] = k.split('\u0000') as [string, string]
    const rate = Number(rateS)
    const rs = rows.filter(r => r.variant === variant && r.rate === rate && !r.error && r.depth !== undefined)
    const x = (r: DepthRow): number => r.expectedDepth
    out.push({
      variant,
      rate,
      cpuKneeDepth: findKnee(
        rs.map(r => [x(r), r.cpuUsPerQuery ?? NaN] as const),
        factor,
      ),
      latencyKneeDepth: findKnee(
        rs.map(r => [x(r), r.a?.p50 ?? NaN] as const),
        factor,
      ),
      maxDepth: rs.length ? Math.max(...rs.map(r => r.depth ?? 0)) : undefined,
    })
  }
  return out
}

/**
 * Supported maximum per gap kind: the largest flows-per-window still >= `share` paired by the daemon's
 * counters (the client's view where they are missing), and the next larger point that falls below.
 * A dip at a smaller window does not hide a later pass: there the gap is a few ms, and a saturated
 * machine's path jitter, not the table, decides whether the AAAA still falls inside the window.
 */
export function flowsSupported(rows: readonly FlowsRow[], share = 0.99): FlowsResult['supported'] {
  const gaps = [...new Set(rows.map(r => r.gap))]
  const shareOf = (r: FlowsRow): number | undefined => r.pairedShareCounters ?? r.pairedShare
  return gaps.map(gap => {
    const rs = rows.filter(r => r.gap === gap && !r.error && shareOf(r) !== undefined).sort((a, b) => a.flows - b.flows)
    const good = rs.filter(r => shareOf(r)! >= share)
    const max = good.length ? good[good.length - 1]!.flows : undefined
    const firstBad = rs.find(r => shareOf(r)! < share && (max === undefined || r.flows > max))
    return { gap, maxFlowsPaired99: max, firstBelow99: firstBad?.flows }
  })
}

/**
 * Bytes each further held packet costs: RSS growth between consecutive targets of one variant and
 * queue count, over the growth in held packets. Free of the one-off costs (ring zero-fill, heap
 * growth at the first hold) that dominate "RSS above rest / held" at small counts.
 */
export function marginalBytesPerHeld(rows: readonly MemoryRow[]): Map<MemoryRow, number> {
  const out = new Map<MemoryRow, number>()
  const ok = rows.filter(r => !r.error && r.rssKb !== undefined && r.held !== undefined)
  for (const r of ok) {
    const prev = ok
      .filter(x => x.variant === r.variant && x.queues === r.queues && x.held! < r.held!)
      .sort((a, b) => b.held! - a.held!)[0]
    if (prev && r.held! > prev.held!) out.set(r, ((r.rssKb! - prev.rssKb!) * 1024) / (r.held! - prev.held!))
  }
  return out
}
