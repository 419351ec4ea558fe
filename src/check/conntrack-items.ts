// The conntrack rows of `dns-shaper check`: whether clashing DNS is being dropped, and whether DNS is tracked at all. Pure: it reads only the probe results and the config it is given.
import type { ClashHandling } from '../kernel/release.js'
import { CONNTRACK_SOURCES } from '../kernel/conntrack-stats.js'
import { item, type CheckConfig, type CheckItem } from './items.js'
import type { RawRuleScan } from './parse.js'
import type { ConntrackSample } from './probes.js'
import { formatRate, type VerdictInput } from './verdict.js'

export interface ConntrackFinding {
  item: CheckItem
  loaded: boolean
  rates: VerdictInput['rates']
}

export function conntrackItem(
  ct: ConntrackSample | Error,
  handling: ClashHandling | undefined,
  sampleSeconds: number,
): ConntrackFinding {
  if (ct instanceof Error) {
    return {
      item: item(
        'conntrack',
        'warn',
        `cannot read conntrack statistics: ${ct.message}`,
        'run as root; the verdict then relies on the kernel version only',
      ),
      loaded: true,
      rates: undefined,
    }
  }
  const { reading } = ct
  if (!reading.loaded) {
    return {
      item: item('conntrack', 'info', 'nf_conntrack is not loaded in this network namespace (no nf_conntrack_count)'),
      loaded: false,
      rates: undefined,
    }
  }
  const s = reading.stats
  if (s === undefined) {
    // Loaded but unreadable (e.g. no CONFIG_NF_CONNTRACK_PROCFS and no ctnetlink): not "not needed".
    const why = CONNTRACK_SOURCES.map(src => `${src}: ${reading.sources[src].error ?? 'ok'}`).join('; ')
    return {
      item: item(
        'conntrack',
        'warn',
        `conntrack is loaded (entries ${reading.entries ?? '?'}) but its counters cannot be read (${why})`,
        'run as root (ctnetlink needs CAP_NET_ADMIN) or load nf_conntrack_netlink; the verdict relies on the kernel version only',
      ),
      loaded: true,
      rates: undefined,
    }
  }
  const via = reading.source === 'netlink' ? 'ctnetlink' : '/proc/net/stat/nf_conntrack'
  const clashCol = s.clashResolve === undefined ? 'no clash counter' : `clash_resolve ${s.clashResolve}`
  if (ct.rates === undefined) {
    return {
      item: item(
        'conntrack',
        'info',
        `entries ${s.entries ?? '?'}, insert_failed ${s.insertFailed ?? '?'}, drop ${s.drop ?? '?'}, ${clashCol} (totals of this netns, from ${via}; not sampled)`,
        'use --sample SECONDS to see rates',
      ),
      loaded: true,
      rates: undefined,
    }
  }
  const rates = ct.rates
  const r = (n: number | undefined) => (n === undefined ? 'n/a' : formatRate(n))
  const found = `insert_failed ${r(rates.insert_failed)}, drop ${r(rates.drop)}, clash_resolve ${r(rates.clash_resolve)} over ${sampleSeconds} s (this netns, from ${via}), entries ${s.entries ?? '?'}`
  const dropping =
    (rates.insert_failed ?? 0) > 0 &&
    (handling === undefined || handling.insertFailedMeansDrop || handling.level !== 'all')
  return {
    item: item(
      'conntrack',
      dropping ? 'warn' : 'ok',
      found,
      dropping ? 'clashing DNS packets are being dropped (5 s resolver timeouts): shaping removes the race' : '',
    ),
    loaded: true,
    rates: { insertFailed: rates.insert_failed, clashResolve: rates.clash_resolve },
  }
}

/** Is DNS exempt from conntrack? `untracked`: the NOTRACK scope ('' = any destination), undefined when tracked. */
export function dnsTrackingItem(
  scan: RawRuleScan | undefined,
  raw: string | Error,
  config: CheckConfig,
): { item: CheckItem; untracked: string | undefined } {
  if (scan === undefined) {
    return {
      item: item(
        'dns-tracking',
        'info',
        `cannot read the raw table: ${(raw as Error).message}`,
        'check by hand: iptables-save -t raw | grep -i notrack',
      ),
      untracked: undefined,
    }
  }
  if (scan.notrack.length === 0) {
    return { item: item('dns-tracking', 'ok', `udp/${config.dnsPort} is tracked by conntrack`), untracked: undefined }
  }
  const untracked = scan.notrackDestinations.join(', ')
  return {
    item: item(
      'dns-tracking',
      'info',
      `udp/${config.dnsPort} exempt from conntrack${untracked ? ` to ${untracked}` : ''} (${scan.notrack.length} NOTRACK rule${scan.notrack.length > 1 ? 's' : ''})`,
      'untracked DNS cannot race; shaping is only needed for traffic the NOTRACK rules miss',
    ),
    untracked,
  }
}
