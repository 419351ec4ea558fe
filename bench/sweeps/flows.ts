// Flows sweep: pair mode with more distinct flows per pair window than the pair table has slots
// (rate x window), for back-to-back A+AAAA (glibc, musl) and for an AAAA half a window behind its A.
// Records how many AAAA left with their A (client latency and the daemon's counters) and evictions.

import { flowsPlan, toFloor, warmupS } from '../lib/sweep.js'
import { flowsSupported } from '../lib/sweep-results.js'
import type { FlowsOptions, LoadPoint } from '../lib/sweep.js'
import type { FlowsResult, FlowsRow } from '../lib/sweep-results.js'
import type { Variant } from '../workloads/types.js'
import { stubPoint, sweepContext, withVariant } from './common.js'
import type { SweepEnv } from './common.js'

export async function flowsSweep(env: SweepEnv, o: FlowsOptions, pair: Variant, floor: Variant): Promise<FlowsResult> {
  // CPU floor for "every query verdicted at once": what pair mode does when every AAAA pairs.
  let floorPoint: LoadPoint | undefined
  try {
    floorPoint = await withVariant(env, floor, sweepContext(env, {}), run =>
      stubPoint(env, run, { rate: o.rate, seconds: o.seconds, warmupS: 0.5, timeoutMs: 2000 }),
    )
    env.log(`flows ${floor.id} ${o.rate}/s: ${floorPoint.cpuUsPerQuery?.toFixed(2) ?? '?'} µs CPU/query`)
  } catch (e: unknown) {
    env.log(`flows ${floor.id}: error: ${e instanceof Error ? e.message : String(e)}`)
  }
  const rows: FlowsRow[] = []
  let evictionCounter = false
  const plan = flowsPlan(o.rate, o.windowsMs, o.gaps)
  for (const windowMs of o.windowsMs) {
    const items = plan.filter(i => i.windowMs === windowMs)
    const ctx = sweepContext(env, { delayMs: windowMs, pairWindowMs: windowMs, maxHeld: 65_536 })
    try {
      await withVariant(env, pair, ctx, async run => {
        for (const it of items) {
          // Released with its A: answered at most half a window after its own A (a deadline release
          // comes a whole window later).
          const p = await stubPoint(
            env,
            run,
            {
              rate: it.rate,
              seconds: o.seconds,
              warmupS: warmupS(windowMs, 2),
              timeoutMs: windowMs + 2000,
              gapUs: it.gapUs,
            },
            (windowMs * 1000) / 2,
          )
          const c = p.counters
          if (c && 'pairEvictions' in c) evictionCounter = true
          const released = c ? (c['pairReleased'] ?? 0) + (c['deadlineReleased'] ?? 0) : 0
          const row: FlowsRow = {
            variant: pair.id,
            windowMs,
            gap: it.gap,
            gapUs: it.gapUs,
            flows: it.flows,
            ...p,
            pairedShare: p.bothAnswered ? (p.aaaaPaired ?? 0) / p.bothAnswered : undefined,
            pairedShareCounters: c && released > 0 ? (c['pairReleased'] ?? 0) / released : undefined,
            evictions: c?.['pairEvictions'],
            evictionsPerLookup:
              c?.['pairEvictions'] !== undefined && p.queries > 0 ? c['pairEvictions'] / (p.queries / 2) : undefined,
            cpuRatio: toFloor(p.cpuUsPerQuery, floorPoint?.cpuUsPerQuery),
          }
          rows.push(row)
          env.log(
            `flows window ${windowMs} ms (${it.flows} flows) ${it.gap}: paired ${((row.pairedShare ?? NaN) * 100).toFixed(1)} % ` +
              `(counters ${((row.pairedShareCounters ?? NaN) * 100).toFixed(1)} %), evictions ${row.evictions ?? '?'}, ` +
              `lost ${p.lostA}/${p.lostAAAA}`,
          )
        }
      })
    } catch (e: unknown) {
      const error = e instanceof Error ? e.message.split('\n')[0]! : String(e)
      env.log(`flows window ${windowMs} ms: error: ${error}`)
      for (const it of items)
        if (!rows.some(r => r.windowMs === windowMs && r.gap === it.gap))
          rows.push({ variant: pair.id, windowMs, gap: it.gap, gapUs: it.gapUs, flows: it.flows, error })
    }
  }
  return { options: o, floor: floorPoint, rows, supported: flowsSupported(rows), evictionCounter }
}
