// Hostile input through the router: lab/hostile/hostile_gen replays every malformed shape of the parser
// vectors (plus truncations, non-DNS payloads on port 53, MTU-sized and fragmented datagrams) from the
// client namespace with an AF_PACKET socket, ~200k packets at >10k/s, while the probe runs real A/AAAA
// lookups. The daemon must stay up, count what reached it exactly (checked against the rule counter and
// a one-packet-per-shape calibration pass), lose no real query and not slow A answers down much.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createLab, type Lab } from '../../harness/topology.js'
import { startUnbound } from '../../harness/unbound.js'
import { runProbeIn } from '../../harness/probe-runner.js'
import type { ProbeResult } from '../../harness/probe-lib.js'
import { percentile, sortedCopy } from '../../harness/stats.js'
import { parsePacket } from '../../src/dataplane/nfqueue.js'
import { dnsQuery, ipv4Udp, ipv6Udp, vectors } from '../helpers/packets.js'
import { fetchIn } from '../../harness/daemon.js'
import { queueRuleCounter } from '../helpers/queue-rule.js'
import { skipFileUnless } from '../../harness/skip.js'
import { routerDaemon } from '../../harness/dns-lab.js'

skipFileUnless({ root: 'network namespaces, iptables, NFQUEUE, AF_PACKET' })

const root = fileURLToPath(new URL('../..', import.meta.url))
const FLOOD_PACKETS = Number(process.env.DNS_SHAPER_HOSTILE_PACKETS ?? 200_000)
const FLOOD_RATE = Number(process.env.DNS_SHAPER_HOSTILE_RATE ?? 12_000)
const MAX_SECONDS = 20
const COPY_RANGE = 512
const METRICS = 9363

// ---------------------------------------------------------------------------------------------------
// Shapes
const CLIENT4 = [198, 51, 100, 2]
const SERVER4 = [203, 0, 113, 53]
const CLIENT6 = Buffer.from('20010db8000100000000000000000002', 'hex')
const SERVER6 = Buffer.from('20010db8000200000000000000000053', 'hex')

function csum(buf: Buffer): number {
  let s = 0
  for (let i = 0; i + 1 < buf.length; i += 2) s += buf.readUInt16BE(i)
  if (buf.length & 1) s += buf[buf.length - 1]! << 8
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16)
  return ~s & 0xffff
}

/** Re-addresses a built packet client → server and refreshes the IPv4 header checksum (where there is a header). */
function readdress(pkt: Buffer): Buffer {
  const b = Buffer.from(pkt)
  const ver = b.length ? b[0]! >> 4 : 0
  if (ver === 4 && b.length >= 20) {
    Buffer.from(CLIENT4).copy(b, 12)
    Buffer.from(SERVER4).copy(b, 16)
    const ihl = (b[0]! & 0x0f) * 4
    if (ihl >= 20 && b.length >= ihl) {
      b.writeUInt16BE(0, 10)
      b.writeUInt16BE(csum(b.subarray(0, ihl)), 10)
    }
  } else if (ver === 6 && b.length >= 40) {
    CLIENT6.copy(b, 8)
    SERVER6.copy(b, 24)
  }
  return b
}

function setV4TotalLength(pkt: Buffer): Buffer {
  pkt.writeUInt16BE(pkt.length, 2)
  pkt.writeUInt16BE(0, 10)
  pkt.writeUInt16BE(csum(pkt.subarray(0, (pkt[0]! & 0x0f) * 4)), 10)
  return pkt
}

/**
 * Splits a UDP DNS query padded by payloadLen bytes into fragments of fragData bytes of L4 each;
 * `frame` wraps one piece behind a copy of the unfragmented IP header (hdrLen bytes) for its family.
 */
function fragments(
  wrap: (udp: Buffer) => Buffer,
  hdrLen: number,
  payloadLen: number,
  fragData: number,
  frame: (h: Buffer, part: Buffer, off: number, more: boolean) => Buffer,
): Buffer[] {
  const whole = wrap(Buffer.concat([dnsQuery({ qtype: 'AAAA' }), Buffer.alloc(payloadLen, 0x5a)]))
  const l4 = whole.subarray(hdrLen)
  const out: Buffer[] = []
  for (let off = 0; off < l4.length; off += fragData)
    out.push(
      frame(Buffer.from(whole.subarray(0, hdrLen)), l4.subarray(off, off + fragData), off, off + fragData < l4.length),
    )
  return out
}

function v4Fragments(payloadLen: number, fragData: number): Buffer[] {
  return fragments(ipv4Udp, 20, payloadLen, fragData, (h, part, off, more) => {
    h.writeUInt16BE(0x7a11, 4)
    h.writeUInt16BE((more ? 0x2000 : 0) | (off / 8), 6)
    return setV4TotalLength(Buffer.concat([h, part]))
  })
}

function v6Fragments(payloadLen: number, fragData: number): Buffer[] {
  return fragments(ipv6Udp, 40, payloadLen, fragData, (h, part, off, more) => {
    h[6] = 44
    const f = Buffer.alloc(8)
    f[0] = 17
    f.writeUInt16BE((off << 0) | (more ? 1 : 0), 2) // offset is in 8-byte units << 3 == bytes
    f.writeUInt32BE(0x7a11, 4)
    h.writeUInt16BE(8 + part.length, 4)
    return Buffer.concat([h, f, part])
  })
}

interface Shape {
  tag: string
  packet: Buffer
}

/** Every hostile shape, each tagged with what the parser says of it offline (`kind:reason`). */
function shapes(): Shape[] {
  const raw: Buffer[] = []
  // 1. The parser's vector table, valid queries included (they carry odd headers).
  for (const v of vectors()) raw.push(v.packet)
  // 2. A v4 and a v6 AAAA query cut at every length past the IP header, with the IP length fields
  //    telling the truth so the kernel forwards them: one shape per parser layer boundary and more.
  const q = dnsQuery({ qtype: 'AAAA', edns: true })
  const v4 = ipv4Udp(q)
  for (let k = 20; k < v4.length; k++) raw.push(setV4TotalLength(Buffer.from(v4.subarray(0, k))))
  const v6 = ipv6Udp(q)
  for (let k = 40; k < v6.length; k++) {
    const b = Buffer.from(v6.subarray(0, k))
    b.writeUInt16BE(k - 40, 4)
    raw.push(b)
  }
  // 3. Not DNS at all, on port 53.
  const junk: Buffer[] = [
    Buffer.alloc(0),
    Buffer.from([0]),
    Buffer.alloc(11, 0xff),
    Buffer.from('GET / HTTP/1.1\r\nHost: dns.example.test\r\n\r\n'),
    Buffer.concat([
      Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]),
      Buffer.alloc(500, 0x41),
    ]),
    Buffer.from('OPTIONS sip:dns.example.test SIP/2.0\r\n\r\n'),
    Buffer.concat([Buffer.from([0x1b]), Buffer.alloc(47)]), // NTP client request
    Buffer.alloc(512, 0),
    Buffer.alloc(512, 0xff),
    Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 2654435761) >>> 24)),
  ]
  for (const j of junk) raw.push(ipv4Udp(j), ipv6Udp(j))
  // 4. MTU-sized datagrams (1500 bytes on the wire): beyond the copy range, still one frame.
  raw.push(
    ipv4Udp(
      Buffer.concat([
        dnsQuery({ qtype: 'AAAA' }),
        Buffer.alloc(1500 - 20 - 8 - dnsQuery({ qtype: 'AAAA' }).length, 0x33),
      ]),
    ),
  )
  raw.push(
    ipv6Udp(
      Buffer.concat([
        dnsQuery({ qtype: 'AAAA' }),
        Buffer.alloc(1500 - 40 - 8 - dnsQuery({ qtype: 'AAAA' }).length, 0x33),
      ]),
    ),
  )
  // 5. Fragmented 3000-byte datagrams (first, middle, last fragments).
  raw.push(...v4Fragments(3000, 1480), ...v6Fragments(3000, 1448))
  return raw.map(p => {
    const packet = readdress(p)
    const pp = parsePacket(packet.subarray(0, COPY_RANGE))
    return { tag: `${pp.kind}:${pp.reason}`, packet }
  })
}

// ---------------------------------------------------------------------------------------------------
// Lab plumbing
let lab: Lab
let gen: string
let shapeFile: string
let shapeList: Shape[]
const work = mkdtempSync(join(tmpdir(), 'dnss-hostile-'))

t.before(async () => {
  gen = join(work, 'hostile_gen')
  const cc = spawnSync('gcc', ['-O2', '-Wall', '-Wextra', '-o', gen, join(root, 'lab/hostile/hostile_gen.c')], {
    encoding: 'utf8',
  })
  if (cc.status !== 0) throw new Error(`hostile_gen does not build: ${cc.stderr}`)
  shapeList = shapes()
  shapeFile = join(work, 'shapes.txt')
  writeFileSync(shapeFile, shapeList.map(s => `${s.tag} ${s.packet.toString('hex')}`).join('\n') + '\n')
  lab = await createLab()
  await startUnbound({ ns: lab.server.ns, addresses: [lab.server.ipv4, lab.server.ipv6] })
})
t.teardown(async () => {
  await lab?.destroy()
  rmSync(work, { recursive: true, force: true })
})

interface GenResult {
  sent: number
  errors: number
  durationMs: number
  pps: number
  timedOut: boolean
  lastError: string
  byTag: Record<string, { sent: number; errors: number }>
}

async function runGen(count: number, rate: number): Promise<GenResult> {
  const link = await lab.router.ns.execOk(['ip', '-j', 'link', 'show', 'dev', lab.router.clientIface])
  const mac = (JSON.parse(link.stdout) as { address: string }[])[0]!.address
  const r = await lab.client.ns.exec(
    [
      gen,
      '--iface',
      lab.client.iface,
      '--dst-mac',
      mac,
      '--file',
      shapeFile,
      '--count',
      String(count),
      '--rate',
      String(rate),
      '--max-seconds',
      String(MAX_SECONDS),
    ],
    { timeoutMs: (MAX_SECONDS + 10) * 1000 },
  )
  if (r.code !== 0) throw new Error(`hostile_gen failed (${r.code}): ${r.stderr}`)
  return JSON.parse(r.stdout) as GenResult
}

type Samples = Map<string, number>
/** Every sample of a Prometheus text exposition, keyed by `name{labels}`. */
function parseMetrics(text: string): Samples {
  const m = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue
    const i = line.lastIndexOf(' ')
    m.set(line.slice(0, i), Number(line.slice(i + 1)))
  }
  return m
}
const sumOf = (s: Samples, prefix: string): number =>
  [...s].filter(([k]) => k.startsWith(prefix)).reduce((a, [, v]) => a + v, 0)
function delta(a: Samples, b: Samples, prefix: string): number {
  return sumOf(b, prefix) - sumOf(a, prefix)
}

async function scrape(): Promise<Samples> {
  const r = await fetchIn(lab.router.ns, `http://${lab.router.clientIpv4}:${METRICS}/metrics`)
  if (r.code !== 200) throw new Error(`metrics scrape: HTTP ${r.code}`)
  return parseMetrics(r.body)
}

const ruleCounter = (): Promise<number> => queueRuleCounter(lab.router.ns)

/** Quiet point: nothing in flight, counters settled. */
// What one stretch of the run did, from the rule counter and the daemon's metrics before and after it.
function counted(a: { metrics: Samples; rules: number }, b: { metrics: Samples; rules: number }) {
  return {
    queued: b.rules - a.rules,
    seen: delta(a.metrics, b.metrics, 'dns_shaper_packets_total{'),
    malformed: delta(a.metrics, b.metrics, 'dns_shaper_packets_total{action="malformed"'),
    parseFail: delta(a.metrics, b.metrics, 'dns_shaper_parse_failures_total{'),
    bypassed: delta(a.metrics, b.metrics, 'dns_shaper_packets_total{action="bypassed"'),
  }
}

async function settle(): Promise<{ metrics: Samples; rules: number }> {
  let prev = -1
  for (let i = 0; i < 40; i++) {
    await new Promise(r => setTimeout(r, 100))
    const rules = await ruleCounter()
    const metrics = await scrape()
    const seen = sumOf(metrics, 'dns_shaper_packets_total{')
    if (
      rules === prev &&
      seen === rules - base.rules + base.seen &&
      (metrics.get('dns_shaper_held_packets') ?? 0) === 0
    )
      return { metrics, rules }
    prev = rules
  }
  return { metrics: await scrape(), rules: await ruleCounter() }
}
const base = { rules: 0, seen: 0 }

const probeRun = (type: 'A' | 'AAAA', count: number): Promise<ProbeResult> =>
  runProbeIn(lab.client.ns, {
    server: lab.server.ipv4,
    types: [type],
    count,
    intervalMs: 3,
    timeoutMs: 2000,
    names: ['host1.example.test', 'host2.example.test'],
  })

interface Real {
  sent: number
  lost: number
  aRtt: number[]
  aaaaRtt: number[]
  runs: number
}
/** Runs short real-query probes back to back (A, then AAAA) until `until` settles or maxRuns is reached. */
async function realQueries(until: Promise<unknown> | undefined, maxRuns: number): Promise<Real> {
  const r: Real = { sent: 0, lost: 0, aRtt: [], aaaaRtt: [], runs: 0 }
  let done = until === undefined
  void until?.finally(() => {
    done = true
  })
  for (let i = 0; i < maxRuns; i++) {
    for (const type of ['A', 'AAAA'] as const) {
      const p = await probeRun(type, 100)
      r.sent += p.sent
      r.lost += p.lost
      ;(type === 'A' ? r.aRtt : r.aaaaRtt).push(...p.samples.map(s => s.rttUs))
    }
    r.runs++
    if (done && until !== undefined) break
  }
  return r
}

t.test('hostile flood through the router: daemon survives, counts add up, real queries unharmed', async t => {
  const d = routerDaemon(lab, ['--delay', '5'], {}, METRICS)
  t.teardown(() => d.stop())
  await d.ready()
  const tags = new Map<string, number>()
  for (const s of shapeList) tags.set(s.tag, (tags.get(s.tag) ?? 0) + 1)
  t.comment(`${shapeList.length} shapes: ${[...tags].map(([k, v]) => `${k} ${v}`).join(', ')}`)
  const offlineMalformed = shapeList.filter(s => s.tag.startsWith('malformed:')).length
  t.ok(offlineMalformed >= 60, `${offlineMalformed} shapes the parser calls malformed`)

  base.rules = await ruleCounter()
  base.seen = sumOf(await scrape(), 'dns_shaper_packets_total{')

  // Baseline: real queries with the daemon, no hostile traffic.
  const quiet = await realQueries(undefined, 3)
  t.equal(quiet.lost, 0, 'baseline: nothing lost')

  // Calibration: every shape once, slowly. What reaches the queue is up to the kernel (it drops bad
  // IP headers and non-first fragments before the rule); the rule counter and the daemon must agree.
  const c0 = await settle()
  const cal = await runGen(shapeList.length, 2000)
  t.equal(cal.errors, 0, `calibration: every shape sent (${cal.lastError})`)
  const c1 = await settle()
  const { queued: calQueued, seen: calSeen, malformed: calMalformed, parseFail: calParseFail } = counted(c0, c1)
  t.equal(
    calSeen,
    calQueued,
    `calibration: the daemon saw every packet the rules queued (${calQueued} of ${cal.sent} sent)`,
  )
  t.ok(
    calMalformed > 0 && calMalformed <= offlineMalformed,
    `calibration: ${calMalformed} counted malformed (offline: ${offlineMalformed}; the kernel drops the rest first)`,
  )
  const reasons = [...c1.metrics]
    .filter(([k]) => k.startsWith('dns_shaper_parse_failures_total{'))
    .map(([k, v]) => [k.replace(/.*reason="([^"]+)".*/, '$1'), v - (c0.metrics.get(k) ?? 0)] as const)
    .filter(([, v]) => v > 0)
  t.comment(
    `calibration: sent ${cal.sent}, queued ${calQueued}, malformed ${calMalformed}, parse failures ${calParseFail} (${reasons.map(([k, v]) => `${k} ${v}`).join(', ')})`,
  )

  // The flood: whole passes over the shapes, so every count is a multiple of the calibration.
  const passes = Math.max(1, Math.floor(FLOOD_PACKETS / shapeList.length))
  const f0 = await settle()
  const flood = runGen(passes * shapeList.length, FLOOD_RATE)
  const loaded = await realQueries(flood, 40)
  const g = await flood
  const f1 = await settle()
  t.equal(g.errors, 0, `flood: no send errors (${g.lastError})`)
  t.notOk(g.timedOut, `flood: all ${g.sent} packets sent within ${MAX_SECONDS} s (${g.durationMs} ms, ${g.pps} pps)`)

  const health = await fetchIn(lab.router.ns, `http://${lab.router.clientIpv4}:${METRICS}/healthz`)
  t.equal(health.code, 200, 'daemon healthy after the flood')
  t.equal(d.child.exitCode, null, 'daemon still running')

  const { queued, seen, malformed, parseFail, bypassed } = counted(f0, f1)
  t.equal(
    seen,
    queued,
    `every queued packet accounted for: rules queued ${queued}, daemon saw ${seen} (bypassed ${bypassed})`,
  )
  t.equal(
    queued,
    passes * calQueued + loaded.sent,
    `queued = ${passes} passes x ${calQueued} + ${loaded.sent} real queries`,
  )
  t.equal(malformed, passes * calMalformed, `malformed = ${passes} x ${calMalformed}`)
  t.equal(parseFail, passes * calParseFail, `parse failures = ${passes} x ${calParseFail}`)
  t.equal(delta(f0.metrics, f1.metrics, 'dns_shaper_verdict_errors_total'), 0, 'no verdict errors')
  t.equal(delta(f0.metrics, f1.metrics, 'dns_shaper_send_errors_total'), 0, 'no send errors')
  t.equal(delta(f0.metrics, f1.metrics, 'dns_shaper_recv_errors_total'), 0, 'no receive errors')

  t.equal(loaded.lost, 0, `real queries during the flood: ${loaded.sent} sent, none lost`)
  const p50 = (v: number[]): number => percentile(sortedCopy(v), 50)
  const qa = p50(quiet.aRtt)
  const la = p50(loaded.aRtt)
  // Two shared cores run the generator, the daemon, unbound and the probe: allow 2 ms or 3x.
  t.ok(la <= Math.max(qa + 2000, qa * 3), `A p50 under flood ${la} us vs ${qa} us without`)
  t.comment(
    `flood: ${g.sent} packets in ${g.durationMs} ms (${g.pps} pps), queued ${queued}, malformed ${malformed}, parse failures ${parseFail}, bypassed ${bypassed}; ` +
      `real: ${loaded.sent} queries, ${loaded.lost} lost, A p50 ${la} us (quiet ${qa}), AAAA p50 ${p50(loaded.aaaaRtt)} us (quiet ${p50(quiet.aaaaRtt)})`,
  )
  const exit = await d.stop()
  t.equal(exit.code, 0, 'SIGTERM after the flood exits 0')
})
