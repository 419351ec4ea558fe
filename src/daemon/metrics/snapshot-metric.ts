// A metric whose samples are computed at scrape from one snapshot of every source, and the histogram
// built that way from native buckets. Holds no state of its own; reads only what it is handed.
import type { QueueStats } from '../../dataplane/nfqueue.js'
import type { NativeConstants } from '../../dataplane/constants.js'
import type { ConntrackStats, NfqueueStats } from '../../kernel/procfs.js'
import type { ConntrackReading } from '../../kernel/conntrack-stats.js'

type Labels = Record<string, string | number>
export interface Sample {
  labels?: Labels
  value: number
  metricName?: string
}

/** A metric whose samples are computed from the scrape's snapshot (prom-client's registry reads get()). */
export class SnapshotMetric {
  readonly aggregator = 'sum'
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
    private readonly sample: () => Sample[],
  ) {}
  get(): { name: string; help: string; type: string; values: Sample[]; aggregator: string } {
    return { name: this.name, help: this.help, type: this.type, values: this.sample(), aggregator: this.aggregator }
  }
  reset(): void {}
}

export interface Snapshot {
  queues: { queue: number; stats: QueueStats }[]
  nfqueue: NfqueueStats[]
  /** nfnetlink_queue read without error (an absent file is no error: nothing bound). */
  nfqueueOk: boolean
  /** The statistics of the source in use (conntrackReading.stats). */
  conntrack: ConntrackStats | undefined
  conntrackReading: ConntrackReading
}

/** Help text of a natively fed series, from native/stats.h where the counters are defined. */
export const nativeHelp =
  (c: NativeConstants) =>
  (name: string): string =>
    c.help[name] ?? name

/** A histogram summed over the queues: native buckets are non-cumulative, Prometheus's cumulative. */
export function histogramMetric(
  name: string,
  help: string,
  bounds: number[],
  snapshot: () => Snapshot,
  pick: (s: QueueStats) => { buckets: number[]; sum: number; count: number },
): SnapshotMetric {
  return new SnapshotMetric(name, help, 'histogram', () => {
    const cumulative = new Array<number>(bounds.length + 1).fill(0)
    let sum = 0
    for (const q of snapshot().queues) {
      const h = pick(q.stats)
      let run = 0
      h.buckets.forEach((b, i) => {
        run += b
        cumulative[i] = (cumulative[i] ?? 0) + run
      })
      sum += h.sum
    }
    const out: Sample[] = bounds.map((le, i) => ({
      metricName: `${name}_bucket`,
      labels: { le },
      value: cumulative[i] ?? 0,
    }))
    out.push({ metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: cumulative[bounds.length] ?? 0 })
    out.push({ metricName: `${name}_sum`, value: sum })
    // _count is the +Inf bucket by definition; a native count read apart from the buckets can be
    // ahead of them by the verdicts observed in between.
    out.push({ metricName: `${name}_count`, value: cumulative[bounds.length] ?? 0 })
    return out
  })
}
