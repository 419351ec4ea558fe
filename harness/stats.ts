// Percentiles and distribution summaries of latency samples (microseconds). Pure: no I/O, no clocks.

export interface Dist {
  n: number
  min: number
  p50: number
  p90: number
  p99: number
  p999: number
  max: number
  mean: number
}

/** Ascending copy as a Float64Array (numeric sort, unlike Array#sort's default). */
export function sortedCopy(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values).sort()
}

/**
 * Nearest-rank percentile of an ascending array: the smallest value with at least p% of the
 * samples at or below it. p in [0, 100]; NaN for an empty array.
 */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be 0..100, got ${p}`)
  const n = sorted.length
  if (n === 0) return NaN
  // p99.9 of 1000 is rank 999, but 99.9 / 100 * 1000 is 999.0000000000001 in floating point.
  const exact = (p * n) / 100
  const rank = Math.max(1, Math.ceil(exact - 1e-9 * Math.max(1, exact)))
  return sorted[Math.min(n, rank) - 1]!
}

/** Summary of unsorted samples. */
export function summarize(values: ArrayLike<number>): Dist {
  const s = sortedCopy(values)
  let sum = 0
  for (let i = 0; i < s.length; i++) sum += s[i]!
  return {
    n: s.length,
    min: s.length ? s[0]! : NaN,
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    p999: percentile(s, 99.9),
    max: s.length ? s[s.length - 1]! : NaN,
    mean: s.length ? sum / s.length : NaN,
  }
}

/** Probabilities the CDF is sampled at: even steps, then a dense tail (p99, p99.9 ... visible). */
export function cdfProbabilities(steps = 100): number[] {
  const out: number[] = []
  for (let i = 0; i <= steps; i++) out.push(i / steps)
  for (const p of [0.995, 0.998, 0.999, 0.9995, 0.9999]) out.push(p)
  return [...new Set(out)].sort((a, b) => a - b)
}

/** [value, cumulative fraction] points of an ascending array, at cdfProbabilities(). */
export function cdfPoints(sorted: ArrayLike<number>, steps = 100): Array<[number, number]> {
  if (sorted.length === 0) return []
  return cdfProbabilities(steps).map((p): [number, number] => [percentile(sorted, p * 100), p])
}

/** Count of values strictly below a bound. */
export function countBelow(values: ArrayLike<number>, bound: number): number {
  let n = 0
  for (let i = 0; i < values.length; i++) if (values[i]! < bound) n++
  return n
}

/** a / b, or null when either side is missing or b is not positive. */
export function ratio(a: number | null | undefined, b: number | null | undefined, floor = 0): number | null {
  if (a == null || b == null || !Number.isFinite(a) || !Number.isFinite(b)) return null
  const d = Math.max(b, floor)
  return d > 0 ? a / d : null
}
