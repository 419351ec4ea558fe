// Series fed by the native data plane: packets by action and QTYPE, parse failures, hold and latency
// histograms, held packets, thread state, the plain counters of native/stats.h, and the configured
// holds. Read from the scrape's snapshot; never calls into the data plane itself.
import type { NativePolicy, QueueStats } from '../../dataplane/nfqueue.js'
import type { NativeConstants } from '../../dataplane/constants.js'
import { describePolicy } from '../../dataplane/policy.js'
import { qtypeName } from '../../dataplane/qtypes.js'
import { histogramMetric, nativeHelp, SnapshotMetric, type Snapshot } from './snapshot-metric.js'

export function dataplaneMetrics(
  c: NativeConstants,
  snapshot: () => Snapshot,
  policy?: () => NativePolicy | undefined,
): SnapshotMetric[] {
  const help = nativeHelp(c)
  const sumQueues = (f: (s: QueueStats) => number): number => snapshot().queues.reduce((a, q) => a + f(q.stats), 0)
  return [
    new SnapshotMetric('dns_shaper_packets_total', help('packets'), 'counter', () =>
      c.actions.flatMap(action =>
        c.packetLabels.map(qtype => ({
          labels: { action, qtype },
          value: sumQueues(s => s.packets[action]?.[qtype] ?? 0),
        })),
      ),
    ),
    new SnapshotMetric('dns_shaper_parse_failures_total', help('parse_failures'), 'counter', () =>
      c.parseReasons.map(reason => ({ labels: { reason }, value: sumQueues(s => s.parseFailures[reason] ?? 0) })),
    ),
    histogramMetric('dns_shaper_hold_seconds', help('hold'), c.holdBucketsSeconds, snapshot, s => s.hold),
    histogramMetric(
      'dns_shaper_verdict_latency_seconds',
      help('latency'),
      c.latencyBucketsSeconds,
      snapshot,
      s => s.latency,
    ),
    new SnapshotMetric(
      'dns_shaper_hold_configured_seconds',
      'Configured hold per held QTYPE (the maximum wait in pair mode); 0 in dry-run.',
      'gauge',
      () => {
        const p = policy?.()
        return p
          ? describePolicy(p).map(r => ({
              labels: { qtype: qtypeName(r.qtype) },
              value: p.dryRun ? 0 : r.holdMs / 1000,
            }))
          : []
      },
    ),
    new SnapshotMetric('dns_shaper_held_packets', help('held_now'), 'gauge', () => [
      { value: sumQueues(s => s.heldNow) },
    ]),
    new SnapshotMetric('dns_shaper_held_packets_peak', help('held_max'), 'gauge', () => [
      { value: sumQueues(s => s.heldMax) },
    ]),
    new SnapshotMetric('dns_shaper_dataplane_running', help('running'), 'gauge', () =>
      snapshot().queues.map(q => ({ labels: { queue: q.queue }, value: q.stats.running ? 1 : 0 })),
    ),
    ...c.counters.map(
      name =>
        new SnapshotMetric(`dns_shaper_${name}_total`, help(name), 'counter', () => [
          { value: sumQueues(s => s.counters[name] ?? 0) },
        ]),
    ),
  ]
}
