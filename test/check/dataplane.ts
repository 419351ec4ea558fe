import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import {
  classifyDataplanes,
  MAX_SVC_CHAINS,
  parseLinkNames,
  parseNftTables,
  type DataplaneInputs,
  type DataplaneKind,
} from '../../src/check/dataplane.js'
import { ipvsOf, natOf } from '../helpers/check.js'

const dir = (name: string): string => fileURLToPath(new URL(`../fixtures/dataplane/${name}/`, import.meta.url))

/**
 * A fixture directory holds what each probe printed on such a node: `NAME` is the output, `NAME.error`
 * the error message of a probe that failed. A missing ip_vs means the file was absent; a missing bpf, an
 * empty bpffs.
 */
function load(name: string): DataplaneInputs {
  const d = dir(name)
  const read = (f: string): string | Error | undefined => {
    if (existsSync(d + f + '.error')) return new Error(readFileSync(d + f + '.error', 'utf8').trim())
    return existsSync(d + f) ? readFileSync(d + f, 'utf8') : undefined
  }
  const text = (f: string): string | Error => read(f) ?? ''
  const bpf = read('bpf')
  const nat = text('iptables-nat')
  const ipvs = read('ip_vs')
  return {
    iptablesNat: nat instanceof Error ? nat : natOf(nat),
    nftTables: text('nft-tables'),
    links: text('links'),
    ipvs: ipvs === undefined || ipvs instanceof Error ? (ipvs ?? null) : ipvsOf(ipvs),
    bpf: bpf instanceof Error ? bpf : (bpf ?? '').split('\n').filter(Boolean),
  }
}

interface Row {
  kinds: DataplaneKind[]
  shaping: 'useful' | 'inert' | 'unknown'
  summary: RegExp
  /** Per kind, what its evidence must mention. */
  evidence?: Partial<Record<DataplaneKind, RegExp[]>>
  unreadable?: number
  notes?: RegExp
}

const rows: Record<string, Row> = {
  none: {
    kinds: [],
    shaping: 'unknown',
    summary: /^no service dataplane detected: .*same-tuple clashes remain, which kernels since 4\.19 resolve$/,
    unreadable: 0,
  },
  'kube-proxy-iptables': {
    kinds: ['kube-proxy-iptables'],
    shaping: 'useful',
    summary: /^kube-proxy iptables mode: shaping is useful$/,
    // Three services in nat; the KUBE-SVC lookalike in the filter table is not counted.
    evidence: { 'kube-proxy-iptables': [/^3 KUBE-SVC-\* chains in the iptables nat table$/] },
  },
  'kube-proxy-nftables': {
    kinds: ['kube-proxy-nftables'],
    shaping: 'useful',
    summary: /^kube-proxy nftables mode: shaping is useful$/,
    evidence: { 'kube-proxy-nftables': [/^nft table ip kube-proxy$/, /^nft table ip6 kube-proxy$/] },
  },
  'kube-proxy-ipvs': {
    kinds: ['kube-proxy-ipvs'],
    shaping: 'useful',
    summary: /^kube-proxy IPVS mode: shaping is useful$/,
    evidence: {
      'kube-proxy-ipvs': [/KUBE-CLUSTER-IP ipset/, /^link kube-ipvs0/, /^3 IPVS virtual services .*\(1 on udp\/53\)$/],
    },
  },
  'ipvs-kube-router': {
    kinds: ['ipvs'],
    shaping: 'useful',
    summary: /^IPVS \(not kube-proxy\): shaping is useful$/,
    evidence: { ipvs: [/^2 IPVS virtual services .*\(2 on udp\/53\), link kube-dummy-if \(kube-router\)$/] },
  },
  'cilium-kpr': {
    kinds: ['cilium'],
    shaping: 'inert',
    summary:
      /^Cilium kube-proxy replacement translates services in eBPF before netfilter: .* never sees the service address/,
    evidence: {
      cilium: [
        /^link cilium_host$/,
        /^link cilium_net$/,
        /cilium_lb4_services_v2/,
        /^socket load balancing .*reverse_sk/,
      ],
    },
  },
  'cilium-with-kube-proxy': {
    kinds: ['cilium', 'kube-proxy-iptables'],
    shaping: 'useful',
    summary:
      /^Cilium eBPF service load balancing \(beside kube-proxy\) translates services for the traffic it takes before netfilter \(inert there\); kube-proxy iptables mode still DNATs .*useful for that traffic only$/,
    evidence: { cilium: [/^link cilium_host$/] },
    unreadable: 1,
  },
  'calico-ebpf': {
    kinds: ['calico-ebpf'],
    shaping: 'inert',
    summary: /^Calico eBPF dataplane translates services in eBPF before netfilter/,
    evidence: {
      'calico-ebpf': [
        /cali_v4_nat_fe3/,
        /connect-time load balancing for UDP \(tc\/globals\/cali_v4_srmsg\)/,
        /^link bpfin\.cali$/,
      ],
    },
  },
  'kube-proxy-migrating': {
    kinds: ['kube-proxy-nftables', 'kube-proxy-iptables'],
    shaping: 'useful',
    summary:
      /^rules of 2 kube-proxy modes \(kube-proxy nftables mode and kube-proxy iptables mode\): a mode switch leaves/,
  },
  unreadable: {
    kinds: [],
    shaping: 'unknown',
    summary:
      /^no service dataplane detected: .*\(could not read: iptables nat table: .*Permission denied.*; nft tables: nft: not installed.*; bpffs: bpffs is not mounted/,
    unreadable: 3,
  },
}

for (const [name, want] of Object.entries(rows)) {
  t.test(`fixture ${name}`, async t => {
    const r = classifyDataplanes(load(name))
    t.same(
      r.found.map(d => d.kind),
      want.kinds,
      'dataplanes found',
    )
    t.equal(r.shaping, want.shaping, 'overall shaping')
    t.match(r.summary, want.summary)
    for (const [kind, res] of Object.entries(want.evidence ?? {})) {
      const ev = r.found.find(d => d.kind === kind)?.evidence ?? []
      for (const re of res)
        t.ok(
          ev.some(e => re.test(e)),
          `${kind} evidence ${re}: ${JSON.stringify(ev)}`,
        )
    }
    if (want.unreadable !== undefined) t.equal(r.unreadable.length, want.unreadable, `unreadable: ${r.unreadable}`)
    for (const d of r.found) {
      t.ok(d.why.length > 40, `${d.kind} says why`)
      t.equal(d.shaping, d.kind === 'cilium' || d.kind === 'calico-ebpf' ? 'inert' : 'useful', `${d.kind} shaping`)
    }
  })
}

t.test('why names the hook order for netfilter dataplanes and the socket for eBPF ones', async t => {
  const nft = classifyDataplanes(load('kube-proxy-nftables')).found[0]!
  t.match(nft.why, /-300.*-200.*-100|dstnat \(-100\).*-300.*-200/)
  t.match(nft.why, /iptables-nft raw table/)
  const ipvs = classifyDataplanes(load('kube-proxy-ipvs')).found[0]!
  t.match(ipvs.why, /per UDP 5-tuple/)
  t.match(ipvs.why, /conntrack/)
  for (const f of ['cilium-kpr', 'calico-ebpf']) {
    const d = classifyDataplanes(load(f)).found[0]!
    t.match(d.why, /cgroup connect\/sendmsg hooks/)
    t.match(d.why, /never sees the service address/)
  }
})

t.test('Calico chains with bpffs unreadable: a note says where to look', async t => {
  const inp = load('calico-ebpf')
  const r = classifyDataplanes({ ...inp, bpf: new Error('bpffs is not mounted at /sys/fs/bpf'), links: '' })
  t.same(r.found, [])
  t.match(r.notes.join('\n'), /\(cali-\*\).*eBPF dataplane.*\/sys\/fs\/bpf/)
  t.same(classifyDataplanes(inp).notes, [], 'no note when the maps could be read')
})

t.test('IPVS evidence without kube-ipvs0 but with the ipset rules stays kube-proxy', async t => {
  const inp = load('kube-proxy-ipvs')
  const r = classifyDataplanes({ ...inp, links: '' })
  t.same(
    r.found.map(d => d.kind),
    ['kube-proxy-ipvs'],
  )
})

t.test('an empty /proc/net/ip_vs (module loaded, no services) is no dataplane', async t => {
  const empty =
    'IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n'
  t.same(ipvsOf(empty), { services: 0, udp53: 0 })
  t.same(classifyDataplanes({ ...load('none'), ipvs: ipvsOf(empty) }).found, [])
})

t.test('parsers', async t => {
  t.same(
    parseLinkNames(
      '1: lo: <LOOPBACK> mtu 65536\n4: cilium_host@cilium_net: <UP> mtu 1500\n9: cali5a@if3: <UP>\n    link/ether x\n',
    ),
    ['lo', 'cilium_host', 'cali5a'],
  )
  t.same(parseNftTables('table ip kube-proxy\ntable inet filter\n\n'), [
    { family: 'ip', name: 'kube-proxy' },
    { family: 'inet', name: 'filter' },
  ])
  // Real servers ("  -> ...") are not services; a service on 0035 over TCP is not udp/53.
  t.same(ipvsOf(readFileSync(dir('kube-proxy-ipvs') + 'ip_vs', 'utf8')), { services: 3, udp53: 1 })
  t.same(
    ipvsOf(readFileSync(dir('ipvs-kube-router') + 'ip_vs', 'utf8')),
    { services: 2, udp53: 2 },
    'IPv6 services count: the port follows the bracketed address',
  )
})

t.test('the nat fold: only nat sections, each dump on its own, distinct chains across dumps', async t => {
  const nat = natOf(
    '*raw\n:KUBE-SVC-RAW - [0:0]\nCOMMIT\n*nat\n:KUBE-SVC-A - [0:0]\n:cali-PREROUTING - [0:0]\nCOMMIT\n*filter\n:KUBE-SVC-F - [0:0]\n-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst -j ACCEPT\nCOMMIT\n',
    // The IPv6 dump names the same service chain: counted once. It is cut off inside its nat section.
    '*nat\n:KUBE-SVC-A - [0:0]\n:KUBE-SVC-B - [0:0]\n',
    // So this dump's lines before its own *nat are outside any section.
    ':KUBE-SVC-C - [0:0]\n-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ\n',
  )
  t.same([...nat.svcChains].sort(), ['KUBE-SVC-A', 'KUBE-SVC-B'])
  t.same(
    [nat.serviceChains, nat.calicoChains, nat.clusterIpSet, nat.svcChainsCapped],
    [true, true, false, false],
    'the KUBE-CLUSTER-IP rules were in filter and outside any table',
  )
  const ipvs = natOf(
    '*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SEP-X - [0:0]\n-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP src,dst -j KUBE-MARK-MASQ\nCOMMIT\n',
  )
  t.same(
    [ipvs.svcChains.size, ipvs.serviceChains, ipvs.clusterIpSet, ipvs.calicoChains],
    [0, true, true, false],
    'a KUBE-SEP-* chain alone is a service chain; the ipset rule is seen',
  )
  t.same(
    classifyDataplanes({ ...load('none'), iptablesNat: ipvs }).found.map(d => [d.kind, d.evidence]),
    [
      ['kube-proxy-iptables', ['0 KUBE-SVC-* chains in the iptables nat table']],
      ['kube-proxy-ipvs', ['KUBE-SERVICES matches the KUBE-CLUSTER-IP ipset (IPVS mode companion rules)']],
    ],
  )
})

t.test(`the nat fold keeps at most ${MAX_SVC_CHAINS} chain names and then says "at least"`, async t => {
  const decl = (n: number): string => `:KUBE-SVC-${n.toString().padStart(16, '0')} - [0:0]`
  const lines = Array.from({ length: MAX_SVC_CHAINS + 5 }, (_, n) => decl(n))
  const nat = natOf(`*nat\n${lines.join('\n')}\nCOMMIT\n`, `*nat\n${decl(0)}\nCOMMIT\n`)
  t.equal(nat.svcChains.size, MAX_SVC_CHAINS)
  t.equal(nat.svcChainsCapped, true)
  t.same(classifyDataplanes({ ...load('none'), iptablesNat: nat }).found[0]?.evidence, [
    `at least ${MAX_SVC_CHAINS} KUBE-SVC-* chains in the iptables nat table`,
  ])
  const exact = natOf(`*nat\n${lines.slice(0, MAX_SVC_CHAINS).join('\n')}\nCOMMIT\n`)
  t.equal(exact.svcChainsCapped, false, 'exactly the cap is still exact')
})
