// `dns-shaper check`: can the shaper run here, and does this node need it? runCheck only composes: it
// gathers the probes (probes.ts), turns each finding into an item (items.ts) and decides the verdict
// (verdict.ts). Probes are injected, so it runs without root; it never changes the system.
import { clashHandling, parseKernelRelease, type ClashHandling, type KernelVersion } from '../kernel/release.js'
import {
  dataplaneItems,
  featureItems,
  iptablesItem,
  kernelItem,
  metricsItem,
  privilegesItem,
  queueItem,
  shaperRulesItem,
  tcItem,
  type CheckConfig,
  type CheckItem,
} from './items.js'
import { dnsServiceItem } from './dns-service.js'
import { conntrackItem, dnsTrackingItem } from './conntrack-items.js'
import type { DataplaneReport } from './dataplane.js'
import { scanRawRules } from './parse.js'
import { gather, type CheckProbes, type ConntrackSample } from './probes.js'
import { decideVerdict, type Verdict } from './verdict.js'
import type { ConntrackSource, SourceResult } from '../kernel/conntrack-stats.js'
import { probeItem } from '../probe/check-item.js'
import type { ProbeResult } from '../probe/run.js'

export const DEFAULT_SAMPLE_SECONDS = 10

export interface CheckReport {
  ready: boolean
  exitCode: 0 | 1
  verdict: Verdict
  items: CheckItem[]
  kernel: (Omit<KernelVersion, 'release'> & { release: string; clash: ClashHandling['level'] }) | { release: string }
  /** `source`: where the counters came from (none: not loaded, or no source answered); `sources`: each one's outcome. */
  conntrack:
    | { loaded: false; source: 'none'; sources: Record<ConntrackSource, SourceResult> }
    | {
        loaded: true
        source: ConntrackSource | 'none'
        sources: Record<ConntrackSource, SourceResult>
        entries: number | undefined
        totals: Record<string, number>
        sampleSeconds: number
        ratesPerSecond: Record<string, number> | undefined
      }
  /** The service dataplanes found; undefined when they could not be probed. */
  dataplanes: DataplaneReport | undefined
  /** The dns-shaper running beside this check (in its pod), and what its health endpoint said; null: none. */
  daemon: { pid: number; listen: string | null; healthz: { status: number; body: string } | null } | null
  /** The race probe's measurement (check --probe): outcome, figures (pairs, clashes, dropped, resolved). */
  probe?: ProbeResult | { error: string }
}

function conntrackReport(ct: ConntrackSample | Error, sampleSeconds: number): CheckReport['conntrack'] {
  if (ct instanceof Error) {
    // As conntrackItem: unknown, so treated as loaded; the verdict then relies on the kernel version.
    const failed = { ok: false, error: ct.message }
    return {
      loaded: true,
      source: 'none',
      sources: { netlink: failed, procfs: failed },
      entries: undefined,
      totals: {},
      sampleSeconds: 0,
      ratesPerSecond: undefined,
    }
  }
  const r = ct.reading
  if (!r.loaded) return { loaded: false, source: 'none', sources: r.sources }
  return {
    loaded: true,
    source: r.source,
    sources: r.sources,
    entries: r.entries ?? r.stats?.entries,
    totals: r.stats?.totals ?? {},
    sampleSeconds: ct.rates ? sampleSeconds : 0,
    ratesPerSecond: ct.rates,
  }
}

export async function runCheck(
  config: CheckConfig,
  probes: CheckProbes,
  opts: { sampleSeconds?: number; probe?: boolean } = {},
): Promise<CheckReport> {
  const sampleSeconds = opts.sampleSeconds ?? DEFAULT_SAMPLE_SECONDS
  const p = await gather(config, probes, sampleSeconds, opts.probe ?? false)
  const version = p.release instanceof Error ? undefined : parseKernelRelease(p.release)
  const releaseText = p.release instanceof Error ? 'unknown' : p.release.trim()
  const handling = version === undefined ? undefined : clashHandling(version)
  const scan = p.raw instanceof Error ? undefined : scanRawRules(p.raw, config.dnsPort)
  const shaperQueues = new Set(scan?.shaper.flatMap(r => r.queues) ?? [])
  const conntrack = conntrackItem(p.conntrack, handling, sampleSeconds)
  const tracking = dnsTrackingItem(scan, p.raw, config)
  const dataplane = dataplaneItems(p.dataplane)

  const items: CheckItem[] = [
    privilegesItem(p.status, p.iptables, config),
    kernelItem(p.release, handling),
    ...(p.probe === undefined ? [] : [probeItem(p.probe)]),
    iptablesItem(p.iptables, config),
    ...featureItems(p.features, p.daemon),
    queueItem(p.bound, shaperQueues, config, p.daemon),
    metricsItem(p.listen, config, p.daemon),
    conntrack.item,
    tracking.item,
    ...[dnsServiceItem(config, p.local, scan)].filter(i => i !== undefined),
    ...(scan === undefined ? [] : [shaperRulesItem(scan, shaperQueues, p.bound, config)]),
    tcItem(p.tc),
    ...dataplane.items,
  ]
  const verdict = decideVerdict({
    release: releaseText,
    kernel: handling,
    conntrackLoaded: conntrack.loaded,
    dnsUntracked: tracking.untracked,
    rates: conntrack.rates,
    blockers: items.filter(i => i.status === 'fail').map(i => `${i.id}: ${i.found}`),
    dataplaneInert: dataplane.report?.shaping === 'inert' ? dataplane.report.summary : undefined,
    probe: p.probe instanceof Error ? undefined : p.probe?.verdict,
  })
  return {
    ready: verdict.ready,
    exitCode: verdict.ready ? 0 : 1,
    verdict,
    items,
    kernel:
      version === undefined || handling === undefined
        ? { release: releaseText }
        : { ...version, clash: handling.level },
    conntrack: conntrackReport(p.conntrack, sampleSeconds),
    dataplanes: dataplane.report,
    daemon:
      p.daemon === undefined
        ? null
        : {
            pid: p.daemon.pid,
            listen: p.daemon.health?.listen ?? null,
            healthz: p.daemon.health ? { status: p.daemon.health.status, body: p.daemon.health.body } : null,
          },
    ...(p.probe === undefined ? {} : { probe: p.probe instanceof Error ? { error: p.probe.message } : p.probe }),
  }
}
