// `dns-shaper check`: can the shaper run here, and does this node need it? runCheck only composes: it
// gathers the probes (probes.ts), turns each finding into an item (items.ts) and decides the verdict
// (verdict.ts). Probes are injected, so it runs without root; it never changes the system.
import { clashHandling, parseKernelRelease, type ClashHandling, type KernelVersion } from '../kernel.js'
import {
  conntrackItem,
  dnsTrackingItem,
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
import { scanRawRules } from './parse.js'
import { gather, type CheckProbes } from './probes.js'
import { decideVerdict, type Verdict } from './verdict.js'

export const DEFAULT_SAMPLE_SECONDS = 10

export interface CheckReport {
  ready: boolean
  exitCode: 0 | 1
  verdict: Verdict
  items: CheckItem[]
  kernel: (Omit<KernelVersion, 'release'> & { release: string; clash: ClashHandling['level'] }) | { release: string }
  conntrack:
    | { loaded: false }
    | {
        loaded: true
        entries: number | undefined
        totals: Record<string, number>
        sampleSeconds: number
        ratesPerSecond: Record<string, number> | undefined
      }
}

export async function runCheck(
  config: CheckConfig,
  probes: CheckProbes,
  opts: { sampleSeconds?: number } = {},
): Promise<CheckReport> {
  const sampleSeconds = opts.sampleSeconds ?? DEFAULT_SAMPLE_SECONDS
  const p = await gather(config, probes, sampleSeconds)
  const version = p.release instanceof Error ? undefined : parseKernelRelease(p.release)
  const releaseText = p.release instanceof Error ? 'unknown' : p.release.trim()
  const handling = version === undefined ? undefined : clashHandling(version)
  const scan = p.raw instanceof Error ? undefined : scanRawRules(p.raw, config.dnsPort)
  const shaperQueues = new Set(scan?.shaper.flatMap(r => r.queues) ?? [])
  const conntrack = conntrackItem(p.conntrack, handling, sampleSeconds)
  const tracking = dnsTrackingItem(scan, p.raw, config)

  const items: CheckItem[] = [
    privilegesItem(p.status, p.iptables, config),
    kernelItem(p.release, handling),
    iptablesItem(p.iptables, config),
    ...featureItems(p.features),
    queueItem(p.bound, shaperQueues, config),
    metricsItem(p.listen, config),
    conntrack.item,
    tracking.item,
    ...(scan === undefined ? [] : [shaperRulesItem(scan, shaperQueues, p.bound, config)]),
    tcItem(p.tc),
  ]
  const verdict = decideVerdict({
    release: releaseText,
    kernel: handling,
    conntrackLoaded: conntrack.loaded,
    dnsUntracked: tracking.untracked,
    rates: conntrack.rates,
    blockers: items.filter(i => i.status === 'fail').map(i => `${i.id}: ${i.found}`),
  })
  const ct = p.conntrack instanceof Error ? undefined : p.conntrack
  return {
    ready: verdict.ready,
    exitCode: verdict.ready ? 0 : 1,
    verdict,
    items,
    kernel:
      version === undefined || handling === undefined
        ? { release: releaseText }
        : { ...version, clash: handling.level },
    conntrack:
      ct?.first === undefined
        ? { loaded: false }
        : {
            loaded: true,
            entries: ct.first.entries,
            totals: ct.first.totals,
            sampleSeconds: ct.rates ? sampleSeconds : 0,
            ratesPerSecond: ct.rates,
          },
  }
}
