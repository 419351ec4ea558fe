// The race lab's DNS service in each kube-proxy mode (iptables, nftables, IPVS): rule text and ipvsadm argv
// built by pure functions, applied only inside a lab namespace, never in the root namespace.
import type { Netns } from '../../harness/netns.js'

/** The DNS "ClusterIP" the router DNATs, like kube-proxy does for kube-dns. */
export const SERVICE = { ipv4: '192.0.2.10', ipv6: '2001:db8:ffff::10' } as const

/**
 * iptables mode, the nat table of the router in kube-proxy's shape. The service chain picks an endpoint with
 * `statistic --mode random`: 1/3, then 1/2 of the rest, then the last one. With `snat`, traffic
 * to the endpoints is masqueraded as well (kube-proxy's masquerade-all / hairpin case).
 */
export function serviceNatRules(
  family: 4 | 6,
  endpoints: readonly string[],
  opts: { snat?: boolean; serverIface?: string } = {},
): string {
  const svc = family === 4 ? `${SERVICE.ipv4}/32` : `${SERVICE.ipv6}/128`
  const dest = (a: string): string => (family === 4 ? `${a}:53` : `[${a}]:53`)
  const l = ['*nat', ':DNSS-SVC - [0:0]', `-A PREROUTING -d ${svc} -p udp --dport 53 -j DNSS-SVC`]
  endpoints.forEach((ep, i) => {
    const left = endpoints.length - i
    const stat = left > 1 ? `-m statistic --mode random --probability ${(1 / left).toFixed(11)} ` : ''
    l.push(`-A DNSS-SVC ${stat}-p udp -j DNAT --to-destination ${dest(ep)}`)
  })
  if (opts.snat) {
    for (const ep of endpoints) {
      l.push(`-A POSTROUTING -o ${opts.serverIface ?? 'br-s'} -d ${ep} -p udp --dport 53 -j MASQUERADE`)
    }
  }
  l.push('COMMIT', '')
  return l.join('\n')
}

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
  // ipvsadm itself runs modprobe, whose "Module ip_vs not found" must not read as a missing ipvsadm.
  if (/Protocol not available|IP Virtual Server|modprobe/i.test(err))
    return `this kernel has no IPVS (\`modprobe ip_vs\` fails and it is not built in): ${err.split('\n').find(l => /initialize/.test(l)) ?? err.split('\n')[0]}`
  if (/exec of|No such file/i.test(err)) return 'ipvsadm is not installed (apt-get install ipvsadm)'
  return `ipvsadm -Ln fails: ${err}`
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

// ---------------------------------------------------------------------------------------------
// Switching the lab router between modes

/** How the lab router translates the service: kube-proxy's three modes, nftables in both DNAT forms. */
export type ServiceMode = 'iptables' | 'nftables' | 'nftables-map' | 'ipvs'
export const SERVICE_MODES: readonly ServiceMode[] = ['iptables', 'nftables', 'nftables-map', 'ipvs']

export interface LabService {
  router: Netns
  service: { ipv4: string; ipv6: string }
  endpoints: { ipv4: readonly string[]; ipv6: readonly string[] }
  /** The router's interface toward the endpoints (masquerade goes out there). */
  serverIface: string
}

/** iptables nat table in IPVS mode: no DNAT (IPVS does it), only kube-proxy's masquerade when asked. */
export function ipvsNatRules(endpoints: readonly string[], opts: { snat: boolean; serverIface: string }): string {
  const l = ['*nat']
  if (opts.snat)
    for (const ep of endpoints) l.push(`-A POSTROUTING -o ${opts.serverIface} -d ${ep} -p udp --dport 53 -j MASQUERADE`)
  l.push('COMMIT', '')
  return l.join('\n')
}

const EMPTY_NAT = '*nat\nCOMMIT\n'

/**
 * Puts the lab service into `to` (with or without masquerade), undoing `from` first. Each mode owns a
 * different place (iptables nat, the nft kube-proxy tables, IPVS), so the others are emptied: exactly
 * one translates the service at a time.
 */
export async function applyServiceMode(
  lab: LabService,
  from: ServiceMode | undefined,
  to: ServiceMode,
  snat: boolean,
): Promise<void> {
  const { router } = lab
  const specs = ([4, 6] as const).map(f => ({
    family: f,
    service: f === 4 ? lab.service.ipv4 : lab.service.ipv6,
    endpoints: f === 4 ? lab.endpoints.ipv4 : lab.endpoints.ipv6,
    snat,
  }))
  // ipvsadm would autoload ip_vs: only touch IPVS when it was in use.
  if (from === 'ipvs' && to !== 'ipvs') await clearIpvs(router, specs)
  if (from === 'nftables' || from === 'nftables-map' || from === undefined) {
    if (to !== 'nftables' && to !== 'nftables-map') {
      const r = await router.exec(['nft', '-f', '-'], {
        input: deleteKubeProxyNftRules(4) + deleteKubeProxyNftRules(6),
      })
      // Without nft there is no kube-proxy table to remove either.
      if (r.code !== 0 && from !== undefined)
        await router.execOk(['nft', '-f', '-'], { input: deleteKubeProxyNftRules(4) })
    }
  }
  for (const s of specs) {
    const restore = s.family === 4 ? 'iptables-restore' : 'ip6tables-restore'
    const nat =
      to === 'iptables'
        ? serviceNatRules(s.family, s.endpoints, { snat, serverIface: lab.serverIface })
        : to === 'ipvs'
          ? ipvsNatRules(s.endpoints, { snat, serverIface: lab.serverIface })
          : EMPTY_NAT
    await router.execOk([restore], { input: nat })
  }
  if (to === 'nftables' || to === 'nftables-map') {
    const style: NftStyle = to === 'nftables' ? 'kube-proxy' : 'numgen-map'
    await router.execOk(['nft', '-f', '-'], { input: specs.map(s => kubeProxyNftRules(s, style)).join('') })
  }
  if (to === 'ipvs') await applyIpvs(router, specs)
}
