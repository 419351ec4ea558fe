// Queues sweep: --queues 1 and 2 (--queue-balance) for dns-shaper against the C floor run once per
// queue, with dnsperf (fixed mode) and with stub clients (pair mode): CPU per query at one rate and
// the zero-loss max rate. The baseline (no queue) shows what the lab and the client reach alone.

import { runDnsperf } from '../lib/dnsperf.js'
import { runStub } from '../lib/stub.js'
import { searchMaxRate, toFloor } from '../lib/sweep.js'
import type { LoadPoint, ProbeResult, QueuesOptions } from '../lib/sweep.js'
import type { QueuesResult, QueuesRow } from '../lib/sweep-results.js'
import type { Running, Variant } from '../workloads/types.js'
import { dnsperfPoint, stubPoint, sweepContext, withVariant } from './common.js'
import type { SweepEnv } from './common.js'

/** A probe counts only if the client kept its schedule: sends at most this late. */
const ON_SCHEDULE_US = 50_000

export async function queuesSweep(
  env: SweepEnv,
  o: QueuesOptions,
  sets: { dnsperf: Variant[]; stub: Variant[] },
): Promise<QueuesResult> {
  const rows: QueuesRow[] = []
  for (const client of ['dnsperf', 'stub'] as const) {
    for (const v of sets[client]) {
      for (const queues of v.queue ? o.queues : [1]) {
        const row: QueuesRow = { client, variant: v.id, queues }
        try {
          await withVariant(env, v, sweepContext(env, { delayMs: 5, queues }), async (run: Running | undefined) => {
            const base = v.id === 'baseline' ? undefined : run
            let point: LoadPoint
            if (client === 'dnsperf') point = await dnsperfPoint(env, base, o.dnsperfRate, o.seconds)
            else
              point = await stubPoint(env, base, {
                rate: o.stubRate,
                seconds: o.seconds,
                warmupS: 0.5,
                timeoutMs: 1000,
              })
            row.point = point
            const lost = point.lostA + point.lostAAAA
            const probe = async (rate: number): Promise<ProbeResult> => {
              if (client === 'dnsperf') {
                const d = await runDnsperf(env.lab.client.ns, {
                  server: env.lab.server.ipv4,
                  dataFile: env.dataFile,
                  rate,
                  durationS: o.probeS,
                  clients: 10,
                  timeoutS: 1,
                })
                return { achievedQps: d.qps, sent: d.sent, lost: d.lost, onSchedule: true }
              }
              const d = await runStub(env.lab.client.ns, env.repoRoot, {
                server: env.lab.server.ipv4,
                rate,
                seconds: o.probeS,
                timeoutMs: 1000,
              })
              return {
                achievedQps: d.summary.measured / o.probeS,
                sent: d.lookups * 2,
                lost: d.lostA + d.lostAAAA,
                onSchedule: d.summary.lateMaxUs <= ON_SCHEDULE_US && d.summary.throttled === 0,
              }
            }
            const rate = client === 'dnsperf' ? o.dnsperfRate : o.stubRate
            row.maxRate = await searchMaxRate(probe, {
              knownPass: lost === 0 ? rate : 0,
              cap: client === 'dnsperf' ? o.dnsperfCap : o.stubCap,
              steps: o.searchSteps,
            })
            row.maxQps = row.maxRate.zeroLossQps * (client === 'stub' ? 2 : 1)
          })
        } catch (e: unknown) {
          row.error = e instanceof Error ? e.message.split('\n')[0]! : String(e)
        }
        rows.push(row)
        env.log(
          `queues ${client} ${v.id} x${queues}: ${row.point?.cpuUsPerQuery?.toFixed(2) ?? '?'} µs CPU/query, ` +
            `zero-loss max ${row.maxQps ?? '?'} qps${row.maxRate?.capped ? ' (cap)' : ''}${row.error ? `, error: ${row.error}` : ''}`,
        )
      }
    }
  }
  for (const r of rows) {
    const ref = rows.find(
      x => x.client === r.client && x.variant === 'nfq-ref-hold' && x.queues === r.queues && !x.error,
    )
    if (!ref || r.error || r.variant === 'baseline') continue
    r.cpuRatio = toFloor(r.point?.cpuUsPerQuery, ref.point?.cpuUsPerQuery)
    r.maxRatio = toFloor(r.maxQps, ref.maxQps)
  }
  return { options: o, rows }
}
