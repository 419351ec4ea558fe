// Parser vectors: built packets (test/helpers/packets.ts), captured packets (test/fixtures/packets),
// truncation at every byte, hostile names and a random-bytes smoke. Pure: no sockets, no root.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { parsePacket, type ParsedPacket } from '../../src/dataplane/nfqueue.js'
import {
  dnsQuery,
  hexFixtures,
  ipv4Udp,
  ipv6Udp,
  layout,
  qtail,
  rawDns,
  vectors,
  wireName,
  type Ipv6Ext,
} from '../helpers/packets.js'

const KINDS = new Set(['query', 'not_query', 'not_dns', 'malformed'])

t.test('vector table', async t => {
  for (const v of vectors()) {
    const p = parsePacket(v.packet)
    t.match(p, { kind: v.kind, reason: v.reason }, v.name)
    if (v.qtype !== undefined) t.equal(p.qtype, v.qtype, `${v.name}: qtype`)
    if (v.kind === 'query') t.equal(p.qclass === 1 || p.qclass === 3, true, `${v.name}: qclass`)
  }
})

t.test('fields of a plain AAAA query', async t => {
  const v4 = parsePacket(ipv4Udp(dnsQuery({ id: 0xbeef }), { sport: 41000, dport: 53 }))
  t.match(v4, {
    kind: 'query',
    reason: 'none',
    ipVersion: 4,
    qtype: 28,
    qclass: 1,
    dnsId: 0xbeef,
    sport: 41000,
    dport: 53,
    labels: 3,
    compressed: false,
  })
  t.type(v4.flowHash, 'bigint')
  t.not(v4.flowHash, 0n)
  const v6 = parsePacket(ipv6Udp(dnsQuery({ id: 7 }), { sport: 5353 }))
  t.match(v6, { kind: 'query', ipVersion: 6, qtype: 28, dnsId: 7, sport: 5353, dport: 53, labels: 3 })
  t.equal(parsePacket(ipv4Udp(dnsQuery({ name: '.' }))).labels, 0, 'root name has no labels')
  t.equal(parsePacket(ipv4Udp(rawDns(Buffer.concat([wireName(Array(127).fill(1)), qtail(1)])))).labels, 127)
})

t.test('compression', async t => {
  // The only valid pointer in a first question points back into its own bytes: "\x03\0ab" + ptr(13).
  const p = parsePacket(ipv4Udp(rawDns([3, 0, 0x61, 0x62, 0xc0, 0x0d, 0, 65, 0, 1])))
  t.match(p, { kind: 'query', compressed: true, qtype: 65, labels: 1 })
  const second = parsePacket(
    ipv4Udp(rawDns([...wireName([1, 7, 4]), 0, 1, 0, 1, 0xc0, 0x0e, 0, 28, 0, 1], { qdcount: 2 })),
  )
  t.match(second, { kind: 'query', compressed: false, qtype: 1 }, 'a compressed second question is not looked at')
})

t.test('captured packets', async t => {
  const expect: Record<string, Partial<ParsedPacket>> = {
    'dig-v4-aaaa-edns-cookie.hex': { kind: 'query', qtype: 28, ipVersion: 4, dport: 53, labels: 3 },
    'dig-v4-aaaa-response.hex': { kind: 'not_query', reason: 'none', qtype: 28, sport: 53 },
    'dig-v4-a-0x20-noedns.hex': { kind: 'query', qtype: 1, ipVersion: 4, labels: 3 },
    'dig-v4-a-response.hex': { kind: 'not_query', qtype: 1 },
    'dig-v6-https.hex': { kind: 'query', qtype: 65, ipVersion: 6, labels: 3 },
    'dig-v6-https-response.hex': { kind: 'not_query', qtype: 65 },
    'dig-v6-aaaa.hex': { kind: 'query', qtype: 28, ipVersion: 6 },
    'dig-v6-aaaa-response.hex': { kind: 'not_query', qtype: 28 },
    'v4-fragment-first.hex': { kind: 'not_dns', reason: 'fragment', ipVersion: 4 },
    'v4-fragment-middle.hex': { kind: 'not_dns', reason: 'fragment' },
    'v4-fragment-last.hex': { kind: 'not_dns', reason: 'fragment' },
    'v6-fragment-first.hex': { kind: 'not_dns', reason: 'fragment', ipVersion: 6 },
    'v6-fragment-middle.hex': { kind: 'not_dns', reason: 'fragment' },
    'v6-fragment-last.hex': { kind: 'not_dns', reason: 'fragment' },
  }
  const fixtures = hexFixtures()
  t.same(fixtures.map(f => f.file).sort(), Object.keys(expect).sort(), 'every fixture has an expectation')
  const byName = new Map(fixtures.map(f => [f.file, f.packet]))
  for (const f of fixtures) t.match(parsePacket(f.packet), expect[f.file]!, f.file)
  // dig's 0x20-free mixed-case name hashes like its lower-case form from the same socket.
  const mixed = byName.get('dig-v4-a-0x20-noedns.hex')!
  const lower = Buffer.from(mixed)
  const { name, nameEnd } = layout(lower)
  for (let i = name; i < nameEnd; i++) if (lower[i]! >= 0x41 && lower[i]! <= 0x5a) lower[i] = lower[i]! + 32
  t.not(lower.equals(mixed), true, 'fixture really has upper case')
  t.equal(parsePacket(lower).flowHash, parsePacket(mixed).flowHash)
  // Every truncation of a captured query stops being a query.
  for (const file of ['dig-v4-aaaa-edns-cookie.hex', 'dig-v6-https.hex']) {
    const pkt = byName.get(file)!
    const { end } = layout(pkt)
    for (let k = 0; k < pkt.length; k++)
      t.equal(parsePacket(pkt.subarray(0, k)).kind === 'query', k >= end, `${file} cut at ${k}`, { diagnostic: false })
  }
})

/** Expected reason for a packet cut to `k` bytes, from where the cut falls. */
function reasonAt(k: number, l: ReturnType<typeof layout>, ipHdr: number): string {
  if (k < ipHdr) return 'ip_header'
  if (k < l.l4) return 'ipv6_ext_header'
  if (k < l.l4 + 8) return 'udp_header'
  if (k < l.dns + 12) return 'dns_header'
  if (k < l.nameEnd) return 'label'
  if (k < l.end) return 'question'
  return 'none'
}

t.test('truncated at every byte length', async t => {
  const exts: Ipv6Ext[] = [{ type: 'hop' }, { type: 'dest', len: 2 }, { type: 'routing' }, { type: 'fragment' }]
  const cases: [string, Buffer, number][] = [
    ['v4 AAAA', ipv4Udp(dnsQuery()), 20],
    ['v4 AAAA with options', ipv4Udp(dnsQuery(), { options: Buffer.from([0x94, 4, 0, 0, 1, 1, 1, 0]) }), 20],
    ['v4 AAAA with EDNS', ipv4Udp(dnsQuery({ edns: true })), 20],
    ['v6 AAAA', ipv6Udp(dnsQuery()), 40],
    ['v6 AAAA with EDNS', ipv6Udp(dnsQuery({ edns: true })), 40],
    ['v6 AAAA behind hop/dest/routing/fragment', ipv6Udp(dnsQuery(), { ext: exts }), 40],
  ]
  for (const [name, pkt, ipHdr] of cases) {
    const l = layout(pkt)
    let bad = 0
    for (let k = 0; k <= pkt.length; k++) {
      const p = parsePacket(pkt.subarray(0, k))
      const want = reasonAt(k, l, ipHdr)
      // A cut inside the IPv4 options is a cut inside the IP header.
      const wantV4 = ipHdr === 20 && k >= 20 && k < l.l4 ? 'ip_header' : want
      const kind = wantV4 === 'none' ? 'query' : 'malformed'
      if (p.kind !== kind || p.reason !== wantV4) {
        bad++
        t.fail(`${name} cut at ${k}/${pkt.length}`, { found: `${p.kind}/${p.reason}`, wanted: `${kind}/${wantV4}` })
      }
    }
    t.equal(bad, 0, `${name}: ${pkt.length + 1} cut points, each with the reason of the layer it falls in`)
  }
})

t.test('truncation by a shorter IP length field behaves like a cut buffer', async t => {
  const pkt = ipv4Udp(dnsQuery())
  const l = layout(pkt)
  for (let total = 20; total < pkt.length; total++) {
    const b = Buffer.from(pkt)
    b.writeUInt16BE(total, 2)
    const p = parsePacket(b)
    t.equal(p.reason, reasonAt(total, l, 20), `total length ${total}`, { diagnostic: false })
  }
  const v6 = ipv6Udp(dnsQuery())
  const l6 = layout(v6)
  for (let plen = 0; plen < v6.length - 40; plen++) {
    const b = Buffer.from(v6)
    b.writeUInt16BE(plen, 4)
    t.equal(parsePacket(b).reason, reasonAt(40 + plen, l6, 40), `payload length ${plen}`, { diagnostic: false })
  }
})

t.test('names', async t => {
  const n = (labels: number[]) => parsePacket(ipv4Udp(rawDns(Buffer.concat([wireName(labels), qtail(28)]))))
  t.match(n([63, 63, 63, 61]), { kind: 'query', labels: 4 }, '255-byte name')
  t.match(n([63, 63, 63, 62]), { kind: 'malformed', reason: 'name_too_long' }, '256-byte name')
  t.match(n([63, 63, 63, 63]), { kind: 'malformed', reason: 'name_too_long' }, '257-byte name')
  t.match(n([63]), { kind: 'query', labels: 1 }, '63-byte label')
  for (let b = 0x40; b <= 0xbf; b++) {
    const p = parsePacket(ipv4Udp(rawDns([b, ...Buffer.alloc(200, 0x61), 0, 0, 28, 0, 1])))
    t.match(p, { kind: 'malformed', reason: 'label' }, `label length byte 0x${b.toString(16)}`, { diagnostic: false })
  }
  // Same 255-byte name, but reached through a backward pointer: the length counts what is walked.
  const viaPtr = [3, 0, 0x61, 0x62, ...wireName([63, 63, 63, 57]).subarray(0, -1), 0xc0, 0x0d, 0, 28, 0, 1]
  t.match(
    parsePacket(ipv4Udp(rawDns(viaPtr))),
    { kind: 'query', compressed: true },
    '4 + 250 + root (through the pointer) = 255 bytes',
  )
  const viaPtr256 = [3, 0, 0x61, 0x62, ...wireName([63, 63, 63, 58]).subarray(0, -1), 0xc0, 0x0d, 0, 28, 0, 1]
  t.match(parsePacket(ipv4Udp(rawDns(viaPtr256))), { reason: 'name_too_long' }, '256 bytes via pointer')
})

t.test('pointers', async t => {
  const p = (q: number[], o = {}) => parsePacket(ipv4Udp(rawDns(q, o)))
  for (let off = 0; off < 12; off++)
    t.match(
      p([0xc0, off, 0, 28, 0, 1]),
      { kind: 'malformed', reason: 'pointer' },
      `first-question pointer to header offset ${off}`,
      { diagnostic: false },
    )
  t.match(p([0xc0, 12, 0, 28, 0, 1]), { reason: 'pointer' }, 'self pointer')
  t.match(p([0xc0, 14, 0xc0, 12, 0, 28, 0, 1]), { reason: 'pointer' }, 'pair pointing at each other')
  t.match(p([1, 0x61, 0xc0, 14, 0, 28, 0, 1]), { reason: 'pointer' }, 'pointer to itself after a label')
  t.match(p([1, 0x61, 0xc0, 12, 0, 28, 0, 1]), { reason: 'pointer' }, 'loop through one label')
  t.match(p([1, 0x61, 1, 0x62, 0xc0, 14, 0, 28, 0, 1]), { reason: 'pointer' }, 'loop through the second label')
  t.match(p([0x7f, 0xff]), { reason: 'label' }, '0x7f is a (bad) label, not a pointer')
  // A chain of backward pointers that ends well: the first label (offset 12) hides a pool holding a
  // root byte at 13 and pointers at 14, 16, ... each to the one before; the name then jumps into it.
  const chain = (hops: number) => {
    const k = hops - 1
    const pool = [0]
    for (let i = 0; i < k; i++) pool.push(0xc0, i === 0 ? 13 : 14 + 2 * (i - 1))
    return [pool.length, ...pool, 0xc0, k === 0 ? 13 : 14 + 2 * (k - 1), 0, 28, 0, 1]
  }
  t.match(p(chain(1)), { kind: 'query', compressed: true, labels: 1 }, '1 hop')
  t.match(p(chain(16)), { kind: 'query', compressed: true, qtype: 28 }, '16 hops')
  t.match(p(chain(17)), { kind: 'malformed', reason: 'pointer' }, '17 hops')
  // Pointer offsets are relative to the DNS header, wherever it sits in the IP packet.
  t.match(parsePacket(ipv6Udp(rawDns(chain(3)), { ext: [{ type: 'hop' }] })), { kind: 'query', compressed: true })
  t.match(parsePacket(ipv4Udp(rawDns(chain(3)), { options: Buffer.alloc(12, 1) })), { kind: 'query', compressed: true })
})

t.test('IPv6 extension header walk', async t => {
  const q = dnsQuery({ qtype: 65 })
  for (const e of ['hop', 'dest', 'routing'] as const)
    for (const len of [0, 1, 31])
      t.match(parsePacket(ipv6Udp(q, { ext: [{ type: e, len }] })), { kind: 'query', qtype: 65 }, `${e} len ${len}`)
  t.match(parsePacket(ipv6Udp(q, { ext: [{ type: 'fragment' }] })), { kind: 'query' }, 'atomic fragment')
  t.match(parsePacket(ipv6Udp(q, { ext: [{ type: 'fragment', more: true }] })), { kind: 'not_dns', reason: 'fragment' })
  t.match(parsePacket(ipv6Udp(q, { ext: [{ type: 'fragment', offset: 1 }] })), { kind: 'not_dns', reason: 'fragment' })
  t.match(parsePacket(ipv6Udp(q, { ext: [{ type: 'fragment', offset: 8191, more: true }] })), {
    kind: 'not_dns',
    reason: 'fragment',
  })
  t.match(
    parsePacket(ipv6Udp(q, { ext: [{ type: 'dest' }, { type: 'fragment' }, { type: 'ah', len: 1 }] })),
    { kind: 'query' },
    'dest, atomic fragment, AH',
  )
  t.match(parsePacket(ipv6Udp(q, { ext: [{ type: 'hop' }], proto: 50 })), { kind: 'not_dns', reason: 'not_udp' }, 'ESP')
  // An extension header longer than what was captured (copy range) is the chain's fault.
  const big = ipv6Udp(q, { ext: [{ type: 'dest', len: 80 }] })
  t.match(parsePacket(big.subarray(0, 512)), { kind: 'malformed', reason: 'ipv6_ext_header' })
  t.match(parsePacket(big), { kind: 'query' }, 'the same packet uncut')
  // Same hashing regardless of extension headers: the key is addresses, ports and name.
  t.equal(parsePacket(ipv6Udp(q, { ext: [{ type: 'hop' }] })).flowHash, parsePacket(ipv6Udp(q)).flowHash)
})

t.test('IPv4 fragments and protocols', async t => {
  const q = dnsQuery()
  t.match(parsePacket(ipv4Udp(q, { moreFragments: true })), { kind: 'not_dns', reason: 'fragment' }, 'MF')
  t.match(parsePacket(ipv4Udp(q, { fragOffset: 1 })), { kind: 'not_dns', reason: 'fragment' }, 'offset 1')
  t.match(parsePacket(ipv4Udp(q, { fragOffset: 0x1fff })), { kind: 'not_dns', reason: 'fragment' }, 'max offset')
  const df = ipv4Udp(q)
  df.writeUInt16BE(0x4000, 6)
  t.match(parsePacket(df), { kind: 'query' }, 'DF alone is not a fragment')
  for (const proto of [0, 1, 6, 41, 50, 58, 132, 136, 255])
    t.match(parsePacket(ipv4Udp(q, { proto })), { kind: 'not_dns', reason: 'not_udp' }, `proto ${proto}`, {
      diagnostic: false,
    })
  for (let ihl = 6; ihl <= 15; ihl++) {
    const opts = Buffer.alloc((ihl - 5) * 4, 1) // NOPs
    t.match(parsePacket(ipv4Udp(q, { options: opts })), { kind: 'query', qtype: 28 }, `IHL ${ihl}`, {
      diagnostic: false,
    })
  }
})

t.test('flowHash', async t => {
  const h = (o: { name?: string; qtype?: number | string; id?: number } = {}, u: Parameters<typeof ipv4Udp>[1] = {}) =>
    parsePacket(ipv4Udp(dnsQuery({ name: o.name ?? 'x.example.test', qtype: o.qtype ?? 'AAAA', id: o.id ?? 1 }), u))
      .flowHash
  const h6 = (o: { name?: string; qtype?: string } = {}, u: Parameters<typeof ipv6Udp>[1] = {}) =>
    parsePacket(ipv6Udp(dnsQuery({ name: o.name ?? 'x.example.test', qtype: o.qtype ?? 'AAAA' }), u)).flowHash
  const base = h()
  t.equal(h({ qtype: 'A' }), base, 'A and AAAA of the same name and socket share the key (pair mode)')
  t.equal(h({ qtype: 65 }), base, 'HTTPS too')
  t.equal(h({ id: 2 }), base, 'DNS id is not part of the key (glibc uses a new id per question)')
  t.equal(h({ name: 'X.ExAmPlE.TeSt' }), base, '0x20 mixed case')
  t.equal(h({ name: 'X.EXAMPLE.TEST', qtype: 'A' }), base, '0x20 + A vs AAAA')
  t.not(h({ name: 'y.example.test' }), base, 'other name')
  t.not(h({ name: 'xexample.test' }), base, 'labels matter, not just letters')
  t.not(h({ name: 'x.example.tesu' }), base, 'one letter')
  t.not(h({}, { sport: 40001 }), base, 'source port')
  t.not(h({}, { dport: 5353 }), base, 'destination port')
  t.not(h({}, { src: '198.51.100.8' }), base, 'source address')
  t.not(h({}, { dst: '192.0.2.2' }), base, 'destination address')
  t.equal(h6({ qtype: 'A' }), h6(), 'IPv6: A and AAAA share the key')
  t.equal(h6({ name: 'x.EXAMPLE.test' }), h6(), 'IPv6: 0x20')
  t.not(h6({}, { sport: 1 }), h6(), 'IPv6: source port')
  t.not(h6({}, { src: '2001:db8::8' }), h6(), 'IPv6: source address')
  t.not(h6({}, { dst: '2001:db8:1::1' }), h6(), 'IPv6: destination address')
  // Distinct flows rarely collide.
  const seen = new Set<bigint>()
  for (let port = 1024; port < 3024; port++) seen.add(h({}, { sport: port }))
  t.equal(seen.size, 2000, '2000 source ports, 2000 keys')
})

t.test('argument check', async t => {
  t.throws(() => (parsePacket as (b: unknown) => ParsedPacket)('not a buffer'), TypeError)
  t.throws(() => (parsePacket as (b: unknown) => ParsedPacket)(undefined), TypeError)
})

t.test('random bytes: no crash, kind is one of four', async t => {
  const counts: Record<string, number> = {}
  let bad = 0
  for (let i = 0; i < 20000; i++) {
    const buf = randomBytes(Math.floor(Math.random() * 601))
    // Half the time, make it look like IPv4/IPv6 UDP so the walk gets past the first checks.
    if (i & 1 && buf.length >= 40) {
      if (i & 2) {
        buf[0] = 0x45
        buf[6] = 0
        buf[9] = 17
      } else {
        buf[0] = 0x60
        buf[6] = [17, 0, 60, 43, 44][i % 5]!
      }
    }
    const p = parsePacket(buf)
    counts[p.kind] = (counts[p.kind] ?? 0) + 1
    if (!KINDS.has(p.kind)) bad++
  }
  t.equal(bad, 0)
  t.ok(counts.malformed! > 0 && counts.not_dns! > 0, 'random input reaches several kinds')
  t.comment(JSON.stringify(counts))
})

t.test('mutated valid packets: no crash, truncations never become queries', async t => {
  const seeds = [...vectors().map(v => v.packet), ...hexFixtures().map(f => f.packet)]
  let bad = 0
  for (let i = 0; i < 20000; i++) {
    const b = Buffer.from(seeds[i % seeds.length]!)
    for (let j = 0; j < 1 + (i % 4); j++) b[Math.floor(Math.random() * b.length)] = Math.floor(Math.random() * 256)
    const p = parsePacket(b.subarray(0, Math.floor(Math.random() * (b.length + 1))))
    if (!KINDS.has(p.kind)) bad++
  }
  t.equal(bad, 0)
})
