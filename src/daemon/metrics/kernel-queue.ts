// The kernel's side of our queues (nfnetlink_queue): drops, undeliverable packets, packets waiting.
// Only the lines of the queues this daemon binds; read from the scrape's snapshot.
import type { NfqueueStats } from '../../kernel/procfs.js'
import { SnapshotMetric, type Snapshot } from './snapshot-metric.js'

export function kernelQueueMetrics(snapshot: () => Snapshot, queues: () => number[]): SnapshotMetric[] {
  const ours = (): NfqueueStats[] => {
    const qs = new Set(queues())
    return snapshot().nfqueue.filter(n => qs.has(n.queue))
  }
  const perQueue = (name: string, help: string, type: 'counter' | 'gauge', pick: (n: NfqueueStats) => number) =>
    new SnapshotMetric(name, help, type, () => ours().map(n => ({ labels: { queue: n.queue }, value: pick(n) })))
  return [
    perQueue(
      'dns_shaper_queue_dropped_total',
      'Kernel: packets dropped by the queue (queue_dropped in nfnetlink_queue).',
      'counter',
      n => n.dropped,
    ),
    perQueue(
      'dns_shaper_queue_user_dropped_total',
      'Kernel: packets the queue could not deliver to the socket, counted only without fail-open (dns-shaper sets fail-open: its passes show as bypassed id gaps).',
      'counter',
      n => n.userDropped,
    ),
    perQueue(
      'dns_shaper_queue_waiting',
      'Kernel: packets waiting in the queue for a verdict.',
      'gauge',
      n => n.waiting,
    ),
  ]
}
