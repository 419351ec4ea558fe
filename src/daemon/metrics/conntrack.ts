// Conntrack counters of this network namespace (ctnetlink, else /proc), which source is in use, and
// whether each kernel source the scrape reads answered. Read from the scrape's snapshot; no reads here.
import type { ConntrackStats } from '../../kernel/procfs.js'
import { CONNTRACK_SOURCES } from '../../kernel/conntrack-stats.js'
import { SnapshotMetric, type Sample, type Snapshot } from './snapshot-metric.js'

/** Label values of dns_shaper_scrape_source_success: every kernel source a scrape reads. */
export const SCRAPE_SOURCES = ['conntrack_netlink', 'conntrack_procfs', 'nfnetlink_queue'] as const

export function conntrackMetrics(snapshot: () => Snapshot): SnapshotMetric[] {
  const ct = (pick: (s: ConntrackStats) => number | undefined) => (): Sample[] => {
    const s = snapshot().conntrack
    const v = s ? pick(s) : undefined
    return v === undefined ? [] : [{ value: v }]
  }
  return [
    new SnapshotMetric(
      'dns_shaper_conntrack_insert_failed_total',
      'Kernel conntrack (this network namespace, all CPUs): entries that failed to insert, mostly insertion clashes. Since 5.10 only unresolved clashes (packet dropped: a lost query); before 5.10 resolved clashes were counted here too.',
      'counter',
      ct(s => s.insertFailed),
    ),
    new SnapshotMetric(
      'dns_shaper_conntrack_drop_total',
      'Kernel conntrack (this network namespace, all CPUs): packets dropped by conntrack, unresolved insertion clashes included.',
      'counter',
      ct(s => s.drop),
    ),
    new SnapshotMetric(
      'dns_shaper_conntrack_clash_resolve_total',
      'Kernel conntrack (this network namespace, all CPUs): insertion clashes the kernel resolved (clashres, 5.10+; absent before): the A/AAAA race happening, survived.',
      'counter',
      ct(s => s.clashResolve),
    ),
    new SnapshotMetric(
      'dns_shaper_conntrack_loaded',
      'Whether nf_conntrack is loaded in this network namespace (nf_conntrack_count exists); 0: nothing is tracked, so nothing can clash.',
      'gauge',
      () => [{ value: snapshot().conntrackReading.loaded ? 1 : 0 }],
    ),
    new SnapshotMetric(
      'dns_shaper_conntrack_source',
      'Where the conntrack counters come from: 1 for the source in use (netlink: ctnetlink, as conntrack -S; procfs: /proc/net/stat/nf_conntrack; none: no counters).',
      'gauge',
      () =>
        [...CONNTRACK_SOURCES, 'none'].map(source => ({
          labels: { source },
          value: snapshot().conntrackReading.source === source ? 1 : 0,
        })),
    ),
    new SnapshotMetric(
      'dns_shaper_scrape_source_success',
      'Whether the last scrape read this kernel source (1) or not (0: unreadable, absent, or conntrack not loaded), like node_exporter collector_success.',
      'gauge',
      () => {
        const s = snapshot()
        const r = s.conntrackReading
        const ok: Record<(typeof SCRAPE_SOURCES)[number], boolean> = {
          conntrack_netlink: r.sources.netlink.ok,
          conntrack_procfs: r.sources.procfs.ok,
          nfnetlink_queue: s.nfqueueOk,
        }
        return SCRAPE_SOURCES.map(source => ({ labels: { source }, value: ok[source] ? 1 : 0 }))
      },
    ),
  ]
}
