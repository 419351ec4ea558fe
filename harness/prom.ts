// Just enough of the Prometheus text format to read the daemon's counters and its hold histogram:
// samples by exact name+labels, histogram buckets, deltas between two scrapes, bucket quantiles.

export type Samples = Map<string, number>

/** `name{labels} value` lines; comments and malformed lines are skipped. Keys keep the label text as printed. */
export function parseProm(text: string): Samples {
  const out: Samples = new Map()
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)(?:\s+\d+)?$/.exec(line)
    if (!m) continue
    const v = m[2] === '+Inf' ? Infinity : m[2] === '-Inf' ? -Infinity : Number(m[2])
    if (!Number.isNaN(v) || m[2] === 'NaN') out.set(m[1]!, v)
  }
  return out
}

export interface Histogram {
  /** Ascending upper bounds (Infinity last) with cumulative counts. */
  buckets: Array<{ le: number; count: number }>
  count: number
  sum: number
}

/** The unlabelled histogram `name` (only an `le` label on its buckets), or undefined if absent. */
export function histogram(s: Samples, name: string): Histogram | undefined {
  const buckets: Array<{ le: number; count: number }> = []
  const prefix = `${name}_bucket{le="`
  for (const [k, v] of s) {
    if (!k.startsWith(prefix) || !k.endsWith('"}')) continue
    const le = k.slice(prefix.length, -2)
    buckets.push({ le: le === '+Inf' ? Infinity : Number(le), count: v })
  }
  const count = s.get(`${name}_count`)
  if (buckets.length === 0 || count === undefined) return undefined
  buckets.sort((a, b) => a.le - b.le)
  return { buckets, count, sum: s.get(`${name}_sum`) ?? NaN }
}

/** after − before, bucket by bucket (same bucket layout assumed; a missing `before` is zero). */
export function histogramDelta(after: Histogram, before: Histogram | undefined): Histogram {
  if (!before) return after
  const b = new Map(before.buckets.map(x => [x.le, x.count]))
  return {
    buckets: after.buckets.map(x => ({ le: x.le, count: x.count - (b.get(x.le) ?? 0) })),
    count: after.count - before.count,
    sum: after.sum - before.sum,
  }
}

/**
 * q-quantile (0..1) by linear interpolation inside the bucket that holds it, like PromQL's
 * histogram_quantile (the lower edge of the first bucket is 0; a quantile in +Inf returns the
 * largest finite bound). NaN for an empty histogram.
 */
export function histogramQuantile(h: Histogram, q: number): number {
  if (h.count <= 0) return NaN
  const rank = q * h.count
  let prevLe = 0
  let prevCount = 0
  for (const b of h.buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return prevLe
      const inBucket = b.count - prevCount
      return inBucket > 0 ? prevLe + ((b.le - prevLe) * (rank - prevCount)) / inBucket : b.le
    }
    prevLe = b.le === Infinity ? prevLe : b.le
    prevCount = b.count
  }
  return prevLe
}

/**
 * Observations certainly below `bound`: the cumulative count of the largest bucket whose upper
 * bound is strictly below it (a bucket straddling the bound is not counted).
 */
export function countCertainlyBelow(h: Histogram, bound: number): number {
  let n = 0
  for (const b of h.buckets) if (b.le < bound) n = b.count
  return n
}

/** Value of one exact sample (name and labels as printed) in a /metrics text; undefined when absent. */
export function metricValue(text: string, key: string): number | undefined {
  return parseProm(text).get(key)
}

/**
 * Value of one exact sample in a /metrics text; throws when absent, so a renamed or missing metric fails
 * the check instead of reading as the 0 the check expects.
 */
export function sampleOf(text: string, key: string): number {
  const v = metricValue(text, key)
  if (v === undefined) throw new Error(`/metrics has no sample ${key}`)
  return v
}

/** Value of one sample, 0 when absent (counters not yet created). */
export function sample(s: Samples, key: string): number {
  return s.get(key) ?? 0
}

/** Sum of the samples whose key starts with prefix, e.g. `dns_shaper_packets_total{action="bypassed"`. */
export function sumPrefix(s: Samples, prefix: string): number {
  let n = 0
  for (const [k, v] of s) if (k.startsWith(prefix)) n += v
  return n
}

/** The daemon's counters the benchmark reports, by short name: [name, exact sample or label prefix ending in `"`]. */
export const SHAPER_COUNTERS: ReadonlyArray<readonly [string, string]> = [
  ['held', 'dns_shaper_packets_total{action="held"'],
  ['accepted', 'dns_shaper_packets_total{action="accepted"'],
  ['bypassed', 'dns_shaper_packets_total{action="bypassed"'],
  ['pairReleased', 'dns_shaper_pair_released_total'],
  ['deadlineReleased', 'dns_shaper_deadline_released_total'],
  ['pairEvictions', 'dns_shaper_pair_evictions_total'],
  ['heldOverflow', 'dns_shaper_held_overflow_total'],
  ['enobufs', 'dns_shaper_enobufs_total'],
  ['verdictErrors', 'dns_shaper_verdict_errors_total'],
]

/**
 * Each counter's increase between two scrapes (a missing earlier scrape counts as zero). A counter the
 * later scrape does not have at all is left out, so "not exported" stays distinguishable from 0.
 */
export function counterDeltas(after: Samples | undefined, before: Samples | undefined): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [name, key] of SHAPER_COUNTERS) {
    if (after && ![...after.keys()].some(k => (key.endsWith('"') ? k.startsWith(key) : k === key))) continue
    const val = (s: Samples | undefined): number => (s ? (key.endsWith('"') ? sumPrefix(s, key) : sample(s, key)) : 0)
    out[name] = val(after) - val(before)
  }
  return out
}
