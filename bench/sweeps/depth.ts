// Held-depth sweep: CPU per query and A latency added as the number of held AAAA grows (holds x rates),
// for the C floor, dns-shaper fixed, fixed behind the kernel filter, and pair mode (stub clients).
// Each hold is one daemon start; each rate one stub_load run after a warm-up of one full hold.

import { addedA, depthPlan, toFloor, warmupS } from '../lib/sweep.js'
import { depthKnees } from '../lib/sweep-results.js'
import type { DepthOptions, LoadPoint } from '../lib/sweep.js'
import type { DepthResult, DepthRow } from '../lib/sweep-results.js'
import { ADDED_FLOOR_US } from '../lib/analyze.js'
import type { Variant } from '../workloads/types.js'
import { stubPoint, sweepContext, withVariant } from './common.js'
import type { SweepEnv } from './common.js'

/** Room for 10,000 held and the jitter around it (the default --max-held is 10,000). */
const MAX_HELD = 65_536

export async function depthSweep(env: SweepEnv, o: DepthOptions, variants: Variant[]): Promise<DepthResult> {
  const plan = depthPlan(o.holdsMs, o.rates)
  const baseline: LoadPoint[] = []
  for (const rate of o.rates) {
    const p = await stubPoint(env, undefined, { rate, seconds: o.seconds, warmupS: 0.5, timeoutMs: 2000 })
    baseline.push(p)
    env.log(`depth baseline ${rate}/s: A p50 ${p.a.p50} p99 ${p.a.p99} µs`)
  }
  const rows: DepthRow[] = []
  for (const v of variants) {
    for (const holdMs of o.holdsMs) {
      const items = plan.filter(i => i.holdMs === holdMs)
      const ctx = sweepContext(env, { delayMs: holdMs, pairWindowMs: holdMs, maxHeld: MAX_HELD })
      try {
        // A daemon that held nothing had its queue rule missing (seen once under load with the kernel
        // filter, whose rules the daemon installs itself): start it once more rather than report it.
        for (let attempt = 1; attempt <= 2; attempt++) {
          const got: DepthRow[] = []
          await withVariant(env, v, ctx, async run => {
            for (const it of items) {
              const p = await stubPoint(
                env,
                run,
                { rate: it.rate, seconds: o.seconds, warmupS: warmupS(holdMs), timeoutMs: holdMs + 2000 },
                (holdMs * 1000) / 2,
              )
              const row: DepthRow = {
                variant: v.id,
                holdMs,
                expectedDepth: it.expectedDepth,
                ...p,
                depth: p.waitingEnd ?? p.heldEnd,
              }
              const b = baseline.find(x => x.rate === it.rate)
              if (b) row.addedA = addedA(p.a, b.a)
              got.push(row)
              env.log(
                `depth ${v.id} hold ${holdMs} ms ${it.rate}/s: depth ${row.depth}, ` +
                  `${p.cpuUsPerQuery?.toFixed(2) ?? '?'} µs CPU/query, A p50 ${p.a.p50} p99 ${p.a.p99} µs, ` +
                  `lost ${p.lostA}/${p.lostAAAA}`,
              )
            }
          })
          const heldNothing = got.some(r => r.counters && (r.counters['held'] ?? 0) === 0)
          if (heldNothing && attempt === 1) {
            env.log(`depth ${v.id} hold ${holdMs} ms: held nothing, starting it again`)
            continue
          }
          if (heldNothing) for (const r of got) r.error = 'held nothing twice: its queue rule was not in place'
          rows.push(...got)
          break
        }
      } catch (e: unknown) {
        const error = e instanceof Error ? e.message.split('\n')[0]! : String(e)
        env.log(`depth ${v.id} hold ${holdMs} ms: error: ${error}`)
        for (const it of items)
          if (!rows.some(r => r.variant === v.id && r.holdMs === holdMs && r.rate === it.rate))
            rows.push({ variant: v.id, holdMs, rate: it.rate, expectedDepth: it.expectedDepth, error })
      }
    }
  }
  for (const r of rows) {
    const ref = rows.find(x => x.variant === 'nfq-ref-hold' && x.holdMs === r.holdMs && x.rate === r.rate && !x.error)
    if (!ref || r.error) continue
    r.cpuRatio = toFloor(r.cpuUsPerQuery, ref.cpuUsPerQuery)
    r.addedP99Ratio = toFloor(r.addedA?.p99, ref.addedA?.p99, ADDED_FLOOR_US)
  }
  return { options: o, baseline, rows, knees: depthKnees(rows) }
}
