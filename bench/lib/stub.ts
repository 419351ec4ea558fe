// Runner and parsers for bench/clients/stub_load (one socket per A+AAAA lookup, like glibc and musl):
// argv building, its JSON summary and per-lookup dump, and a bounded run that reports the start and
// end of its measured part so the caller can sample CPU exactly over it. Parsers are pure.

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Netns } from '../../harness/netns.js'
import { exitWithin } from './child-exit.js'

export interface StubOptions {
  server: string
  /** Lookups per second (each A + AAAA, or AAAA only). */
  rate: number
  /** Measured seconds of sending. */
  seconds: number
  /** Unmeasured seconds of sending first (steady state: held depth, pair table). */
  warmupS?: number
  timeoutMs?: number
  types?: 'pair' | 'aaaa' | 'a'
  /** AAAA this long after its A (0: one sendmmsg). */
  gapUs?: number
  /** Long-lived sockets round-robin (0: one per lookup). */
  pool?: number
  names?: number
  maxOpen?: number
  /**
   * Client processes sharing the rate (default 1). On a busy machine one process is CPU-starved: each
   * send carries the router's path (veth, netfilter, NFQUEUE) in the sender's context.
   */
  procs?: number
}

export function stubArgv(binary: string, o: StubOptions, dump?: string): string[] {
  const a = [binary, '--server', o.server, '--rate', String(o.rate), '--seconds', String(o.seconds)]
  if (o.warmupS) a.push('--warmup', String(o.warmupS))
  if (o.timeoutMs !== undefined) a.push('--timeout-ms', String(o.timeoutMs))
  if (o.types) a.push('--types', o.types)
  if (o.gapUs) a.push('--gap-us', String(o.gapUs))
  if (o.pool) a.push('--pool', String(o.pool))
  if (o.names) a.push('--names', String(o.names))
  if (o.maxOpen) a.push('--max-open', String(o.maxOpen))
  if (dump) a.push('--dump', dump)
  return a
}

/** Hard bound on one run: warm-up, measured part, the last timeout (plus the gap), start-up and exit. */
export function stubBoundMs(o: StubOptions): number {
  return ((o.warmupS ?? 0) + o.seconds) * 1000 + (o.timeoutMs ?? 2000) + (o.gapUs ?? 0) / 1000 + 15_000
}

export interface StubSummary {
  lookups: number
  measured: number
  answers: number
  lostA: number
  lostAAAA: number
  sendErrors: number
  socketErrors: number
  /** Sends postponed because --max-open lookups were outstanding. */
  throttled: number
  stray: number
  /** Latest a send left behind its schedule (µs): the client could not keep the rate when large. */
  lateMaxUs: number
  elapsedS: number
}

/** The client's stdout JSON line. Throws when it is not there. */
export function parseStubSummary(text: string): StubSummary {
  const line = text
    .split('\n')
    .map(l => l.trim())
    .filter(l => l.startsWith('{'))
    .pop()
  if (!line) throw new Error(`stub_load printed no summary: ${JSON.stringify(text.slice(-300))}`)
  const o = JSON.parse(line) as Record<string, number>
  const n = (k: string): number => {
    const v = o[k]
    if (typeof v !== 'number') throw new Error(`stub_load summary has no ${k}: ${line}`)
    return v
  }
  return {
    lookups: n('lookups'),
    measured: n('measured'),
    answers: n('answers'),
    lostA: n('lost_a'),
    lostAAAA: n('lost_aaaa'),
    sendErrors: n('send_errors'),
    socketErrors: n('socket_errors'),
    throttled: n('throttled'),
    stray: n('stray'),
    lateMaxUs: n('late_max_us'),
    elapsedS: n('elapsed_s'),
  }
}

export interface StubDump {
  /** Answer latencies (µs) of the measured lookups, in send order, answered ones only. */
  a: number[]
  aaaa: number[]
  /**
   * Per lookup with both answers: AAAA latency − A latency (µs). Queueing on the shared path hits
   * both alike, so this separates "released with its A" (~0) from "held to the deadline" (~hold)
   * even when the path itself is slow.
   */
  aaaaMinusA: number[]
  lostA: number
  lostAAAA: number
  lookups: number
}

/** "A_us AAAA_us" per measured lookup; -1 is lost, or not asked (A with --types aaaa, AAAA with --types a). */
export function parseStubDump(text: string, types: 'pair' | 'aaaa' | 'a' = 'pair'): StubDump {
  const d: StubDump = { a: [], aaaa: [], aaaaMinusA: [], lostA: 0, lostAAAA: 0, lookups: 0 }
  for (const line of text.split('\n')) {
    if (!line) continue
    const sp = line.indexOf(' ')
    const a = Number(line.slice(0, sp))
    const q = Number(line.slice(sp + 1))
    if (sp < 0 || !Number.isInteger(a) || !Number.isInteger(q)) throw new Error(`stub_load dump line: ${line}`)
    d.lookups++
    if (types !== 'aaaa') {
      if (a >= 0) d.a.push(a)
      else d.lostA++
    }
    if (types !== 'a') {
      if (q >= 0) d.aaaa.push(q)
      else d.lostAAAA++
    }
    if (types === 'pair' && a >= 0 && q >= 0) d.aaaaMinusA.push(q - a)
  }
  return d
}

export interface StubResult extends StubDump {
  summary: StubSummary
}

export interface StubHooks {
  /** Called (awaited before the run is considered done) when the measured part starts and ends. */
  onStart?(): void | Promise<void>
  onEnd?(): void | Promise<void>
}

export function stubBinary(repoRoot: string): string {
  return join(repoRoot, 'bench', 'clients', 'stub_load')
}

export function stubUnavailable(repoRoot: string): string | undefined {
  return existsSync(stubBinary(repoRoot)) ? undefined : `${stubBinary(repoRoot)} missing: run \`make -C bench/clients\``
}

/** Results of several client processes as one: counts summed, latencies concatenated, lateness the worst. */
export function mergeStubResults(rs: readonly StubResult[]): StubResult {
  const sum = (k: keyof StubSummary): number => rs.reduce((a, r) => a + r.summary[k], 0)
  return {
    a: rs.flatMap(r => r.a),
    aaaa: rs.flatMap(r => r.aaaa),
    aaaaMinusA: rs.flatMap(r => r.aaaaMinusA),
    lostA: rs.reduce((a, r) => a + r.lostA, 0),
    lostAAAA: rs.reduce((a, r) => a + r.lostAAAA, 0),
    lookups: rs.reduce((a, r) => a + r.lookups, 0),
    summary: {
      lookups: sum('lookups'),
      measured: sum('measured'),
      answers: sum('answers'),
      lostA: sum('lostA'),
      lostAAAA: sum('lostAAAA'),
      sendErrors: sum('sendErrors'),
      socketErrors: sum('socketErrors'),
      throttled: sum('throttled'),
      stray: sum('stray'),
      lateMaxUs: Math.max(...rs.map(r => r.summary.lateMaxUs)),
      elapsedS: Math.max(...rs.map(r => r.summary.elapsedS)),
    },
  }
}

/**
 * Runs stub_load in `ns` (bounded), as `o.procs` processes splitting the rate (and the pool); hooks
 * fire on the first one's measure-start/-end lines (all start within milliseconds of each other).
 */
export async function runStub(ns: Netns, repoRoot: string, o: StubOptions, hooks: StubHooks = {}): Promise<StubResult> {
  // No process below one lookup per second (stub_load's minimum rate).
  const n = Math.max(1, Math.min(Math.floor(o.procs ?? 1), Math.floor(o.rate)))
  if (n === 1) return runStubOne(ns, repoRoot, o, hooks)
  const part: StubOptions = {
    ...o,
    procs: 1,
    rate: o.rate / n,
    pool: o.pool ? Math.max(1, Math.round(o.pool / n)) : o.pool,
    maxOpen: o.maxOpen ? Math.max(1, Math.round(o.maxOpen / n)) : o.maxOpen,
  }
  const rs = await Promise.all(
    Array.from({ length: n }, (_, i) => runStubOne(ns, repoRoot, part, i === 0 ? hooks : {})),
  )
  return mergeStubResults(rs)
}

async function runStubOne(ns: Netns, repoRoot: string, o: StubOptions, hooks: StubHooks): Promise<StubResult> {
  const dir = mkdtempSync(join(tmpdir(), 'dnss-bench-stub-'))
  const dump = join(dir, 'dump.txt')
  try {
    const child = ns.spawn(stubArgv(stubBinary(repoRoot), o, dump), { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    const pending: Array<Promise<void>> = []
    child.stdout?.setEncoding('utf8')
    child.stdout?.on('data', (s: string) => {
      if (out.length < 65_536) out += s
    })
    child.stderr?.setEncoding('utf8')
    child.stderr?.on('data', (s: string) => {
      for (const line of s.split('\n')) {
        if (line.includes('"measure-start"') && hooks.onStart) pending.push(Promise.resolve(hooks.onStart()))
        else if (line.includes('"measure-end"') && hooks.onEnd) pending.push(Promise.resolve(hooks.onEnd()))
      }
      if (err.length < 16_384) err += s
    })
    const exit = await exitWithin(child, stubBoundMs(o), 'close', 'stub_load', 'make -C bench/clients')
    await Promise.all(pending)
    if (exit !== 0) throw new Error(`stub_load exited ${exit}: ${err.trim().slice(-300)}`)
    const summary = parseStubSummary(out)
    return { ...parseStubDump(readFileSync(dump, 'utf8'), o.types ?? 'pair'), summary }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * Every stub lookup is a new flow and so a new conntrack entry in the lab router. With the default UDP
 * timeouts (30 s, 120 s once replied) 10,000 lookups/s would fill nf_conntrack_max (262,144) and the
 * kernel would drop new flows: the bench would measure conntrack exhaustion, not the shaper. Only ever
 * applied to the lab's router namespace.
 */
export const STUB_CONNTRACK_SYSCTLS: ReadonlyArray<readonly [string, number]> = [
  ['net.netfilter.nf_conntrack_udp_timeout', 3],
  ['net.netfilter.nf_conntrack_udp_timeout_stream', 3],
]

export async function shortenConntrackTimeouts(router: Netns): Promise<void> {
  for (const [k, v] of STUB_CONNTRACK_SYSCTLS) await router.sysctl(k, v)
}
