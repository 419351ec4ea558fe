// The race lab's DNS service in kube-proxy's nftables and IPVS modes: rule text and ipvsadm argv built by
// pure functions, applied only inside a lab namespace (never the root namespace). iptables mode stays in
// race.ts (serviceNatRules).
import type { Netns } from './netns.js'

/** How the service DNAT picks an endpoint in nftables mode. */
export type NftStyle =
  /** As kube-proxy writes it: `numgen random mod N vmap { i : goto endpoint-i }`, each endpoint chain `dnat to`. */
  | 'kube-proxy'
  /** The same choice in one statement: `dnat to numgen random mod N map { i : endpoint-i }`. */
  | 'numgen-map'

export interface ServiceSpec {
  family: 4 | 6
  /** The ClusterIP. */
  service: string
  endpoints: readonly string[]
  /** Masquerade traffic to the endpoints (kube-proxy's masquerade-all / off-cluster source case). */
  snat: boolean
  port?: number
}

/** kube-proxy's table name in both families: `check` recognises nftables mode by it. */
export const KUBE_PROXY_TABLE = 'kube-proxy'
/** kube-proxy's masquerade mark (the same bit in iptables and nftables modes). */
const MASQ_MARK = '0x00004000'
const SVC = 'kube-system/kube-dns/udp/dns'

const tableFamily = (f: 4 | 6): 'ip' | 'ip6' => (f === 4 ? 'ip' : 'ip6')
const addrType = (f: 4 | 6): string => (f === 4 ? 'ipv4_addr' : 'ipv6_addr')
const hostPort = (f: 4 | 6, a: string, port: number): string => (f === 4 ? `${a}:${port}` : `[${a}]:${port}`)

/**
 * An `nft -f` script that replaces `table ip|ip6 kube-proxy` with kube-proxy's nftables-mode shape for
 * one UDP service: a dstnat prerouting chain dispatching through the service-ips verdict map, the
 * service chain choosing an endpoint at random, and the srcnat masquerading chain for marked packets.
 */
export function kubeProxyNftRules(spec: ServiceSpec, style: NftStyle = 'kube-proxy'): string {
  const fam = tableFamily(spec.family)
  const port = spec.port ?? 53
  const n = spec.endpoints.length
  const svcChain = `service-DNSSLAB0-${SVC}`
  const ep = (i: number): string => `endpoint-DNSSLAB${i + 1}-${SVC}`
  const l: string[] = [
    // `add` then `delete` makes the replace idempotent on nft versions without `destroy`.
    `add table ${fam} ${KUBE_PROXY_TABLE}`,
    `delete table ${fam} ${KUBE_PROXY_TABLE}`,
    `table ${fam} ${KUBE_PROXY_TABLE} {`,
    '\tcomment "rules for kube-proxy"',
    '\tchain mark-for-masquerade {',
    `\t\tmeta mark set meta mark | ${MASQ_MARK}`,
    '\t}',
    '\tchain masquerading {',
    `\t\tmeta mark & ${MASQ_MARK} == 0 return`,
    `\t\tmeta mark set meta mark ^ ${MASQ_MARK}`,
    '\t\tmasquerade fully-random',
    '\t}',
    '\tchain nat-prerouting {',
    '\t\ttype nat hook prerouting priority dstnat; policy accept;',
    '\t\tjump services',
    '\t}',
    '\tchain nat-output {',
    // nft before 1.0.7 accepts the dstnat keyword on prerouting only; it is -100 on output too.
    '\t\ttype nat hook output priority -100; policy accept;',
    '\t\tjump services',
    '\t}',
    '\tchain nat-postrouting {',
    '\t\ttype nat hook postrouting priority srcnat; policy accept;',
    '\t\tjump masquerading',
    '\t}',
    '\tmap service-ips {',
    `\t\ttype ${addrType(spec.family)} . inet_proto . inet_service : verdict`,
    `\t\telements = { ${spec.service} . udp . ${port} : goto ${svcChain} }`,
    '\t}',
    '\tchain services {',
    `\t\t${fam} daddr . meta l4proto . th dport vmap @service-ips`,
    '\t}',
    `\tchain ${svcChain} {`,
  ]
  if (spec.snat) l.push(`\t\t${fam} daddr ${spec.service} udp dport ${port} jump mark-for-masquerade`)
  if (style === 'numgen-map') {
    const arms = spec.endpoints.map((a, i) => `${i} : ${a}`).join(', ')
    l.push(`\t\tmeta l4proto udp dnat to numgen random mod ${n} map { ${arms} }`, '\t}')
  } else {
    const arms = spec.endpoints.map((_, i) => `${i} : goto ${ep(i)}`).join(', ')
    l.push(`\t\tnumgen random mod ${n} vmap { ${arms} }`, '\t}')
    spec.endpoints.forEach((a, i) => {
      // Hairpin: an endpoint reaching itself through the service is masqueraded, as kube-proxy does.
      l.push(
        `\tchain ${ep(i)} {`,
        `\t\t${fam} saddr ${a} jump mark-for-masquerade`,
        `\t\tmeta l4proto udp dnat to ${hostPort(spec.family, a, port)}`,
        '\t}',
      )
    })
  }
  l.push('}', '')
  return l.join('\n')
}

/** Removes kube-proxy's table of one family (after `add`, so it never fails when absent). */
export function deleteKubeProxyNftRules(family: 4 | 6): string {
  const fam = tableFamily(family)
  return `add table ${fam} ${KUBE_PROXY_TABLE}\ndelete table ${fam} ${KUBE_PROXY_TABLE}\n`
}

/** kube-proxy IPVS mode binds every ClusterIP on this dummy link; `check` recognises IPVS mode by it. */
export const IPVS_LINK = 'kube-ipvs0'

/** ipvsadm argv for one UDP virtual service in NAT ("masq") forwarding with round robin, kube-proxy's defaults. */
export function ipvsAdmArgv(spec: Omit<ServiceSpec, 'snat'>): string[][] {
  const port = spec.port ?? 53
  const vip = hostPort(spec.family, spec.service, port)
  return [
    ['ipvsadm', '-A', '-u', vip, '-s', 'rr'],
    ...spec.endpoints.map(a => ['ipvsadm', '-a', '-u', vip, '-r', hostPort(spec.family, a, port), '-m', '-w', '1']),
  ]
}

/** Why IPVS rows cannot run in this namespace, or true. ipvsadm's netlink request autoloads ip_vs. */
export async function ipvsAvailable(ns: Netns): Promise<true | string> {
  const r = await ns.exec(['ipvsadm', '-Ln'], { timeoutMs: 10_000 })
  if (r.code === 0) return true
  const err = r.stderr.trim()
  if (/No such file|not found|exec of/i.test(err)) return 'ipvsadm is not installed (apt-get install ipvsadm)'
  return `this kernel has no IPVS (\`modprobe ip_vs\` fails or it is not built in): ${err.split('\n')[0]}`
}

/**
 * kube-proxy IPVS mode for the lab service: the ClusterIP bound on kube-ipvs0 (on lo where the kernel has
 * no dummy links), net.ipv4.vs.conntrack=1 as kube-proxy sets it so conntrack keeps tracking (and
 * masquerade works), and one virtual service per family.
 */
export async function applyIpvs(ns: Netns, specs: readonly ServiceSpec[]): Promise<void> {
  await clearIpvs(ns, specs)
  const dummy = await ns.exec(['ip', 'link', 'add', IPVS_LINK, 'type', 'dummy'])
  const dev = dummy.code === 0 ? IPVS_LINK : 'lo'
  if (dev === IPVS_LINK) await ns.execOk(['ip', 'link', 'set', IPVS_LINK, 'up'])
  await ns.sysctl('net.ipv4.vs.conntrack', 1)
  for (const s of specs) {
    const prefix = s.family === 4 ? '/32' : '/128'
    await ns.execOk(['ip', 'addr', 'add', s.service + prefix, 'dev', dev, ...(s.family === 6 ? ['nodad'] : [])])
    for (const argv of ipvsAdmArgv(s)) await ns.execOk(argv)
  }
}

/** Undoes applyIpvs; tolerant of a half-applied state. */
export async function clearIpvs(ns: Netns, specs: readonly ServiceSpec[]): Promise<void> {
  await ns.exec(['ipvsadm', '-C'])
  await ns.exec(['ip', 'link', 'del', IPVS_LINK])
  for (const s of specs)
    await ns.exec(['ip', 'addr', 'del', s.service + (s.family === 4 ? '/32' : '/128'), 'dev', 'lo'])
}
