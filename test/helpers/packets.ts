// Packet builders for the parser tests and the fuzz seed corpus: IPv4/IPv6 + UDP around a DNS payload
// built with dns-packet, with knobs for IPv4 options, IPv6 extension headers and fragments.
// Pure functions on Buffers; nothing here touches the network.
import dnsPacket from 'dns-packet'
import { isIP } from 'node:net'
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'

/** QTYPE numbers used in the tests (dns-packet 5.6 does not know SVCB/HTTPS: it encodes them as 0). */
export const QTYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  SVCB: 64,
  HTTPS: 65,
  ANY: 255,
} as const

export interface QueryOptions {
  id?: number
  /** Raw 16-bit DNS flags word (QR, OPCODE, RD...). Default: RD. */
  flags?: number
  /** QTYPE of the first question, as a number (any value) or a dns-packet type name. */
  qtype?: number | string
  name?: string
  /** More questions after the first one (same QTYPE encoding rules). */
  more?: { name: string; qtype: number | string }[]
  /** Add an EDNS OPT record in the additional section. */
  edns?: boolean
}

/** Encodes a DNS query with dns-packet, then patches numeric QTYPEs dns-packet cannot spell. */
export function dnsQuery(o: QueryOptions = {}): Buffer {
  const qs = [{ name: o.name ?? 'x.example.test', qtype: o.qtype ?? 'AAAA' }, ...(o.more ?? [])]
  const packet: dnsPacket.Packet = {
    type: 'query',
    id: o.id ?? 0x1234,
    flags: o.flags ?? dnsPacket.RECURSION_DESIRED,
    questions: qs.map(q => ({
      name: q.name,
      type: (typeof q.qtype === 'string' ? q.qtype : 'A') as dnsPacket.RecordType,
    })),
  }
  if (o.edns) {
    const opt: dnsPacket.OptAnswer = {
      type: 'OPT',
      name: '.',
      udpPayloadSize: 1232,
      extendedRcode: 0,
      ednsVersion: 0,
      flags: 0,
      flag_do: false,
      options: [],
    }
    packet.additionals = [opt]
  }
  const buf = dnsPacket.encode(packet)
  // dns-packet writes the flags word with QR derived from `type`; put back the raw word we were given.
  if (o.flags !== undefined) buf.writeUInt16BE(o.flags, 2)
  // Walk the questions to patch numeric QTYPEs (names are uncompressed as dns-packet wrote them).
  let pos = 12
  for (const q of qs) {
    while (buf[pos] !== 0) pos += 1 + buf[pos]!
    pos += 1
    if (typeof q.qtype === 'number') buf.writeUInt16BE(q.qtype, pos)
    pos += 4
  }
  return buf
}

/** A DNS header (12 bytes) followed by raw question bytes: for names dns-packet would refuse or fix. */
export function rawDns(
  question: Buffer | number[],
  o: { id?: number; flags?: number; qdcount?: number; ancount?: number } = {},
): Buffer {
  const h = Buffer.alloc(12)
  h.writeUInt16BE(o.id ?? 0x4242, 0)
  h.writeUInt16BE(o.flags ?? 0x0100, 2)
  h.writeUInt16BE(o.qdcount ?? 1, 4)
  h.writeUInt16BE(o.ancount ?? 0, 6)
  return Buffer.concat([h, Buffer.from(question)])
}

/** Wire form of a name from label lengths filled with 'a'..'z' (no length checks: tests want bad ones). */
export function wireName(labelLengths: number[]): Buffer {
  const parts: Buffer[] = []
  let c = 0
  for (const n of labelLengths) {
    const label = Buffer.alloc(1 + n)
    label[0] = n
    for (let i = 0; i < n; i++) label[1 + i] = 0x61 + (c++ % 26)
    parts.push(label)
  }
  parts.push(Buffer.from([0]))
  return Buffer.concat(parts)
}

/** QTYPE + QCLASS IN. */
export function qtail(qtype: number, qclass = 1): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt16BE(qtype, 0)
  b.writeUInt16BE(qclass, 2)
  return b
}

export interface UdpOptions {
  src?: string
  dst?: string
  sport?: number
  dport?: number
  /** Override the UDP length field (default: 8 + payload). */
  udpLength?: number
  /** Bytes appended after the UDP datagram (inside the IP packet, beyond the UDP length). */
  trailer?: Buffer
}

function ones16(buf: Buffer, sum = 0): number {
  for (let i = 0; i + 1 < buf.length; i += 2) sum += buf.readUInt16BE(i)
  if (buf.length & 1) sum += buf[buf.length - 1]! << 8
  return sum
}

function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16)
  return ~sum & 0xffff
}

function udpHeader(payload: Buffer, o: UdpOptions, pseudo: Buffer): Buffer {
  const u = Buffer.alloc(8)
  u.writeUInt16BE(o.sport ?? 40000, 0)
  u.writeUInt16BE(o.dport ?? 53, 2)
  u.writeUInt16BE(o.udpLength ?? 8 + payload.length, 4)
  const c = fold(ones16(payload, ones16(u, ones16(pseudo))))
  u.writeUInt16BE(c === 0 ? 0xffff : c, 6)
  return u
}

function v4addr(a: string): Buffer {
  if (isIP(a) !== 4) throw new Error(`not an IPv4 address: ${a}`)
  return Buffer.from(a.split('.').map(Number))
}

function v6addr(a: string): Buffer {
  if (isIP(a) !== 6) throw new Error(`not an IPv6 address: ${a}`)
  const [head, tail] = a.includes('::') ? (a.split('::') as [string, string]) : [a, undefined]
  const h = head ? head.split(':') : []
  const t = tail ? tail.split(':') : []
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t]
  const b = Buffer.alloc(16)
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2))
  return b
}

export interface Ipv4Options extends UdpOptions {
  /** IPv4 options (padded with EOL to a multiple of 4 bytes; IHL grows to match). */
  options?: Buffer
  /** Fragment offset in 8-byte units. */
  fragOffset?: number
  moreFragments?: boolean
  /** IP protocol (default 17, UDP). With another protocol the payload is still a UDP header + DNS. */
  proto?: number
  /** Override the total length field. */
  totalLength?: number
  /** Override the first byte (version/IHL). */
  versionIhl?: number
}

/** IPv4 + UDP around `payload`, checksums filled in. */
export function ipv4Udp(payload: Buffer, o: Ipv4Options = {}): Buffer {
  const src = v4addr(o.src ?? '198.51.100.7')
  const dst = v4addr(o.dst ?? '192.0.2.1')
  let opts = o.options ?? Buffer.alloc(0)
  if (opts.length % 4) opts = Buffer.concat([opts, Buffer.alloc(4 - (opts.length % 4))])
  const proto = o.proto ?? 17
  const udpLen = 8 + payload.length
  const pseudo = Buffer.concat([src, dst, Buffer.from([0, proto, udpLen >> 8, udpLen & 0xff])])
  const l4 = Buffer.concat([udpHeader(payload, o, pseudo), payload, o.trailer ?? Buffer.alloc(0)])
  const ip = Buffer.alloc(20)
  ip[0] = o.versionIhl ?? 0x40 | (5 + opts.length / 4)
  ip.writeUInt16BE(o.totalLength ?? 20 + opts.length + l4.length, 2)
  ip.writeUInt16BE(0x1c46, 4)
  ip.writeUInt16BE((o.moreFragments ? 0x2000 : 0) | (o.fragOffset ?? 0), 6)
  ip[8] = 64
  ip[9] = proto
  src.copy(ip, 12)
  dst.copy(ip, 16)
  const hdr = Buffer.concat([ip, opts])
  hdr.writeUInt16BE(fold(ones16(hdr)), 10)
  return Buffer.concat([hdr, l4])
}

export type Ipv6Ext =
  | { type: 'hop' | 'dest' | 'routing'; /** Hdr Ext Len: the header is (len + 1) * 8 bytes. */ len?: number }
  | { type: 'fragment'; offset?: number; more?: boolean; id?: number }
  | { type: 'ah'; /** Payload Len: the header is (len + 2) * 4 bytes. */ len?: number }

const EXT_PROTO = { hop: 0, routing: 43, fragment: 44, dest: 60, ah: 51 } as const

function extHeader(e: Ipv6Ext, next: number): Buffer {
  if (e.type === 'fragment') {
    const b = Buffer.alloc(8)
    b[0] = next
    b.writeUInt16BE(((e.offset ?? 0) << 3) | (e.more ? 1 : 0), 2)
    b.writeUInt32BE(e.id ?? 0xdead, 4)
    return b
  }
  if (e.type === 'ah') {
    const b = Buffer.alloc(((e.len ?? 4) + 2) * 4)
    b[0] = next
    b[1] = e.len ?? 4
    return b
  }
  const b = Buffer.alloc(((e.len ?? 0) + 1) * 8)
  b[0] = next
  b[1] = e.len ?? 0
  if (e.type === 'routing') {
    b[2] = 4 // segment routing; segments left 0, so a router would just skip it
  } else {
    b[2] = 1 // PadN covering the rest of the header
    b[3] = b.length - 4
  }
  return b
}

export interface Ipv6Options extends UdpOptions {
  ext?: Ipv6Ext[]
  /** Next header after the extension chain (default 17). */
  proto?: number
  /** Override the payload length field. */
  payloadLength?: number
}

/** IPv6 (+ extension headers) + UDP around `payload`. */
export function ipv6Udp(payload: Buffer, o: Ipv6Options = {}): Buffer {
  const src = v6addr(o.src ?? '2001:db8::7')
  const dst = v6addr(o.dst ?? '2001:db8::1')
  const proto = o.proto ?? 17
  const udpLen = 8 + payload.length
  const pseudo = Buffer.concat([src, dst, Buffer.from([0, 0, udpLen >> 8, udpLen & 0xff, 0, 0, 0, proto])])
  const l4 = Buffer.concat([udpHeader(payload, o, pseudo), payload, o.trailer ?? Buffer.alloc(0)])
  const ext = o.ext ?? []
  const exts: Buffer[] = []
  for (let i = 0; i < ext.length; i++) {
    const next = i + 1 < ext.length ? EXT_PROTO[ext[i + 1]!.type] : proto
    exts.push(extHeader(ext[i]!, next))
  }
  const body = Buffer.concat([...exts, l4])
  const ip = Buffer.alloc(40)
  ip.writeUInt32BE(0x60000000, 0)
  ip.writeUInt16BE(o.payloadLength ?? body.length, 4)
  ip[6] = ext.length ? EXT_PROTO[ext[0]!.type] : proto
  ip[7] = 64
  src.copy(ip, 8)
  dst.copy(ip, 24)
  return Buffer.concat([ip, body])
}

/** Offsets of the layers inside a packet built above (for truncation tests). */
export function layout(pkt: Buffer): { l4: number; dns: number; name: number; nameEnd: number; end: number } {
  let l4: number
  if (pkt[0]! >> 4 === 4) {
    l4 = (pkt[0]! & 0x0f) * 4
  } else {
    let next = pkt[6]!
    l4 = 40
    while (next !== 17) {
      const cur = next
      next = pkt[l4]!
      l4 += cur === 44 ? 8 : cur === 51 ? (pkt[l4 + 1]! + 2) * 4 : (pkt[l4 + 1]! + 1) * 8
    }
  }
  const dns = l4 + 8
  let p = dns + 12
  while (pkt[p] !== 0) p += 1 + pkt[p]!
  return { l4, dns, name: dns + 12, nameEnd: p + 1, end: p + 5 }
}

export interface Vector {
  name: string
  packet: Buffer
  kind: 'query' | 'not_query' | 'not_dns' | 'malformed'
  reason: string
  qtype?: number
}

/** The parser's table of expectations; also dumped into the fuzz seed corpus. */
export function vectors(): Vector[] {
  const q = (o: QueryOptions = {}) => dnsQuery(o)
  const v: Vector[] = []
  const add = (name: string, packet: Buffer, kind: Vector['kind'], reason: string, qtype?: number) =>
    v.push({ name, packet, kind, reason, ...(qtype === undefined ? {} : { qtype }) })
  for (const [fam, wrap] of [
    ['v4', ipv4Udp],
    ['v6', ipv6Udp],
  ] as const) {
    add(`${fam} A`, wrap(q({ qtype: 'A' })), 'query', 'none', 1)
    add(`${fam} AAAA`, wrap(q({ qtype: 'AAAA' })), 'query', 'none', 28)
    add(`${fam} HTTPS`, wrap(q({ qtype: 65, name: 'svc.example.test' })), 'query', 'none', 65)
    add(`${fam} SVCB`, wrap(q({ qtype: 64, name: '_dns.resolver.example.test' })), 'query', 'none', 64)
    add(`${fam} TYPE65534 (private use)`, wrap(q({ qtype: 65534 })), 'query', 'none', 65534)
    add(
      `${fam} multiple questions: first counts`,
      wrap(q({ qtype: 'AAAA', more: [{ name: 'y.example.test', qtype: 'A' }] })),
      'query',
      'none',
      28,
    )
    add(`${fam} EDNS OPT in additional`, wrap(q({ qtype: 'AAAA', edns: true })), 'query', 'none', 28)
    add(`${fam} root name`, wrap(q({ qtype: 'NS', name: '.' })), 'query', 'none', 2)
    add(`${fam} response QR=1`, wrap(q({ flags: 0x8180 })), 'not_query', 'none', 28)
    add(`${fam} opcode NOTIFY`, wrap(q({ flags: 4 << 11 })), 'not_query', 'none', 28)
    add(`${fam} opcode UPDATE`, wrap(q({ flags: 5 << 11 })), 'not_query', 'none', 28)
    add(`${fam} QDCOUNT 0`, wrap(rawDns([], { qdcount: 0 })), 'not_query', 'none')
    add(
      `${fam} trailing garbage after the question`,
      wrap(Buffer.concat([q(), Buffer.from('garbage-garbage')])),
      'query',
      'none',
      28,
    )
    add(
      `${fam} bytes beyond the UDP length`,
      wrap(q(), { trailer: Buffer.from([0xc0, 0x0c, 0xff]) }),
      'query',
      'none',
      28,
    )
    add(`${fam} UDP length 7`, wrap(q(), { udpLength: 7 }), 'malformed', 'udp_header')
    add(`${fam} UDP length 0`, wrap(q(), { udpLength: 0 }), 'malformed', 'udp_header')
    add(`${fam} UDP length covers only the DNS header`, wrap(q(), { udpLength: 8 + 12 }), 'malformed', 'label')
    add(`${fam} UDP length beyond the packet (copy range cut)`, wrap(q(), { udpLength: 1400 }), 'query', 'none', 28)
    add(`${fam} UDP to another port is still parsed`, wrap(q(), { dport: 5353 }), 'query', 'none', 28)
  }
  // IPv4 specifics.
  add(
    'v4 options (router alert, IHL 6)',
    ipv4Udp(q(), { options: Buffer.from([0x94, 0x04, 0, 0]) }),
    'query',
    'none',
    28,
  )
  add(
    'v4 options (40 bytes, IHL 15)',
    ipv4Udp(q(), { options: Buffer.concat([Buffer.from([0x07, 39, 4]), Buffer.alloc(36)]) }),
    'query',
    'none',
    28,
  )
  add('v4 more fragments', ipv4Udp(q(), { moreFragments: true }), 'not_dns', 'fragment')
  add('v4 fragment offset', ipv4Udp(q(), { fragOffset: 185 }), 'not_dns', 'fragment')
  add('v4 TCP', ipv4Udp(q(), { proto: 6 }), 'not_dns', 'not_udp')
  add('v4 ICMP', ipv4Udp(q(), { proto: 1 }), 'not_dns', 'not_udp')
  add('v4 IHL 4', ipv4Udp(q(), { versionIhl: 0x44 }), 'malformed', 'ip_header')
  add(
    'v4 IHL beyond the packet',
    ipv4Udp(Buffer.alloc(0), { versionIhl: 0x4f, udpLength: 8 }).subarray(0, 40),
    'malformed',
    'ip_header',
  )
  add('v4 total length < IHL', ipv4Udp(q(), { totalLength: 19 }), 'malformed', 'ip_header')
  add('v4 total length cuts the name', ipv4Udp(q(), { totalLength: 20 + 8 + 12 + 3 }), 'malformed', 'label')
  add('v4 total length cuts inside UDP', ipv4Udp(q(), { totalLength: 24 }), 'malformed', 'udp_header')
  add('version 5', ipv4Udp(q(), { versionIhl: 0x55 }), 'malformed', 'ip_header')
  add('version 0', Buffer.alloc(60), 'malformed', 'ip_header')
  add('empty', Buffer.alloc(0), 'malformed', 'ip_header')
  // IPv6 extension headers.
  add('v6 hop-by-hop', ipv6Udp(q(), { ext: [{ type: 'hop' }] }), 'query', 'none', 28)
  add('v6 dest opts (24 bytes)', ipv6Udp(q(), { ext: [{ type: 'dest', len: 2 }] }), 'query', 'none', 28)
  add('v6 routing', ipv6Udp(q(), { ext: [{ type: 'routing' }] }), 'query', 'none', 28)
  add('v6 atomic fragment', ipv6Udp(q(), { ext: [{ type: 'fragment' }] }), 'query', 'none', 28)
  add('v6 AH', ipv6Udp(q(), { ext: [{ type: 'ah' }] }), 'query', 'none', 28)
  add(
    'v6 hop, dest, routing, atomic fragment, dest',
    ipv6Udp(q(), {
      ext: [{ type: 'hop' }, { type: 'dest' }, { type: 'routing' }, { type: 'fragment' }, { type: 'dest', len: 1 }],
    }),
    'query',
    'none',
    28,
  )
  add('v6 first fragment (M=1)', ipv6Udp(q(), { ext: [{ type: 'fragment', more: true }] }), 'not_dns', 'fragment')
  add('v6 later fragment (offset)', ipv6Udp(q(), { ext: [{ type: 'fragment', offset: 100 }] }), 'not_dns', 'fragment')
  add(
    'v6 hop then fragment (M=1)',
    ipv6Udp(q(), { ext: [{ type: 'hop' }, { type: 'fragment', more: true }] }),
    'not_dns',
    'fragment',
  )
  add('v6 8 extension headers', ipv6Udp(q(), { ext: Array(8).fill({ type: 'dest' }) }), 'query', 'none', 28)
  add('v6 9 extension headers', ipv6Udp(q(), { ext: Array(9).fill({ type: 'dest' }) }), 'malformed', 'ipv6_ext_header')
  add(
    'v6 extension header beyond the packet',
    ipv6Udp(Buffer.alloc(0), { ext: [{ type: 'dest', len: 255 }] }).subarray(0, 60),
    'malformed',
    'ipv6_ext_header',
  )
  add('v6 TCP', ipv6Udp(q(), { proto: 6 }), 'not_dns', 'not_udp')
  add('v6 ICMPv6', ipv6Udp(q(), { proto: 58 }), 'not_dns', 'not_udp')
  add('v6 no next header', ipv6Udp(q(), { proto: 59 }), 'not_dns', 'not_udp')
  add('v6 hop then TCP', ipv6Udp(q(), { ext: [{ type: 'hop' }], proto: 6 }), 'not_dns', 'not_udp')
  add('v6 payload length 0', ipv6Udp(q(), { payloadLength: 0 }), 'malformed', 'udp_header')
  add('v6 header only', ipv6Udp(q()).subarray(0, 40), 'malformed', 'udp_header')
  add('v6 short header', ipv6Udp(q()).subarray(0, 39), 'malformed', 'ip_header')
  // Names (IPv4 carrier).
  const n = (labels: number[], qtype = 28) => Buffer.concat([wireName(labels), qtail(qtype)])
  add('name of 255 bytes', ipv4Udp(rawDns(n([63, 63, 63, 61]))), 'query', 'none', 28)
  add('name of 256 bytes', ipv4Udp(rawDns(n([63, 63, 63, 62]))), 'malformed', 'name_too_long')
  add('name of 255 bytes of 1-byte labels', ipv4Udp(rawDns(n(Array(127).fill(1)))), 'query', 'none', 28)
  add('name of 257 bytes of 1-byte labels', ipv4Udp(rawDns(n(Array(128).fill(1)))), 'malformed', 'name_too_long')
  add('63-byte label', ipv4Udp(rawDns(n([63, 7, 4]))), 'query', 'none', 28)
  for (const b of [0x40, 0x41, 0x7f, 0x80, 0xbf])
    add(
      `label length byte 0x${b.toString(16)}`,
      ipv4Udp(rawDns([b, ...Buffer.alloc(b & 0x3f, 0x61), 0, 0, 28, 0, 1])),
      'malformed',
      'label',
    )
  add('label longer than the packet', ipv4Udp(rawDns([20, 0x61, 0x62])), 'malformed', 'label')
  add('name without its root label', ipv4Udp(rawDns([1, 0x61])), 'malformed', 'label')
  add('no QTYPE', ipv4Udp(rawDns([1, 0x61, 0])), 'malformed', 'question')
  add('QTYPE without QCLASS', ipv4Udp(rawDns([1, 0x61, 0, 0, 28])), 'malformed', 'question')
  add('QCLASS CH', ipv4Udp(rawDns(Buffer.concat([wireName([7, 7]), qtail(16, 3)]))), 'query', 'none', 16)
  // Compression pointers: offsets are from the DNS header; the first question starts at 12.
  add('pointer to the DNS header (offset 0)', ipv4Udp(rawDns([0xc0, 0x00, 0, 28, 0, 1])), 'malformed', 'pointer')
  add('pointer to offset 11', ipv4Udp(rawDns([1, 0x61, 0xc0, 0x0b, 0, 28, 0, 1])), 'malformed', 'pointer')
  add('self pointer', ipv4Udp(rawDns([0xc0, 0x0c, 0, 28, 0, 1])), 'malformed', 'pointer')
  add('forward pointer', ipv4Udp(rawDns([0xc0, 0x0e, 1, 0x61, 0, 0, 28, 0, 1])), 'malformed', 'pointer')
  add(
    'two pointers pointing at each other',
    ipv4Udp(rawDns([0xc0, 0x0e, 0xc0, 0x0c, 0, 28, 0, 1])),
    'malformed',
    'pointer',
  )
  add('pointer loop through a label', ipv4Udp(rawDns([1, 0x61, 0xc0, 0x0c, 0, 28, 0, 1])), 'malformed', 'pointer')
  add(
    'pointer loop through long labels',
    ipv4Udp(rawDns([63, ...Buffer.alloc(63, 0x61), 0xc0, 0x0c, 0, 28, 0, 1])),
    'malformed',
    'name_too_long',
  )
  add('pointer cut after its first byte', ipv4Udp(rawDns([1, 0x61, 0xc0])), 'malformed', 'pointer')
  add('pointer far beyond the packet', ipv4Udp(rawDns([0xff, 0xff, 0, 28, 0, 1])), 'malformed', 'pointer')
  // A valid backward pointer in the first question: label "\0ab" at 12 holds a root byte at 13.
  add(
    'backward pointer into a label (compressed)',
    ipv4Udp(rawDns([3, 0, 0x61, 0x62, 0xc0, 0x0d, 0, 28, 0, 1])),
    'query',
    'none',
    28,
  )
  // Second question compressed against the first: only the first is parsed.
  add(
    'second question uses a backward pointer',
    ipv4Udp(rawDns([...wireName([1, 7, 4]), 0, 1, 0, 1, 0xc0, 0x0e, 0, 28, 0, 1], { qdcount: 2 })),
    'query',
    'none',
    1,
  )
  add(
    'second question is garbage',
    ipv4Udp(rawDns([...wireName([1, 7, 4]), 0, 28, 0, 1, 0xc0, 0xff], { qdcount: 2 })),
    'query',
    'none',
    28,
  )
  return v
}

export interface HexFixture {
  file: string
  packet: Buffer
}

/** test/fixtures/packets/*.hex: one packet per file, hex (whitespace and `#` comments ignored). */
export function hexFixtures(): HexFixture[] {
  const dir = fileURLToPath(new URL('../fixtures/packets', import.meta.url))
  return readdirSync(dir)
    .filter(f => f.endsWith('.hex'))
    .sort()
    .map(file => ({ file, packet: parseHex(readFileSync(join(dir, file), 'utf8')) }))
}

export function parseHex(text: string): Buffer {
  const hex = text.replace(/#.*$/gm, '').replace(/\s+/g, '')
  if (!/^([0-9a-fA-F]{2})*$/.test(hex)) throw new Error('bad hex fixture')
  return Buffer.from(hex, 'hex')
}
