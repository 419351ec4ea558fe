// Prometheus metrics on an own Registry. Packet counters and histograms are aggregated natively and
// read once per scrape (the verdict path never calls into JS); kernel queue counters come from /proc,
// conntrack counters from ctnetlink or /proc, at scrape time. Nothing here changes state of the shaper.
import client from 'prom-client'
import type { QueueStats, NativeConstants, NativePolicy } from './nfqueue.js'
import { describePolicy } from './policy/compile.js'
import { qtypeName } from './policy/qtypes.js'
import { readNfqueueStats, type ConntrackStats, type NfqueueStats } from './procfs.js'
import {
  CONNTRACK_SOURCES,
  defaultConntrackReaders,
  readConntrack,
  type ConntrackReading,
  type ConntrackReaders,
} from './conntrack-stats.js'
import { COMMIT, NODE_VERSION, VERSION } from './version.js'

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
  /** /proc/net/stat/nf_conntrack (undefined: file absent). */
  readConntrack?: (root: string) => Promise<ConntrackStats | undefined>
  /** ctnetlink per-CPU statistics (throws when unavailable). */
  readConntrackNetlink?: () => Promise<ConntrackStats>
  /** nf_conntrack_count (undefined: conntrack not loaded). */
  readConntrackCount?: (root: string) => Promise<number | undefined>
  /** Called once per source (a SCRAPE_SOURCES value) that fails to read; dns_shaper_scrape_source_success shows it on every scrape. */
  onReadError?: (source: string, err: unknown) => void
}

/** Label values of dns_shaper_scrape_source_success: every kernel source a scrape reads. */
export const SCRAPE_SOURCES = ['conntrack_netlink', 'conntrack_procfs', 'nfnetlink_queue'] as const

export interface Snapshot {
  queues: { queue: number; stats: QueueStats }[]
  nfqueue: NfqueueStats[]
  /** nfnetlink_queue read without error (an absent file is no error: nothing bound). */
  nfqueueOk: boolean
  /** The statistics of the source in use (conntrackReading.stats). */
  conntrack: ConntrackStats | undefined
  conntrackReading: ConntrackReading
}

const NOT_READ: ConntrackReading = {
  loaded: false,
  entries: undefined,
  source: 'none',
  stats: undefined,
  sources: { netlink: { ok: false, error: 'not read yet' }, procfs: { ok: false, error: 'not read yet' } },
}

export class Metrics {
  readonly registry = new client.Registry()
  readonly reloads: client.Counter<'result'>
  /** Unix time the config was last applied: at start, then at each successful reload. */
  readonly configLastReload: client.Gauge
  /** 1 when the last reload (or the start) applied the config, 0 when the last reload was refused. */
  readonly configLastReloadSuccessful: client.Gauge
  readonly rulesReinstalled: client.Counter
  #snapshot: Snapshot = { queues: [], nfqueue: [], nfqueueOk: false, conntrack: undefined, conntrackReading: NOT_READ }
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
    const labels = c.packetLabels
    // Help text of natively fed series comes from native/stats.h, where the counters are defined.
    const help = (name: string): string => c.help[name] ?? name
    const sumQueues = (f: (s: QueueStats) => number): number =>
      this.#snapshot.queues.reduce((a, q) => a + f(q.stats), 0)
    const add = (m: SnapshotMetric): void => this.registry.registerMetric(m as unknown as client.Metric)

    add(
      new SnapshotMetric('dns_shaper_packets_total', help('packets'), 'counter', () =>
        c.actions.flatMap(action =>
          labels.map(qtype => ({
            labels: { action, qtype },
            value: sumQueues(s => s.packets[action]?.[qtype] ?? 0),
          })),
        ),
      ),
    )
    add(
      new SnapshotMetric('dns_shaper_parse_failures_total', help('parse_failures'), 'counter', () =>
        c.parseReasons.map(reason => ({ labels: { reason }, value: sumQueues(s => s.parseFailures[reason] ?? 0) })),
      ),
    )
    add(this.#histogram('dns_shaper_hold_seconds', help('hold'), c.holdBucketsSeconds, s => s.hold))
    add(this.#histogram('dns_shaper_verdict_latency_seconds', help('latency'), c.latencyBucketsSeconds, s => s.latency))
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
      new SnapshotMetric('dns_shaper_held_packets', help('held_now'), 'gauge', () => [
        { value: sumQueues(s => s.heldNow) },
      ]),
    )
    add(
      new SnapshotMetric('dns_shaper_held_packets_peak', help('held_max'), 'gauge', () => [
        { value: sumQueues(s => s.heldMax) },
      ]),
    )
    add(
      new SnapshotMetric('dns_shaper_dataplane_running', help('running'), 'gauge', () =>
        this.#snapshot.queues.map(q => ({ labels: { queue: q.queue }, value: q.stats.running ? 1 : 0 })),
      ),
    )
    for (const name of c.counters) {
      add(
        new SnapshotMetric(`dns_shaper_${name}_total`, help(name), 'counter', () => [
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
        'Kernel: packets the queue could not deliver to the socket, counted only without fail-open (dns-shaper sets fail-open: its passes show as bypassed id gaps).',
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
    add(
      new SnapshotMetric(
        'dns_shaper_conntrack_loaded',
        'Whether nf_conntrack is loaded in this network namespace (nf_conntrack_count exists); 0: nothing is tracked, so nothing can clash.',
        'gauge',
        () => [{ value: this.#snapshot.conntrackReading.loaded ? 1 : 0 }],
      ),
    )
    add(
      new SnapshotMetric(
        'dns_shaper_conntrack_source',
        'Where the conntrack counters come from: 1 for the source in use (netlink: ctnetlink, as conntrack -S; procfs: /proc/net/stat/nf_conntrack; none: no counters).',
        'gauge',
        () =>
          [...CONNTRACK_SOURCES, 'none'].map(source => ({
            labels: { source },
            value: this.#snapshot.conntrackReading.source === source ? 1 : 0,
          })),
      ),
    )
    add(
      new SnapshotMetric(
        'dns_shaper_scrape_source_success',
        'Whether the last scrape read this kernel source (1) or not (0: unreadable, absent, or conntrack not loaded), like node_exporter collector_success.',
        'gauge',
        () => {
          const r = this.#snapshot.conntrackReading
          const ok: Record<(typeof SCRAPE_SOURCES)[number], boolean> = {
            conntrack_netlink: r.sources.netlink.ok,
            conntrack_procfs: r.sources.procfs.ok,
            nfnetlink_queue: this.#snapshot.nfqueueOk,
          }
          return SCRAPE_SOURCES.map(source => ({ labels: { source }, value: ok[source] ? 1 : 0 }))
        },
      ),
    )
    add(
      new SnapshotMetric(
        'dns_shaper_build_info',
        'Always 1; the labels name the dns-shaper version, the commit it was built from and the Node.js runtime.',
        'gauge',
        () => [{ labels: { version: VERSION, commit: COMMIT, node_version: NODE_VERSION }, value: 1 }],
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
    // Successful until a reload is refused (the counter alone cannot tell whether the last reload
    // failed, since an ok may have followed the error); the daemon records the start with recordApplied().
    this.configLastReloadSuccessful.set(1)
  }

  /** The config in force was applied at `nowMs` (milliseconds since the epoch): at start, or by a reload. */
  recordApplied(nowMs: number): void {
    this.configLastReloadSuccessful.set(1)
    this.configLastReload.set(nowMs / 1000)
  }

  /**
   * Counts a config reload (SIGHUP or the --config poller) and records its result and, when it applied,
   * its time (milliseconds since the epoch).
   */
  recordReload(ok: boolean, nowMs: number = Date.now()): void {
    this.reloads.inc({ result: ok ? 'ok' : 'error' })
    if (ok) this.recordApplied(nowMs)
    else this.configLastReloadSuccessful.set(0)
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
      for (const q of this.#snapshot.queues) {
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

  /** Takes one consistent snapshot of every source. A source that fails leaves its metrics out and shows 0 in dns_shaper_scrape_source_success. */
  async refresh(): Promise<Snapshot> {
    const root = this.#src.procRoot ?? '/proc'
    // A source that cannot be read (e.g. nfnetlink_queue is root-only and we run with capabilities
    // only) leaves its series out and its success gauge at 0; say so once rather than on every scrape.
    const warnOnce =
      (what: string) =>
      (e: unknown): undefined => {
        if (!this.#warned.has(what)) {
          this.#warned.add(what)
          this.#src.onReadError?.(what, e)
        }
        return undefined
      }
    const defaults = defaultConntrackReaders(root)
    const { readConntrack: procfs, readConntrackNetlink: netlink, readConntrackCount: count } = this.#src
    const readers: ConntrackReaders = {
      count: count ? () => count(root) : defaults.count,
      netlink: netlink ?? defaults.netlink,
      procfs: procfs ? () => procfs(root) : defaults.procfs,
    }
    let nfqueueOk = true
    const [nfqueue, reading] = await Promise.all([
      (this.#src.readNfqueue ?? readNfqueueStats)(root)
        .catch((e: unknown) => {
          nfqueueOk = false
          return warnOnce('nfnetlink_queue')(e)
        })
        .then(v => v ?? []),
      readConntrack(readers),
    ])
    // Only while conntrack is loaded is a failing source worth a line: unloaded, nothing can clash.
    if (reading.loaded) {
      for (const s of CONNTRACK_SOURCES) {
        const r = reading.sources[s]
        if (!r.ok) warnOnce(`conntrack_${s}`)(new Error(r.error))
      }
    }
    this.#snapshot = {
      queues: this.#src.queueStats(),
      nfqueue,
      nfqueueOk,
      conntrack: reading.stats,
      conntrackReading: reading,
    }
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
