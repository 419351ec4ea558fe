// Memory sweep: RSS and preallocated bytes per held packet at 10, 1,000 and 100,000 held, for
// dns-shaper fixed and the C floor. AAAA only from long-lived sockets (100,000 outstanding lookups
// do not fit in the ephemeral port range one socket each); one process, targets in rising order.

import { fifoPreallocBytes, memoryPlan, toFloor, warmupS } from '../lib/sweep.js'
import type { MemoryOptions, MemoryResult, MemoryRow } from '../lib/sweep.js'
import type { Variant } from '../workloads/types.js'
import { rssOf, stubPoint, sweepContext, withVariant } from './common.js'
import type { SweepEnv } from './common.js'

const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

export async function memorySweep(env: SweepEnv, o: MemoryOptions, variants: Variant[]): Promise<MemoryResult> {
  const rows: MemoryRow[] = []
  const plan = memoryPlan(o.targets, o.holdMs)
  for (const v of variants) {
    try {
      await withVariant(env, v, sweepContext(env, { delayMs: o.holdMs, maxHeld: o.maxHeld }), async run => {
        await sleep(1000)
        const pids = run.pids ?? (run.pid !== undefined ? [run.pid] : [])
        const rest = rssOf(pids)
        for (const it of plan) {
          const p = await stubPoint(env, run, {
            rate: it.rate,
            seconds: 1,
            warmupS: warmupS(o.holdMs),
            timeoutMs: o.holdMs + 3000,
            types: 'aaaa',
            pool: o.pool,
          })
          const held = p.heldEnd ?? it.target
          const row: MemoryRow = {
            variant: v.id,
            target: it.target,
            rate: it.rate,
            held,
            rssKb: p.rssKb,
            rssRestKb: rest,
            lostAAAA: p.lostAAAA,
          }
          if (p.rssKb !== undefined && rest !== undefined && held > 0)
            row.rssBytesPerHeld = ((p.rssKb - rest) * 1024) / held
          if (v.id.startsWith('dns-shaper')) {
            row.preallocBytes = fifoPreallocBytes(o.maxHeld)
            row.preallocBytesPerHeld = held > 0 ? row.preallocBytes / held : undefined
          }
          rows.push(row)
          env.log(
            `memory ${v.id} ${it.target} held (gauge ${p.heldEnd ?? '–'}): RSS ${p.rssKb ?? '?'} kB (rest ${rest ?? '?'}), ` +
              `${row.rssBytesPerHeld?.toFixed(0) ?? '?'} B/held`,
          )
        }
      })
    } catch (e: unknown) {
      const error = e instanceof Error ? e.message.split('\n')[0]! : String(e)
      env.log(`memory ${v.id}: error: ${error}`)
      for (const it of plan)
        if (!rows.some(r => r.variant === v.id && r.target === it.target))
          rows.push({ variant: v.id, target: it.target, rate: it.rate, error })
    }
  }
  for (const r of rows) {
    const ref = rows.find(x => x.variant === 'nfq-ref-hold' && x.target === r.target && !x.error)
    if (ref && !r.error) r.rssRatio = toFloor(r.rssKb, ref.rssKb)
  }
  return { options: o, rows }
}
