// Prometheus metrics on an own Registry. Packet counters and histograms are aggregated natively and
// read once per scrape (the verdict path never calls into JS); kernel queue and conntrack counters
// come from /proc at scrape time. Nothing here changes state of the shaper.
import client from 'prom-client'
import type { QueueStats, NativeConstants, NativePolicy } from './nfqueue.js'
import { describePolicy } from './policy/compile.js'
import { qtypeName } from './policy/qtypes.js'
import { readConntrackStats, readNfqueueStats, type ConntrackStats, type NfqueueStats } from './procfs.js'

type Labels = Record<string, string | number>
interface Sample {
  labels?: Labels
  value: number
  metricName?: string
}

/** A metric whose samples are computed from the scrape's snapshot (prom-client's registry reads get()). */
class SnapshotMetric {
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

export interface MetricsSources {
  constants: NativeConstants
  /** Per-queue native stats (empty before start). */
  queueStats: () => { queue: number; stats: QueueStats }[]
  /** Queue numbers this shaper binds, to pick our lines out of nfnetlink_queue. */
  queues: () => number[]
  /** The policy in force, for the configured-hold gauge. */
  policy?: () => NativePolicy | undefined
  procRoot?: string
  readNfqueue?: (root: string) => Promise<NfqueueStats[]>
  readConntrack?: (root: string) => Promise<ConntrackStats | undefined>
  /** Called once per source that fails to read; its metrics are then left out. */
  onReadError?: (source: string, err: unknown) => void
}

export interface Snapshot {
  queues: { queue: number; stats: QueueStats }[]
  nfqueue: NfqueueStats[]
  conntrack: ConntrackStats | undefined
}

/** Native counter name -> exported metric (name and help). */
const COUNTER_HELP: Record<string, string> = {
  held_overflow: 'Packets of a held type accepted at once because --max-held packets were already held.',
  dry_run_matches: 'Packets of a held type seen in dry-run mode (accepted, not held).',
  pair_released: 'Held packets released right behind the A query of their flow (pair mode).',
  deadline_released: 'Held packets released when their hold time ended.',
  shutdown_released: 'Held packets accepted early because the queue was stopping.',
  pair_evictions: 'Pair-table entries evicted while still fresh (table too small for the load).',
  verdict_errors: 'Verdicts the kernel answered with an error (e.g. packet id unknown).',
  send_errors: 'Failed sends of a verdict batch to the kernel.',
  recv_errors: 'Failed receives from the queue socket.',
  enobufs: 'Receive-buffer overruns reported by the socket.',
  drains: 'Receive batches that carried at least one packet.',
  verdict_batches: 'Verdict batches sent (one syscall each).',
  policy_updates: 'Policy tables taken by the data plane (start excluded).',
}

export class Metrics {
  readonly registry = new client.Registry()
  readonly reloads: client.Counter<'result'>
  /** Unix time the config was last applied: at start, then at each successful reload. */
  readonly configLastReload: client.Gauge
  /** 1 when the last reload (or the start) applied the config, 0 when the last reload was refused. */
  readonly configLastReloadSuccessful: client.Gauge
  readonly rulesReinstalled: client.Counter
  #snapshot: Snapshot = { queues: [], nfqueue: [], conntrack: undefined }
  readonly #warned = new Set<string>()
  readonly #src: MetricsSources

  constructor(src: MetricsSources) {
    this.#src = src
    // The event-loop-lag monitor wakes the JS thread at this interval; prom-client's default (10 ms)
    // alone cost ~0.4 % of a CPU on an idle node. The JS thread has no per-packet work to lag behind.
    client.collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 250 })
    // prom-client names these gauges *_total, which promtool (rightly) rejects; they add little here.
    for (const name of [
      'nodejs_active_handles_total',
      'nodejs_active_requests_total',
      'nodejs_active_resources_total',
    ]) {
      this.registry.removeSingleMetric(name)
    }
    const c = src.constants
    const labels = [...c.qtypeLabels.map(l => l.name), 'other', 'none']
    const sumQueues = (f: (s: QueueStats) => number): number =>
      this.#snapshot.queues.reduce((a, q) => a + f(q.stats), 0)
    const add = (m: SnapshotMetric): void => this.registry.registerMetric(m as unknown as client.Metric)

    add(
      new SnapshotMetric(
        'dns_shaper_packets_total',
        'Packets seen on the queue, by what was done with them and by QTYPE (none: no question; other: an unlisted type).',
        'counter',
        () =>
          c.actions.flatMap(action =>
            labels.map(qtype => ({
              labels: { action, qtype },
              value: sumQueues(s => s.packets[action]?.[qtype] ?? 0),
            })),
          ),
      ),
    )
    add(
      new SnapshotMetric(
        'dns_shaper_parse_failures_total',
        'Packets that were not a parseable DNS query over UDP, by reason (accepted at once).',
        'counter',
        () =>
          c.parseReasons.map(reason => ({ labels: { reason }, value: sumQueues(s => s.parseFailures[reason] ?? 0) })),
      ),
    )
    add(
      this.#histogram(
        'dns_shaper_hold_seconds',
        'Actual hold of held packets, from receipt to verdict.',
        c.holdBucketsSeconds,
        s => s.hold,
      ),
    )
    add(
      this.#histogram(
        'dns_shaper_verdict_latency_seconds',
        'Receipt-to-verdict time of packets accepted at once.',
        c.latencyBucketsSeconds,
        s => s.latency,
      ),
    )
    add(
      new SnapshotMetric(
        'dns_shaper_hold_configured_seconds',
        'Configured hold per held QTYPE (the maximum wait in pair mode); 0 in dry-run.',
        'gauge',
        () => {
          const p = src.policy?.()
          return p
            ? describePolicy(p).map(r => ({
                labels: { qtype: qtypeName(r.qtype) },
                value: p.dryRun ? 0 : r.holdMs / 1000,
              }))
            : []
        },
      ),
    )
    add(
      new SnapshotMetric('dns_shaper_held_packets', 'Packets held right now.', 'gauge', () => [
        { value: sumQueues(s => s.heldNow) },
      ]),
    )
    add(
      new SnapshotMetric(
        'dns_shaper_held_packets_peak',
        'Most packets held at once since start (per-queue peaks summed: an upper bound with several queues).',
        'gauge',
        () => [{ value: sumQueues(s => s.heldMax) }],
      ),
    )
    add(
      new SnapshotMetric(
        'dns_shaper_dataplane_running',
        'Data-plane threads running with their queue bound, by queue.',
        'gauge',
        () => this.#snapshot.queues.map(q => ({ labels: { queue: q.queue }, value: q.stats.running ? 1 : 0 })),
      ),
    )
    for (const name of c.counters) {
      add(
        new SnapshotMetric(`dns_shaper_${name}_total`, COUNTER_HELP[name] ?? name, 'counter', () => [
          { value: sumQueues(s => s.counters[name] ?? 0) },
        ]),
      )
    }
    const ours = (): NfqueueStats[] => {
      const qs = new Set(src.queues())
      return this.#snapshot.nfqueue.filter(n => qs.has(n.queue))
    }
    add(
      new SnapshotMetric(
        'dns_shaper_queue_dropped_total',
        'Kernel: packets dropped by the queue (queue_dropped in nfnetlink_queue).',
        'counter',
        () => ours().map(n => ({ labels: { queue: n.queue }, value: n.dropped })),
      ),
    )
    add(
      new SnapshotMetric(
        'dns_shaper_queue_user_dropped_total',
        'Kernel: packets the queue could not deliver to the socket (passed unshaped thanks to fail-open).',
        'counter',
        () => ours().map(n => ({ labels: { queue: n.queue }, value: n.userDropped })),
      ),
    )
    add(
      new SnapshotMetric(
        'dns_shaper_queue_waiting',
        'Kernel: packets waiting in the queue for a verdict.',
        'gauge',
        () => ours().map(n => ({ labels: { queue: n.queue }, value: n.waiting })),
      ),
    )
    const ct = (pick: (s: ConntrackStats) => number | undefined) => (): Sample[] => {
      const s = this.#snapshot.conntrack
      const v = s ? pick(s) : undefined
      return v === undefined ? [] : [{ value: v }]
    }
    add(
      new SnapshotMetric(
        'dns_shaper_conntrack_insert_failed_total',
        'Kernel conntrack (this network namespace, all CPUs): entries that failed to insert, mostly insertion clashes. Since 5.10 only unresolved clashes (packet dropped: a lost query); before 5.10 resolved clashes were counted here too.',
        'counter',
        ct(s => s.insertFailed),
      ),
    )
    add(
      new SnapshotMetric(
        'dns_shaper_conntrack_drop_total',
        'Kernel conntrack (this network namespace, all CPUs): packets dropped by conntrack, unresolved insertion clashes included.',
        'counter',
        ct(s => s.drop),
      ),
    )
    add(
      new SnapshotMetric(
        'dns_shaper_conntrack_clash_resolve_total',
        'Kernel conntrack (this network namespace, all CPUs): insertion clashes the kernel resolved (clashres, 5.10+; absent before): the A/AAAA race happening, survived.',
        'counter',
        ct(s => s.clashResolve),
      ),
    )
    this.reloads = new client.Counter({
      name: 'dns_shaper_config_reloads_total',
      help: 'Config reloads (SIGHUP, or the --config file changed), by result.',
      labelNames: ['result'],
      registers: [this.registry],
    })
    // Named like Prometheus's own prometheus_config_last_reload_success_timestamp_seconds and
    // _successful, so the usual "config reload failed" alert carries over.
    this.configLastReload = new client.Gauge({
      name: 'dns_shaper_config_last_reload_timestamp_seconds',
      help: 'Unix time the config was last applied: at start, then at each successful reload.',
      registers: [this.registry],
    })
    this.configLastReloadSuccessful = new client.Gauge({
      name: 'dns_shaper_config_last_reload_successful',
      help: 'Whether the last config reload applied (1) or was refused, keeping the running config (0).',
      registers: [this.registry],
    })
    this.rulesReinstalled = new client.Counter({
      name: 'dns_shaper_rules_reinstalled_total',
      help: 'Times the managed rules were found missing or changed and put back.',
      registers: [this.registry],
    })
    this.reloads.inc({ result: 'ok' }, 0)
    this.reloads.inc({ result: 'error' }, 0)
  }

  #histogram(
    name: string,
    help: string,
    bounds: number[],
    pick: (s: QueueStats) => { buckets: number[]; sum: number; count: number },
  ): SnapshotMetric {
    return new SnapshotMetric(name, help, 'histogram', () => {
      const cumulative = new Array<number>(bounds.length + 1).fill(0)
      let sum = 0
      let count = 0
      for (const q of this.#snapshot.queues) {
        const h = pick(q.stats)
        let run = 0
        h.buckets.forEach((b, i) => {
          run += b
          cumulative[i] = (cumulative[i] ?? 0) + run
        })
        sum += h.sum
        count += h.count
      }
      const out: Sample[] = bounds.map((le, i) => ({
        metricName: `${name}_bucket`,
        labels: { le },
        value: cumulative[i] ?? 0,
      }))
      out.push({ metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: cumulative[bounds.length] ?? 0 })
      out.push({ metricName: `${name}_sum`, value: sum })
      out.push({ metricName: `${name}_count`, value: count })
      return out
    })
  }

  /** Takes one consistent snapshot of every source. /proc read failures leave those metrics out. */
  async refresh(): Promise<Snapshot> {
    const root = this.#src.procRoot ?? '/proc'
    // A source that cannot be read (e.g. nfnetlink_queue is root-only and we run with capabilities
    // only) leaves its series out; say so once rather than on every scrape.
    const warnOnce =
      (what: string) =>
      (e: unknown): undefined => {
        if (!this.#warned.has(what)) {
          this.#warned.add(what)
          this.#src.onReadError?.(what, e)
        }
        return undefined
      }
    const [nfqueue, conntrack] = await Promise.all([
      (this.#src.readNfqueue ?? readNfqueueStats)(root)
        .catch(warnOnce('nfnetlink_queue'))
        .then(v => v ?? []),
      (this.#src.readConntrack ?? readConntrackStats)(root).catch(warnOnce('nf_conntrack')),
    ])
    this.#snapshot = { queues: this.#src.queueStats(), nfqueue, conntrack }
    return this.#snapshot
  }

  /** The text exposition of a fresh snapshot. */
  async render(): Promise<string> {
    await this.refresh()
    return this.registry.metrics()
  }

  get contentType(): string {
    return this.registry.contentType
  }
}
