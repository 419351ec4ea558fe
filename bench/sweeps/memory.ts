// Memory sweep: RSS and preallocated bytes per held packet at 10 to 100,000 held, for dns-shaper fixed
// and the C floor. AAAA only from long-lived sockets (100,000 outstanding lookups do not fit in the
// ephemeral port range one socket each); one process, targets in rising order. No more than 65,536
// were ever held at once on the benchmark's kernel (see KERNEL_HOLD_LIMIT): 100,000 shows that limit.

import { fifoPreallocBytes, memoryPlan, toFloor, warmupS } from '../lib/sweep.js'
import type { MemoryOptions } from '../lib/sweep.js'
import type { MemoryResult, MemoryRow } from '../lib/sweep-results.js'
import type { Variant } from '../workloads/types.js'
import { rssOf, stubPoint, sweepContext, withVariant } from './common.js'
import type { SweepEnv } from './common.js'

const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

export async function memorySweep(env: SweepEnv, o: MemoryOptions, variants: Variant[]): Promise<MemoryResult> {
  const rows: MemoryRow[] = []
  const plan = memoryPlan(o.targets, o.holdMs)
  for (const v of variants) {
    // One process per queue count in the plan, targets rising within it.
    for (const queues of [...new Set(plan.map(i => i.queues))]) {
      const items = plan.filter(i => i.queues === queues)
      try {
        await withVariant(env, v, sweepContext(env, { delayMs: o.holdMs, maxHeld: o.maxHeld, queues }), async run => {
          // At rest = after A-only traffic (code faulted in, metrics scraped, nothing held): what the
          // held packets add on top is then theirs, the FIFO ring's zero-fill at the first hold included.
          await stubPoint(env, run, { rate: 500, seconds: 1, timeoutMs: 1000, types: 'a' }, undefined, queues)
          await sleep(500)
          const pids = run.pids ?? (run.pid !== undefined ? [run.pid] : [])
          const rest = rssOf(pids)
          for (const it of items) {
            const p = await stubPoint(
              env,
              run,
              {
                rate: it.rate,
                seconds: 1,
                warmupS: warmupS(o.holdMs),
                // No need to wait for the answers: the next target starts at once (the few still held
                // from the smaller one are counted in its measured depth) and the stop releases the rest.
                timeoutMs: 500,
                types: 'aaaa',
                pool: o.pool,
                procs: o.procs,
              },
              undefined,
              queues,
            )
            const held = p.waitingEnd ?? p.heldEnd ?? 0
            const row: MemoryRow = {
              variant: v.id,
              queues,
              target: it.target,
              rate: it.rate,
              held,
              heldGauge: p.heldEnd,
              notHeld: p.counters ? (p.counters['heldOverflow'] ?? 0) + (p.counters['bypassed'] ?? 0) : undefined,
              rssKb: p.rssKb,
              rssRestKb: rest,
            }
            if (p.rssKb !== undefined && rest !== undefined && held > 0)
              row.rssBytesPerHeld = ((p.rssKb - rest) * 1024) / held
            if (v.id.startsWith('dns-shaper')) {
              // One ring per queue's data plane.
              row.preallocBytes = queues * fifoPreallocBytes(o.maxHeld)
              row.preallocBytesPerHeld = held > 0 ? row.preallocBytes / held : undefined
            }
            rows.push(row)
            env.log(
              `memory ${v.id} x${queues} target ${it.target}: ${held} waiting (gauge ${p.heldEnd ?? '–'}, ` +
                `not held ${row.notHeld ?? '–'}, client late ${p.lateMaxUs ?? '?'} µs): RSS ${p.rssKb ?? '?'} kB ` +
                `(rest ${rest ?? '?'}), ${row.rssBytesPerHeld?.toFixed(0) ?? '?'} B/held`,
            )
          }
        })
      } catch (e: unknown) {
        const error = e instanceof Error ? e.message.split('\n')[0]! : String(e)
        env.log(`memory ${v.id} x${queues}: error: ${error}`)
        for (const it of items)
          if (!rows.some(r => r.variant === v.id && r.target === it.target))
            rows.push({ variant: v.id, queues, target: it.target, rate: it.rate, error })
      }
    }
  }
  for (const r of rows) {
    const ref = rows.find(x => x.variant === 'nfq-ref-hold' && x.target === r.target && !x.error)
    if (ref && !r.error) r.rssRatio = toFloor(r.rssKb, ref.rssKb)
  }
  return { options: o, rows }
}
