// Names the node's service dataplane (kube-proxy iptables/nftables/IPVS, Cilium, Calico eBPF) from probe
// outputs and says what dns-shaper does on it. Pure: the probes that read the system live elsewhere.

/** What the probes saw; each source is an Error when it could not be read. */
export interface DataplaneInputs {
  /** What the `*nat` sections of every backend's and family's iptables-save said (see natFolder). */
  iptablesNat: NatSummary | Error
  /** kube-proxy's nft tables found, one line each as `nft list tables` prints them ("table ip kube-proxy"). */
  nftTables: string | Error
  /** `ip -o link show`. */
  links: string | Error
  /** /proc/net/ip_vs counted (see ipvsFolder); null when the file is absent (ip_vs not loaded, or no IPVS in this netns). */
  ipvs: IpvsSummary | null | Error
  /** Paths under the bpffs mount (/sys/fs/bpf), such as 'tc/globals/cilium_lb4_services_v2'. */
  bpf: string[] | Error
}

export type DataplaneKind =
  'kube-proxy-iptables' | 'kube-proxy-nftables' | 'kube-proxy-ipvs' | 'ipvs' | 'cilium' | 'calico-ebpf'

/**
 * useful: the raw rule sees queries to the service address before conntrack and the DNAT, so it orders
 * the pair. inert: the service address is translated in eBPF before netfilter sees the packet.
 */
export type Shaping = 'useful' | 'inert'

export interface Dataplane {
  kind: DataplaneKind
  name: string
  /** What was seen, for the operator to verify. */
  evidence: string[]
  shaping: Shaping
  why: string
}

export interface DataplaneReport {
  found: Dataplane[]
  /** Sources that could not be read ("nft list tables: ..."): a dataplane may hide behind them. */
  unreadable: string[]
  /** Signs that name no dataplane on their own but tell the operator where to look. */
  notes: string[]
  /** useful when any found dataplane leaves the DNAT to netfilter; inert when all translate in eBPF. */
  shaping: Shaping | 'unknown'
  summary: string
}

// ---------- parsers ----------

/** Interface names from `ip -o link show` ("3: veth0@if2: <...>" gives "veth0"). */
export function parseLinkNames(text: string): string[] {
  const names: string[] = []
  for (const line of text.split('\n')) {
    const m = /^\d+:\s+([^:@\s]+)(?:@\S+)?:/.exec(line)
    if (m) names.push(m[1]!)
  }
  return names
}

/**
 * Distinct KUBE-SVC-* names kept for the evidence count. One per kube-proxy service port (not per rule
 * or endpoint); past this many the count says "at least", so the names never take more than ~1.5 MiB.
 */
export const MAX_SVC_CHAINS = 16_384

/**
 * All that classifyDataplanes reads of the iptables nat tables, folded line by line from save output
 * (natFolder) so the output itself is never held: it grows with kube-proxy's rules (100k+ on big
 * clusters). Constant size but for svcChains, which MAX_SVC_CHAINS caps.
 */
export interface NatSummary {
  /** Distinct KUBE-SVC-* chains: the same name in several dumps (IPv4 and IPv6, nft and legacy) counts once. */
  svcChains: Set<string>
  /** More distinct KUBE-SVC-* chains were declared than svcChains kept. */
  svcChainsCapped: boolean
  /** Some KUBE-SVC-* or KUBE-SEP-* chain is declared. */
  serviceChains: boolean
  /** A KUBE-SERVICES rule matches the KUBE-CLUSTER-IP ipset (IPVS mode's companion rules). */
  clusterIpSet: boolean
  /** Some cali-* chain is declared. */
  calicoChains: boolean
}

export function emptyNatSummary(): NatSummary {
  return {
    svcChains: new Set(),
    svcChainsCapped: false,
    serviceChains: false,
    clusterIpSet: false,
    calicoChains: false,
  }
}

function addSvcChain(into: NatSummary, name: string): void {
  if (into.svcChains.has(name)) return
  // A copy: a slice of the line would keep the whole line alive.
  if (into.svcChains.size < MAX_SVC_CHAINS) into.svcChains.add(Buffer.from(name).toString())
  else into.svcChainsCapped = true
}

/**
 * A line consumer for one iptables-save output that folds its `*nat` sections into `into`: chains
 * declared (`:NAME ...`) and rules (`-A ...`) between `*nat` and `COMMIT`. One per dump, so that a
 * dump cut off inside its nat section cannot carry over into the next.
 */
export function natFolder(into: NatSummary): (line: string) => void {
  let inNat = false
  return raw => {
    const line = raw.trim()
    if (line.startsWith('*')) inNat = line === '*nat'
    else if (line === 'COMMIT') inNat = false
    else if (!inNat) return
    else if (line.startsWith(':')) {
      const chain = line.slice(1).split(/\s/, 1)[0]!
      if (/^KUBE-(SVC|SEP)-/.test(chain)) {
        into.serviceChains = true
        if (chain.startsWith('KUBE-SVC-')) addSvcChain(into, chain)
      } else if (chain.startsWith('cali-')) into.calicoChains = true
    } else if (line.startsWith('-A KUBE-SERVICES ') && /--match-set KUBE-CLUSTER-IP\b/.test(line)) {
      into.clusterIpSet = true
    }
  }
}

/** Adds what `from` saw to `into` (a dump that read whole, after it exited 0). */
export function mergeNatSummary(into: NatSummary, from: NatSummary): void {
  for (const c of from.svcChains) addSvcChain(into, c)
  into.svcChainsCapped ||= from.svcChainsCapped
  into.serviceChains ||= from.serviceChains
  into.clusterIpSet ||= from.clusterIpSet
  into.calicoChains ||= from.calicoChains
}

/** `nft list tables` lines as family and name. */
export function parseNftTables(text: string): { family: string; name: string }[] {
  const out: { family: string; name: string }[] = []
  for (const line of text.split('\n')) {
    const m = /^table\s+(\S+)\s+(\S+)/.exec(line.trim())
    if (m) out.push({ family: m[1]!, name: m[2]! })
  }
  return out
}

/**
 * What classifyDataplanes reads of /proc/net/ip_vs, folded line by line (ipvsFolder): the file lists
 * every virtual service and real server, kube-proxy IPVS mode's whole table. Constant size.
 */
export interface IpvsSummary {
  /** Virtual services ("UDP  0A60000A:0035 rr"; real servers are the "  -> ..." lines under each). */
  services: number
  /** Of which UDP on port 53. */
  udp53: number
}

export function emptyIpvsSummary(): IpvsSummary {
  return { services: 0, udp53: 0 }
}

/** A line consumer that counts the virtual services of /proc/net/ip_vs into `into`. */
export function ipvsFolder(into: IpvsSummary): (line: string) => void {
  return line => {
    // The address is hex for IPv4 ("0A60000A"), bracketed hex groups for IPv6; the port is hex.
    const vs = /^(TCP|UDP|SCTP)\s+\S+:([0-9A-Fa-f]{4})\s/.exec(line)
    if (vs === null) return
    into.services++
    if (vs[1] === 'UDP' && parseInt(vs[2]!, 16) === 53) into.udp53++
  }
}

// ---------- classification ----------

const CONFIRMED_FIRST = 'so the A is confirmed before its AAAA is tracked'

const WHY: Record<DataplaneKind, string> = {
  'kube-proxy-iptables': `kube-proxy DNATs the ClusterIP in the nat table (priority -100) to a random endpoint (statistic --mode random). The raw rule (-300) queues each query before conntrack (-200) and that DNAT, ${CONFIRMED_FIRST}`,
  'kube-proxy-nftables': `kube-proxy's own nft table DNATs the ClusterIP at priority dstnat (-100) with numgen random. The raw rule (-300, in the iptables-nft raw table) queues each query before conntrack (-200) and that chain, ${CONFIRMED_FIRST}; the two tables coexist, ordered by hook priority`,
  'kube-proxy-ipvs': `IPVS picks a real server per UDP 5-tuple at LOCAL_IN, after conntrack (-200) has created the entry (kube-proxy sets net.ipv4.vs.conntrack=1 for its masquerade rules), so the A and AAAA of one socket can still clash. The raw rule (-300) queues each query before conntrack and IPVS, with the ClusterIP (bound on kube-ipvs0) still the destination, ${CONFIRMED_FIRST}`,
  ipvs: `IPVS virtual servers without kube-ipvs0 (kube-router, keepalived or Docker swarm) translate at LOCAL_IN, after conntrack (-200). The raw rule (-300) queues each query before both, ${CONFIRMED_FIRST}`,
  cilium:
    'Cilium translates the ClusterIP in eBPF before netfilter: at the socket (cgroup connect/sendmsg hooks) or at the tc hook of the pod interface. The raw rule never sees the service address, and netfilter conntrack never DNATs the query, so there is no different-endpoint clash for dns-shaper to prevent (any race left is in the eBPF dataplane, out of its reach)',
  'calico-ebpf':
    "Calico's eBPF dataplane translates the ClusterIP before netfilter: at the socket (cgroup connect/sendmsg hooks, connect-time load balancing) or at the tc hook of the workload interface. The raw rule never sees the service address, and netfilter conntrack never DNATs the query, so there is no different-endpoint clash for dns-shaper to prevent (any race left is in the eBPF dataplane, out of its reach)",
}

const NAME: Record<Exclude<DataplaneKind, 'cilium'>, string> = {
  'kube-proxy-iptables': 'kube-proxy iptables mode',
  'kube-proxy-nftables': 'kube-proxy nftables mode',
  'kube-proxy-ipvs': 'kube-proxy IPVS mode',
  ipvs: 'IPVS (not kube-proxy)',
  'calico-ebpf': 'Calico eBPF dataplane',
}

const SHAPING: Record<DataplaneKind, Shaping> = {
  'kube-proxy-iptables': 'useful',
  'kube-proxy-nftables': 'useful',
  'kube-proxy-ipvs': 'useful',
  ipvs: 'useful',
  cilium: 'inert',
  'calico-ebpf': 'inert',
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`

function ok<T>(v: T | Error): v is T {
  return !(v instanceof Error)
}

/** Classifies what the probes saw; several dataplanes can be present at once (migrations, leftovers). */
export function classifyDataplanes(inp: DataplaneInputs): DataplaneReport {
  const evidence = new Map<DataplaneKind, string[]>()
  const see = (k: DataplaneKind, e: string): void => {
    evidence.set(k, [...(evidence.get(k) ?? []), e])
  }
  const unreadable: string[] = []
  const note = (what: string, v: unknown): void => {
    if (v instanceof Error) unreadable.push(`${what}: ${v.message}`)
  }
  note('iptables nat table', inp.iptablesNat)
  note('nft tables', inp.nftTables)
  note('links', inp.links)
  note('/proc/net/ip_vs', inp.ipvs)
  note('bpffs', inp.bpf)

  const notes: string[] = []
  const links = ok(inp.links) ? parseLinkNames(inp.links) : []
  const has = (name: string): boolean => links.includes(name)

  if (ok(inp.iptablesNat)) {
    const nat = inp.iptablesNat
    // KUBE-SERVICES alone is not iptables mode: IPVS mode keeps it too (for ipset matches). Per-service
    // KUBE-SVC-* chains are what only iptables mode writes.
    if (nat.serviceChains) {
      const count = plural(nat.svcChains.size, 'KUBE-SVC-* chain')
      see('kube-proxy-iptables', `${nat.svcChainsCapped ? 'at least ' : ''}${count} in the iptables nat table`)
    }
    if (nat.clusterIpSet) {
      see('kube-proxy-ipvs', 'KUBE-SERVICES matches the KUBE-CLUSTER-IP ipset (IPVS mode companion rules)')
    }
    // Calico writes cali- chains in both of its dataplanes; only its eBPF maps tell eBPF mode apart.
    if (nat.calicoChains && !ok(inp.bpf)) {
      notes.push('Calico chains (cali-*) in the nat table: whether its eBPF dataplane runs shows only in /sys/fs/bpf')
    }
  }
  if (ok(inp.nftTables)) {
    for (const t of parseNftTables(inp.nftTables)) {
      if (t.name === 'kube-proxy') see('kube-proxy-nftables', `nft table ${t.family} kube-proxy`)
    }
  }
  if (has('kube-ipvs0')) see('kube-proxy-ipvs', 'link kube-ipvs0 (ClusterIPs bound for IPVS)')
  if (ok(inp.ipvs) && inp.ipvs !== null) {
    const { services, udp53 } = inp.ipvs
    if (services > 0) {
      const e = `${plural(services, 'IPVS virtual service')} in /proc/net/ip_vs (${udp53} on udp/53)`
      if (evidence.has('kube-proxy-ipvs')) see('kube-proxy-ipvs', e)
      else see('ipvs', has('kube-dummy-if') ? `${e}, link kube-dummy-if (kube-router)` : e)
    }
  }

  for (const l of ['cilium_host', 'cilium_net']) if (has(l)) see('cilium', `link ${l}`)
  const bpf = ok(inp.bpf) ? inp.bpf : []
  const pinned = (re: RegExp): string[] => bpf.filter(p => re.test(p.split('/').pop() ?? ''))
  const ciliumLb = pinned(/^cilium_lb[46]_services/)
  if (ciliumLb.length > 0) see('cilium', `pinned service maps (${ciliumLb.join(', ')})`)
  // The socket-LB reverse-NAT map exists only when Cilium rewrites addresses in connect()/sendmsg().
  const ciliumSock = pinned(/^cilium_lb[46]_reverse_sk/)
  if (ciliumSock.length > 0) see('cilium', `socket load balancing (${ciliumSock.join(', ')})`)

  const caliNat = pinned(/^cali_v[46]_nat_fe/)
  if (caliNat.length > 0) see('calico-ebpf', `pinned NAT frontend maps (${caliNat.join(', ')})`)
  // cali_v4_srmsg remembers sendmsg() rewrites: connect-time load balancing for UDP is on.
  const caliSock = pinned(/^cali_v[46]_srmsg/)
  if (caliSock.length > 0) see('calico-ebpf', `connect-time load balancing for UDP (${caliSock.join(', ')})`)
  for (const l of ['bpfin.cali', 'bpfout.cali', 'bpfnatin', 'bpfnatout']) if (has(l)) see('calico-ebpf', `link ${l}`)

  const order: DataplaneKind[] = [
    'cilium',
    'calico-ebpf',
    'kube-proxy-nftables',
    'kube-proxy-iptables',
    'kube-proxy-ipvs',
    'ipvs',
  ]
  const kubeProxy = [...evidence.keys()].some(k => k.startsWith('kube-proxy-'))
  const name = (k: DataplaneKind): string =>
    k !== 'cilium'
      ? NAME[k]
      : kubeProxy
        ? 'Cilium eBPF service load balancing (beside kube-proxy)'
        : 'Cilium kube-proxy replacement'
  const found: Dataplane[] = order
    .filter(k => evidence.has(k))
    .map(k => ({ kind: k, name: name(k), evidence: evidence.get(k)!, shaping: SHAPING[k], why: WHY[k] }))
  return { found, unreadable, notes, ...summarize(found, unreadable) }
}

function summarize(found: Dataplane[], unreadable: string[]): Pick<DataplaneReport, 'shaping' | 'summary'> {
  const names = (ds: Dataplane[]): string => ds.map(d => d.name).join(' and ')
  if (found.length === 0) {
    const blind = unreadable.length > 0 ? ` (could not read: ${unreadable.join('; ')})` : ''
    return {
      shaping: 'unknown',
      summary:
        `no service dataplane detected: no kube-proxy chains or table, no IPVS, no Cilium or Calico eBPF${blind}. ` +
        'Without a DNAT to several endpoints only same-tuple clashes remain, which kernels since 4.19 resolve',
    }
  }
  const inert = found.filter(d => d.shaping === 'inert')
  const useful = found.filter(d => d.shaping === 'useful')
  if (useful.length === 0) {
    return {
      shaping: 'inert',
      summary: `${names(inert)} translate${inert.length === 1 ? 's' : ''} services in eBPF before netfilter: dns-shaper's raw rule never sees the service address, so shaping is inert here`,
    }
  }
  const kubeProxy = useful.filter(d => d.kind.startsWith('kube-proxy-'))
  const parts: string[] = []
  if (inert.length > 0) {
    parts.push(
      `${names(inert)} translate${inert.length === 1 ? 's' : ''} services for the traffic it takes before netfilter (inert there); ` +
        `${names(useful)} still DNAT${useful.length === 1 ? 's' : ''} what reaches netfilter with the service address (host-network traffic, or all of it if the eBPF service handling is off): shaping is useful for that traffic only`,
    )
  } else if (kubeProxy.length > 1) {
    parts.push(
      `rules of ${plural(kubeProxy.length, 'kube-proxy mode')} (${names(kubeProxy)}): a mode switch leaves the old mode's rules until \`kube-proxy --cleanup\`; only the running mode's rules see traffic, and shaping is useful in each`,
    )
  } else {
    parts.push(`${names(useful)}: shaping is useful`)
  }
  return { shaping: 'useful', summary: parts.join('; ') }
}
