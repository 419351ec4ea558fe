// Packet corpus for the kernel-filter tests (test/dataplane/bpf.ts, test/integration/kernel-filter.ts):
// the parser vectors and captures, a Kubernetes-like query mix, structured random queries and random
// mutations, all from a seeded PRNG so a failure reproduces. Pure: nothing here touches the network.
import { dnsQuery, hexFixtures, ipv4Udp, ipv6Udp, rawDns, vectors, wireName, qtail, type Ipv6Ext } from './packets.js'

export interface CorpusPacket {
  name: string
  packet: Buffer
  /** Where it came from: vector, fixture, k8s, random, mutation. */
  source: string
}

/** mulberry32: small, fast, seedable. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * What a pod in namespace `shop` with the default resolv.conf (search shop.svc.cluster.local
 * svc.cluster.local cluster.local, ndots:5) sends: each looked-up name walks the search path, A and
 * AAAA for every candidate. Weights are how often a name is looked up, roughly.
 */
export const K8S_LOOKUPS: { name: string; weight: number }[] = [
  { name: 'cart', weight: 6 }, // service in the same namespace
  { name: 'payments.billing', weight: 3 }, // service.namespace
  { name: 'redis-master.cache.svc.cluster.local.', weight: 3 }, // FQDN with a trailing dot
  { name: 'kubernetes.default.svc', weight: 1 },
  { name: 'api.github.com', weight: 2 },
  { name: 'sts.amazonaws.com', weight: 2 },
  { name: 's3.eu-west-1.amazonaws.com', weight: 2 },
  { name: 'storage.googleapis.com', weight: 1 },
  { name: 'registry-1.docker.io', weight: 1 },
  { name: 'o123.ingest.sentry.io', weight: 1 },
  { name: 'prod-eu-west-1-starport-layer-bucket.s3.eu-west-1.amazonaws.com', weight: 1 },
]

export const K8S_SEARCH = ['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local']

/** The names one lookup puts on the wire, in order (ndots:5: the search path first, then as given). */
export function searchExpansion(name: string, search = K8S_SEARCH, ndots = 5): string[] {
  if (name.endsWith('.')) return [name.slice(0, -1)]
  const dots = name.split('.').length - 1
  const expanded = search.map(s => `${name}.${s}`)
  return dots >= ndots ? [name, ...expanded] : [...expanded, name]
}

/** The weighted query mix: A and AAAA for every expanded name (50/50), both families. */
export function k8sMix(): (CorpusPacket & { weight: number; qtype: number; labels: number })[] {
  const out: (CorpusPacket & { weight: number; qtype: number; labels: number })[] = []
  let id = 1
  for (const { name, weight } of K8S_LOOKUPS) {
    for (const wire of searchExpansion(name)) {
      for (const [qt, qtype] of [
        ['A', 1],
        ['AAAA', 28],
      ] as const) {
        const dns = dnsQuery({ name: wire, qtype: qt, id: id++ })
        const labels = wire.split('.').length
        for (const [family, wrap] of [
          ['v4', ipv4Udp],
          ['v6', ipv6Udp],
        ] as const)
          out.push({
            name: `k8s ${family} ${qt} ${wire}`,
            packet: wrap(dns, { sport: 40000 + (id % 2000) }),
            source: 'k8s',
            weight,
            qtype,
            labels,
          })
      }
    }
  }
  return out
}

const QTYPES = [1, 28, 65, 64, 5, 16, 33, 12, 2, 6, 255, 0, 65535, 28 | 256, 1 << 8]

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!
}

/** A random but mostly well-formed query: 0-14 labels, random types, flags, EDNS, IP options, ext headers. */
export function randomQuery(r: () => number, i: number): CorpusPacket {
  const nl = Math.floor(r() * 15)
  const lens = Array.from({ length: nl }, () => (r() < 0.8 ? 1 + Math.floor(r() * 12) : 1 + Math.floor(r() * 63)))
  let q = Buffer.concat([wireName(lens), qtail(pick(r, QTYPES), r() < 0.9 ? 1 : 3)])
  if (r() < 0.2) q = Buffer.concat([q, Buffer.from([0, 0, 0x29, 0x04, 0xd0, 0, 0, 0, 0, 0, 0])]) // bytes of an OPT record
  const flags = r() < 0.8 ? 0x0100 : r() < 0.5 ? 0x8180 : Math.floor(r() * 0x10000)
  const qdcount = r() < 0.95 ? 1 : Math.floor(r() * 3)
  const dns = rawDns(q, { id: i & 0xffff, flags, qdcount })
  if (r() < 0.5) {
    const opts = r() < 0.15 ? Buffer.from([0x94, 0x04, 0, 0]) : undefined
    const frag = r() < 0.05 ? { moreFragments: true } : {}
    return {
      name: `random v4 #${i}`,
      packet: ipv4Udp(dns, { ...(opts ? { options: opts } : {}), ...frag }),
      source: 'random',
    }
  }
  const ext: Ipv6Ext[] =
    r() < 0.1 ? [pick(r, [{ type: 'hop' }, { type: 'fragment' }, { type: 'dest', len: 1 }] as Ipv6Ext[])] : []
  return { name: `random v6 #${i}`, packet: ipv6Udp(dns, { ext }), source: 'random' }
}

/** Flips, sets, inserts, deletes bytes; cuts the tail. Focused on the DNS part, where the walk is. */
export function mutate(r: () => number, pkt: Buffer): Buffer {
  const b = Buffer.from(pkt)
  if (b.length === 0) return b
  const dnsStart = b[0]! >> 4 === 6 ? 48 : (b[0]! & 0x0f) * 4 + 8
  const at = (): number => {
    const lo = r() < 0.85 ? Math.min(dnsStart, b.length - 1) : 0
    return lo + Math.floor(r() * (b.length - lo))
  }
  const n = 1 + Math.floor(r() * 3)
  let out = b
  for (let k = 0; k < n; k++) {
    const kind = r()
    if (out.length === 0) break
    if (kind < 0.35) out[at()] = Math.floor(r() * 256)
    else if (kind < 0.5) out[at()] = pick(r, [0, 0xc0, 0x3f, 0x40, 1, 2, 63])
    else if (kind < 0.6) out[at()]! ^= 1 << Math.floor(r() * 8)
    else if (kind < 0.75) {
      const p = at()
      out = Buffer.concat([out.subarray(0, p), Buffer.from([Math.floor(r() * 64)]), out.subarray(p)])
    } else if (kind < 0.85) {
      const p = at()
      out = Buffer.concat([out.subarray(0, p), out.subarray(p + 1)])
    } else out = out.subarray(0, at())
  }
  return out
}

/** vectors() + fixtures + k8s mix + `randoms` random queries + `mutations` mutants of all those. */
export function corpus(seed: number, randoms: number, mutations: number): CorpusPacket[] {
  const r = prng(seed)
  const base: CorpusPacket[] = [
    ...vectors().map(v => ({ name: v.name, packet: v.packet, source: 'vector' })),
    ...hexFixtures().map(f => ({ name: f.file, packet: f.packet, source: 'fixture' })),
    ...k8sMix().map(k => ({ name: k.name, packet: k.packet, source: k.source })),
  ]
  for (let i = 0; i < randoms; i++) base.push(randomQuery(r, i))
  const out = [...base]
  for (let i = 0; i < mutations; i++) {
    const src = base[Math.floor(r() * base.length)]!
    out.push({ name: `mutant #${i} of ${src.name}`, packet: mutate(r, src.packet), source: 'mutation' })
  }
  return out
}

/**
 * Evaluates an xt_u32 expression as the kernel does (net/netfilter/xt_u32.c, u32_match_it): tests
 * joined by &&, each a location (number, then &N <<N >>N @N operations) and a value list (N or N:M,
 * comma-separated). Any read past the packet makes the whole match false (before inversion).
 */
export function u32Matches(expr: string, pkt: Uint8Array, invert = false): boolean {
  const len = pkt.length
  const word = (off: number): number =>
    ((pkt[off]! << 24) | (pkt[off + 1]! << 16) | (pkt[off + 2]! << 8) | pkt[off + 3]!) >>> 0
  const num = (s: string): number => Number(s) >>> 0
  const run = (): boolean => {
    for (const test of expr.split('&&')) {
      const [loc, values] = test.split('=') as [string, string]
      const parts = loc.split(/(&|<<|>>|@)/)
      let at = 0
      let pos = num(parts[0]!)
      if (len < 4 || pos > len - 4) return false
      let val = word(pos)
      for (let i = 1; i < parts.length; i += 2) {
        const op = parts[i]
        const n = num(parts[i + 1]!)
        if (op === '&') val = (val & n) >>> 0
        else if (op === '<<') val = n >= 32 ? 0 : (val << n) >>> 0
        else if (op === '>>') val = n >= 32 ? 0 : val >>> n
        else {
          if (at + val > 0xffffffff) return false
          at += val
          pos = n
          if (at + 4 > 0xffffffff || len < at + 4 || pos > len - at - 4) return false
          val = word(at + pos)
        }
      }
      const ok = values.split(',').some(v => {
        const [lo, hi] = v.split(':')
        return num(lo!) <= val && val <= num(hi ?? lo!)
      })
      if (!ok) return false
    }
    return true
  }
  return run() !== invert
}

/** Whether any of the u32 rules (argument lists as u32MatchArgs() returns them) matches. */
export function u32RulesMatch(rules: readonly string[][], pkt: Uint8Array): boolean {
  return rules.some(args => {
    const i = args.indexOf('--u32')
    return u32Matches(args[i + 1]!, pkt, args[i - 1] === '!')
  })
}
