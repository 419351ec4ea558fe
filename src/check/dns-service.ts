// The dns-service item of `dns-shaper check`: is an address being shaped a node-local cache (not
// tracked, so shaping it only delays AAAA)? Pure: reads only the config, addresses and rule scan given.
import { parseCidr } from '../config/cidr.js'
import type { RawRuleScan } from './parse.js'
import { item, type CheckConfig, type CheckItem } from './items.js'

/** An address on one of this node's interfaces (os.networkInterfaces()). */
export interface LocalAddress {
  address: string
  ifname: string
}

/** 169.254.0.0/16 and fe80::/10: where NodeLocal DNSCache listens (169.254.20.10 by default). */
function isLinkLocal(cidr: string): boolean {
  if (cidr.startsWith('169.254.')) return true
  return /^fe[89ab][0-9a-f]?:/i.test(cidr)
}

/**
 * The DNS service addresses being shaped (`--dns-ip`, from resolv.conf with `auto`): is any of them a
 * node-local cache? One bound on this node (node-local-dns's `nodelocaldns` interface) or link-local
 * (169.254.20.10) is served on the node itself, and node-local-dns exempts it from conntrack (NOTRACK):
 * that leg cannot race, so shaping it only delays AAAA queries. Undefined when dns-ip is empty (any).
 */
export function dnsServiceItem(
  config: CheckConfig,
  local: LocalAddress[] | Error,
  scan: RawRuleScan | undefined,
): CheckItem | undefined {
  const shaped = config.dnsIp ?? []
  if (shaped.length === 0) return undefined
  const source = config.dnsIpAuto ? ` (auto, from ${config.dnsIpAuto.resolvConf})` : ''
  const notrack = new Set((scan?.notrackDestinations ?? []).map(d => parseCidr(d)?.text ?? d))
  const notrackAny = scan !== undefined && scan.notrack.length > 0 && scan.notrackDestinations.length === 0
  const localCache: string[] = []
  for (const cidr of shaped) {
    const addr = cidr.replace(/\/\d+$/, '')
    const why: string[] = []
    if (isLinkLocal(addr)) why.push('link-local')
    const bound = local instanceof Error ? undefined : local.find(l => parseCidr(l.address)?.text === cidr)
    if (bound) why.push(`bound on ${bound.ifname}`)
    const untracked = notrackAny || notrack.has(cidr)
    if (untracked) why.push('NOTRACK: not tracked by conntrack')
    // A local or link-local address alone is a cache served on the node; a NOTRACK rule alone says the
    // same of the conntrack side. Either way the pod-to-resolver leg cannot race.
    if (why.length > 0) localCache.push(`${addr} (${why.join(', ')})`)
  }
  if (localCache.length === 0) {
    return item('dns-service', 'ok', `shaping DNS to ${shaped.join(', ')}${source}: tracked, not a node-local cache`)
  }
  const all = localCache.length === shaped.length
  return item(
    'dns-service',
    all ? 'warn' : 'info',
    `shaping DNS to ${shaped.join(', ')}${source}; node-local cache: ${localCache.join('; ')}`,
    'traffic to a node-local cache is not tracked, so it cannot race and shaping it only delays AAAA: ' +
      'with NodeLocal DNSCache use deploy/variants/node-local-dns (shapes the kube-dns ClusterIP), or set dns-ip to the tracked addresses',
  )
}
