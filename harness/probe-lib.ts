// Pure parts of the DNS probe: options and their bounds, query building, reply matching, summaries, and the
// probe loop over an injected socket and clock. No network and no process exit here (probe.ts does those).

import { randomInt } from 'node:crypto'
import dnsPacket from 'dns-packet'
import type { RecordType } from 'dns-packet'
import { summarize as summarizeDist } from './stats.js'

export const PROBE_TYPES = ['A', 'AAAA', 'CNAME', 'MX', 'NS', 'PTR', 'SOA', 'SRV', 'TXT', 'CAA'] as const
export type ProbeType = (typeof PROBE_TYPES)[number]

const RCODES = [
  'NOERROR',
  'FORMERR',
  'SERVFAIL',
  'NXDOMAIN',
  'NOTIMP',
  'REFUSED',
  'YXDOMAIN',
  'YXRRSET',
  'NXRRSET',
  'NOTAUTH',
  'NOTZONE',
]

export const PROBE_LIMITS = {
  maxCount: 1_000_000,
  maxTimeoutMs: 60_000,
  maxIntervalMs: 60_000,
  maxDurationMs: 3_600_000,
  maxNames: 10_000,
} as const

export interface ProbeOptions {
  server: string
  port: number
  /** Query types of one lookup; --pair defaults to A,AAAA. */
  types: ProbeType[]
  /** Lookups cycle through these names. */
  names: string[]
  /** Number of lookups. */
  count: number
  /** Pause between lookups. */
  intervalMs: number
  /** Per-lookup wait for answers. */
  timeoutMs: number
  /** Send all types of a lookup back to back from one socket (like glibc), time each answer. */
  pair: boolean
  /** A new socket (new source port) per lookup. */
  freshSocket: boolean
  /** Include per-query samples in the output. */
  samples: boolean
  /** Hard bound on the whole run. */
  maxDurationMs: number
}

export const PROBE_DEFAULTS: ProbeOptions = {
  server: '',
  port: 53,
  types: ['A'],
  names: ['host1.example.test'],
  count: 1,
  intervalMs: 0,
  timeoutMs: 1000,
  pair: false,
  freshSocket: false,
  samples: true,
  maxDurationMs: 120_000,
}

export function buildQuery(id: number, name: string, type: ProbeType): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: type as RecordType, name, class: 'IN' }],
  })
}

export interface Reply {
  id: number
  rcode: string
  truncated: boolean
  qname: string
  qtype: string
  answers: number
}

/** Decodes a reply; null for anything that is not a well-formed response with one question. */
export function parseReply(buf: Buffer): Reply | null {
  if (buf.length < 12 || (buf[2]! & 0x80) === 0) return null
  try {
    const p = dnsPacket.decode(buf)
    const q = p.questions?.[0]
    if (!q || p.id === undefined) return null
    return {
      id: p.id,
      rcode: RCODES[buf[3]! & 0x0f] ?? String(buf[3]! & 0x0f),
      truncated: (buf[2]! & 0x02) !== 0,
      qname: q.name,
      qtype: q.type,
      answers: buf.readUInt16BE(6),
    }
  } catch {
    return null
  }
}

function normName(n: string): string {
  return n.toLowerCase().replace(/\.$/, '')
}

/** True when the reply answers this question (id matched by the caller's map). */
export function replyMatches(reply: Reply, name: string, type: string): boolean {
  return normName(reply.qname) === normName(name) && reply.qtype.toUpperCase() === type.toUpperCase()
}

export interface Sample {
  seq: number
  name: string
  type: ProbeType
  rttUs: number
  rcode: string
  answers: number
}

export interface TypeSummary {
  sent: number
  received: number
  lost: number
  minUs: number | null
  p50Us: number | null
  p90Us: number | null
  p99Us: number | null
  maxUs: number | null
  meanUs: number | null
}

function orNull(n: number): number | null {
  return Number.isFinite(n) ? n : null
}

/** Per-type latency summary (nearest-rank percentiles from harness/stats). */
export function summarize(samples: readonly Sample[], sent: number, lost: number): TypeSummary {
  const d = summarizeDist(samples.map(s => s.rttUs))
  return {
    sent,
    received: samples.length,
    lost,
    minUs: orNull(d.min),
    p50Us: orNull(d.p50),
    p90Us: orNull(d.p90),
    p99Us: orNull(d.p99),
    maxUs: orNull(d.max),
    meanUs: orNull(Math.round(d.mean)),
  }
}

export interface ProbeResult {
  server: string
  port: number
  family: 'udp4' | 'udp6'
  pair: boolean
  freshSocket: boolean
  lookups: number
  sent: number
  received: number
  lost: number
  /** Answers to queries that had already timed out. */
  late: number
  /** Replies with a known id but another question, or undecodable. */
  mismatched: number
  truncated: number
  socketErrors: number
  /** The run hit maxDurationMs before count lookups. */
  stoppedByTime: boolean
  rcodes: Record<string, number>
  byType: Record<string, TypeSummary>
  durationMs: number
  samples: Sample[]
}

export interface ProbeSocket {
  send(msg: Buffer): Promise<void>
  close(): void
}

/** Opens a socket to the server; replies and asynchronous errors go to the callbacks. */
export type OpenSocket = (onMessage: (msg: Buffer) => void, onError: (e: Error) => void) => Promise<ProbeSocket>

export interface ProbeDeps {
  openSocket: OpenSocket
  /** Monotonic nanoseconds (process.hrtime.bigint). */
  now: () => bigint
  /** 16-bit query id source (default crypto.randomInt). */
  randomId?: () => number
}

export function familyOf(server: string): 'udp4' | 'udp6' {
  return server.includes(':') ? 'udp6' : 'udp4'
}

interface Pending {
  seq: number
  name: string
  type: ProbeType
  sentNs: bigint
  done: () => void
}

const LATE_MEMORY = 4096

/** Runs the probe: `count` lookups, each bounded by timeoutMs, the whole run by maxDurationMs. */
export async function runProbe(o: ProbeOptions, deps: ProbeDeps): Promise<ProbeResult> {
  const randomId = deps.randomId ?? (() => randomInt(0, 65536))
  const startNs = deps.now()
  const deadlineNs = startNs + BigInt(o.maxDurationMs) * 1_000_000n
  const pending = new Map<number, Pending>()
  const timedOut = new Set<number>()
  const samples: Sample[] = []
  const sentBy = new Map<string, number>()
  const lostBy = new Map<string, number>()
  const rcodes: Record<string, number> = {}
  const r = { sent: 0, received: 0, lost: 0, late: 0, mismatched: 0, truncated: 0, socketErrors: 0 }
  let lookups = 0
  let stoppedByTime = false

  const onMessage = (msg: Buffer): void => {
    const nowNs = deps.now()
    const reply = parseReply(msg)
    if (!reply) {
      r.mismatched++
      return
    }
    const p = pending.get(reply.id)
    if (!p) {
      if (timedOut.has(reply.id)) r.late++
      else r.mismatched++
      return
    }
    if (!replyMatches(reply, p.name, p.type)) {
      r.mismatched++
      return
    }
    pending.delete(reply.id)
    r.received++
    if (reply.truncated) r.truncated++
    rcodes[reply.rcode] = (rcodes[reply.rcode] ?? 0) + 1
    samples.push({
      seq: p.seq,
      name: p.name,
      type: p.type,
      rttUs: Number((nowNs - p.sentNs) / 1000n),
      rcode: reply.rcode,
      answers: reply.answers,
    })
    p.done()
  }
  const onError = (): void => {
    r.socketErrors++
  }

  const newId = (): number => {
    for (let i = 0; i < 64; i++) {
      const id = randomId() & 0xffff
      if (!pending.has(id) && !timedOut.has(id)) return id
    }
    return randomId() & 0xffff
  }

  // Starts one query without awaiting the send, so a pair leaves back to back. Returns the
  // promises wrapped: a bare promise would be flattened by an await.
  const send = (
    sock: ProbeSocket,
    seq: number,
    name: string,
    type: ProbeType,
  ): { sent: Promise<void>; answered: Promise<void> } => {
    const id = newId()
    let done!: () => void
    const answered = new Promise<void>(res => (done = res))
    const msg = buildQuery(id, name, type)
    pending.set(id, { seq, name, type, sentNs: deps.now(), done })
    sentBy.set(type, (sentBy.get(type) ?? 0) + 1)
    r.sent++
    const sent = sock.send(msg).catch(() => {
      r.socketErrors++
    })
    return { sent, answered }
  }

  const expire = (): void => {
    for (const [id, p] of pending) {
      r.lost++
      lostBy.set(p.type, (lostBy.get(p.type) ?? 0) + 1)
      timedOut.add(id)
      if (timedOut.size > LATE_MEMORY) timedOut.delete(timedOut.values().next().value as number)
    }
    pending.clear()
  }

  const waitAll = async (answers: Promise<void>[]): Promise<void> => {
    let timer: NodeJS.Timeout | undefined
    await Promise.race([Promise.all(answers), new Promise<void>(res => (timer = setTimeout(res, o.timeoutMs)))])
    clearTimeout(timer)
    expire()
  }

  let shared: ProbeSocket | undefined
  try {
    for (let seq = 0; seq < o.count; seq++) {
      if (deps.now() >= deadlineNs) {
        stoppedByTime = true
        break
      }
      const name = o.names[seq % o.names.length]!
      const sock = o.freshSocket
        ? await deps.openSocket(onMessage, onError)
        : (shared ??= await deps.openSocket(onMessage, onError))
      try {
        if (o.pair) {
          // Back to back from one socket, like glibc's sendmmsg of A and AAAA; each answer timed on its own.
          const qs = o.types.map(t => send(sock, seq, name, t))
          await Promise.all(qs.map(q => q.sent))
          await waitAll(qs.map(q => q.answered))
        } else {
          for (const t of o.types) {
            const q = send(sock, seq, name, t)
            await q.sent
            await waitAll([q.answered])
          }
        }
      } finally {
        if (o.freshSocket) sock.close()
      }
      lookups++
      if (o.intervalMs > 0 && seq < o.count - 1) await new Promise(res => setTimeout(res, o.intervalMs))
    }
  } finally {
    shared?.close()
  }

  const byType: Record<string, TypeSummary> = {}
  for (const t of o.types) {
    byType[t] = summarize(
      samples.filter(s => s.type === t),
      sentBy.get(t) ?? 0,
      lostBy.get(t) ?? 0,
    )
  }
  return {
    server: o.server,
    port: o.port,
    family: familyOf(o.server),
    pair: o.pair,
    freshSocket: o.freshSocket,
    lookups,
    ...r,
    stoppedByTime,
    rcodes,
    byType,
    durationMs: Number((deps.now() - startNs) / 1_000_000n),
    samples: o.samples ? samples : [],
  }
}
