// Prometheus metrics on an own Registry. Packet counters and histograms are aggregated natively and
// read once per scrape (the verdict path never calls into JS); kernel queue counters come from /proc,
// conntrack counters from ctnetlink or /proc, at scrape time. Nothing here changes state of the shaper.
// Each group of series lives in its own file under metrics/; this file takes the snapshot they read.
import type client from 'prom-client'
import type { QueueStats, NativePolicy } from '../dataplane/nfqueue.js'
import type { NativeConstants } from '../dataplane/constants.js'
import { readNfqueueStats, type ConntrackStats, type NfqueueStats } from '../kernel/procfs.js'
import {
  CONNTRACK_SOURCES,
  defaultConntrackReaders,
  readConntrack,
  type ConntrackReading,
  type ConntrackReaders,
} from '../kernel/conntrack-stats.js'
import { COMMIT, NODE_VERSION, VERSION } from '../version.js'
import { SnapshotMetric, type Snapshot } from './metrics/snapshot-metric.js'
import { dataplaneMetrics } from './metrics/dataplane.js'
import { kernelQueueMetrics } from './metrics/kernel-queue.js'
import { conntrackMetrics } from './metrics/conntrack.js'
import { ReloadMetrics } from './metrics/reload.js'
import { prom } from './metrics/prom.js'

export { SnapshotMetric, type Sample, type Snapshot } from './metrics/snapshot-metric.js'
export { SCRAPE_SOURCES } from './metrics/conntrack.js'

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

const NOT_READ: ConntrackReading = {
  loaded: false,
  entries: undefined,
  source: 'none',
  stats: undefined,
  sources: { netlink: { ok: false, error: 'not read yet' }, procfs: { ok: false, error: 'not read yet' } },
}

export class Metrics {
  readonly registry = new prom.Registry()
  #snapshot: Snapshot = { queues: [], nfqueue: [], nfqueueOk: false, conntrack: undefined, conntrackReading: NOT_READ }
  readonly #warned = new Set<string>()
  readonly #src: MetricsSources
  readonly #reload: ReloadMetrics

  constructor(src: MetricsSources) {
    this.#src = src
    // The event-loop-lag monitor wakes the JS thread at this interval; prom-client's default (10 ms)
    // alone cost ~0.4 % of a CPU on an idle node. The JS thread has no per-packet work to lag behind.
    prom.collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 250 })
    // prom-client names these gauges *_total, which promtool (rightly) rejects; they add little here.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
      this.registry.removeSingleMetric(name)
    const snapshot = (): Snapshot => this.#snapshot
    for (const m of [
      ...dataplaneMetrics(src.constants, snapshot, src.policy),
      ...kernelQueueMetrics(snapshot, src.queues),
      ...conntrackMetrics(snapshot),
      new SnapshotMetric(
        'dns_shaper_build_info',
        'Always 1; the labels name the dns-shaper version, the commit it was built from and the Node.js runtime.',
        'gauge',
        () => [{ labels: { version: VERSION, commit: COMMIT, node_version: NODE_VERSION }, value: 1 }],
      ),
    ])
      this.registry.registerMetric(m as unknown as client.Metric)
    this.#reload = new ReloadMetrics(this.registry)
  }

  get reloads(): ReloadMetrics['reloads'] {
    return this.#reload.reloads
  }
  get rulesReinstalled(): ReloadMetrics['rulesReinstalled'] {
    return this.#reload.rulesReinstalled
  }
  /** See ReloadMetrics.recordApplied. */
  recordApplied(nowMs: number): void {
    this.#reload.recordApplied(nowMs)
  }
  /** See ReloadMetrics.recordRestartRequired. */
  recordRestartRequired(settings: readonly string[]): void {
    this.#reload.recordRestartRequired(settings)
  }
  /** See ReloadMetrics.recordReload. */
  recordReload(ok: boolean, nowMs: number = Date.now()): void {
    this.#reload.recordReload(ok, nowMs)
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
