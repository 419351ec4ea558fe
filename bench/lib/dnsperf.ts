// dnsperf runner and output parsers: per-query latency lines (`-v`) and the final statistics block.
// The runner spawns dnsperf inside a lab namespace with stdout going to a file (a full-rate `-v` run
// writes tens of MB; piping it through this process would steal CPU from the measured path).

import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Netns } from '../../harness/netns.js'
import { exitWithin } from './child-exit.js'

export type QType = 'A' | 'AAAA'

/** One `-v` line: `> NOERROR host1.example.test A 0.000123` or `> T host1.example.test AAAA` (timed out). */
export type VerboseLine =
  | { kind: 'answer'; rcode: string; name: string; type: string; latencyUs: number }
  | { kind: 'lost'; name: string; type: string }

export function parseVerboseLine(line: string): VerboseLine | null {
  if (!line.startsWith('> ')) return null
  const f = line.slice(2).trim().split(/\s+/)
  if (f.length === 3 && f[0] === 'T') return { kind: 'lost', name: f[1]!, type: f[2]! }
  if (f.length !== 4) return null
  const s = Number(f[3])
  if (!/^\d+(\.\d+)?$/.test(f[3]!) || !Number.isFinite(s)) return null
  // dnsperf prints seconds with 6 decimals: round to whole microseconds to drop float noise.
  return { kind: 'answer', rcode: f[0]!, name: f[1]!, type: f[2]!, latencyUs: Math.round(s * 1e6) }
}

export interface DnsperfSummary {
  sent: number
  completed: number
  lost: number
  /** "Queries per second" as dnsperf reports it (completed / run time). */
  qps: number
  runTimeS: number
  /** Response codes with counts, e.g. { NOERROR: 1000 }. */
  rcodes: Record<string, number>
}

function num(text: string, re: RegExp): number | undefined {
  const m = re.exec(text)
  return m ? Number(m[1]) : undefined
}

/** The statistics block dnsperf prints at the end; throws when the essential lines are missing. */
export function parseSummary(text: string): DnsperfSummary {
  const sent = num(text, /^\s*Queries sent:\s+(\d+)/m)
  const completed = num(text, /^\s*Queries completed:\s+(\d+)/m)
  const lost = num(text, /^\s*Queries lost:\s+(\d+)/m)
  if (sent === undefined || completed === undefined || lost === undefined) {
    throw new Error(`dnsperf output has no statistics block: ${JSON.stringify(text.slice(-300))}`)
  }
  const rcodes: Record<string, number> = {}
  const rc = /^\s*Response codes:[ \t]*(.*)$/m.exec(text)?.[1] ?? ''
  for (const m of rc.matchAll(/([A-Z]+) (\d+) \(/g)) rcodes[m[1]!] = Number(m[2])
  return {
    sent,
    completed,
    lost,
    qps: num(text, /^\s*Queries per second:\s+([\d.]+)/m) ?? NaN,
    runTimeS: num(text, /^\s*Run time \(s\):\s+([\d.]+)/m) ?? NaN,
    rcodes,
  }
}

export interface DnsperfResult extends DnsperfSummary {
  /** Per-type answer latencies in microseconds, in arrival order (only with `-v`). */
  latencyUs: Record<QType, number[]>
  /** Timed-out queries per type (only with `-v`). */
  lostByType: Record<QType, number>
  /** `-v` answers with an rcode other than NOERROR. */
  errors: number
  /** `-v` lines of other query types (not expected with our query files). */
  otherTypes: number
}

/** Whole output (stdout) of one dnsperf run: verbose lines when present, then the summary. */
export function parseDnsperfOutput(text: string): DnsperfResult {
  const latencyUs: Record<QType, number[]> = { A: [], AAAA: [] }
  const lostByType: Record<QType, number> = { A: 0, AAAA: 0 }
  let errors = 0
  let otherTypes = 0
  let start = 0
  while (start < text.length) {
    let end = text.indexOf('\n', start)
    if (end < 0) end = text.length
    if (text.charCodeAt(start) === 62 /* '>' */) {
      const v = parseVerboseLine(text.slice(start, end))
      if (v) {
        if (v.type !== 'A' && v.type !== 'AAAA') otherTypes++
        else if (v.kind === 'lost') lostByType[v.type]++
        else {
          latencyUs[v.type].push(v.latencyUs)
          if (v.rcode !== 'NOERROR') errors++
        }
      }
    }
    start = end + 1
  }
  return { ...parseSummary(text), latencyUs, lostByType, errors, otherTypes }
}

/** Query file: `hostN.example.test A` then `... AAAA` for N = 1..hosts (A and AAAA of one name adjacent). */
export function queryFile(hosts: number): string {
  if (!Number.isInteger(hosts) || hosts < 1) throw new RangeError(`hosts must be a positive integer, got ${hosts}`)
  const l: string[] = []
  for (let i = 1; i <= hosts; i++) l.push(`host${i}.example.test A`, `host${i}.example.test AAAA`)
  return l.join('\n') + '\n'
}

export interface DnsperfOptions {
  server: string
  dataFile: string
  /** -Q: queries per second (undefined: as fast as -q allows). */
  rate?: number
  /** -l: seconds. */
  durationS: number
  /** -c: client sockets (default 10). */
  clients?: number
  /** -q: outstanding queries (default 10000: a 5 ms hold at 100k qps keeps 250 AAAA outstanding). */
  outstanding?: number
  /** -t: per-query timeout in seconds (default 2). */
  timeoutS?: number
  /** -v: per-query lines. */
  verbose?: boolean
  /** -b: socket buffers in KiB (default 4096: a descheduled client must not drop answers itself). */
  bufferKb?: number
}

export function dnsperfArgv(o: DnsperfOptions): string[] {
  const a = [
    'dnsperf',
    '-s',
    o.server,
    '-d',
    o.dataFile,
    '-c',
    String(o.clients ?? 10),
    '-l',
    String(o.durationS),
    '-q',
    String(o.outstanding ?? 10000),
    '-t',
    String(o.timeoutS ?? 2),
    '-b',
    String(o.bufferKb ?? 4096),
  ]
  if (o.rate !== undefined) a.push('-Q', String(Math.round(o.rate)))
  if (o.verbose) a.push('-v')
  return a
}

/** Hard bound on one run: the duration, the final timeout, and slack for start-up and exit. */
export function dnsperfBoundMs(o: DnsperfOptions): number {
  return (o.durationS + (o.timeoutS ?? 2)) * 1000 + 15_000
}

/** Writes a query file into a fresh temp dir; returns its path and a remover. */
export function writeQueryFile(hosts: number): { path: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'dnss-bench-q-'))
  const path = join(dir, 'queries.txt')
  writeFileSync(path, queryFile(hosts))
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) }
}

/** Runs dnsperf in `ns` (bounded), parses its output file. Throws if it fails or prints no statistics. */
export async function runDnsperf(ns: Netns, o: DnsperfOptions): Promise<DnsperfResult> {
  const dir = mkdtempSync(join(tmpdir(), 'dnss-bench-out-'))
  const outPath = join(dir, 'dnsperf.out')
  const fd = openSync(outPath, 'w')
  try {
    const child = ns.spawn(dnsperfArgv(o), { stdio: ['ignore', fd, 'pipe'] })
    let stderr = ''
    child.stderr?.setEncoding('utf8')
    child.stderr?.on('data', (d: string) => {
      if (stderr.length < 16_384) stderr += d
    })
    const exit = await exitWithin(child, dnsperfBoundMs(o), 'exit', 'dnsperf', 'apt-get install dnsperf')
    const text = readFileSync(outPath, 'utf8')
    if (exit !== 0) throw new Error(`dnsperf exited ${exit}: ${stderr.trim() || text.slice(-300)}`)
    return parseDnsperfOutput(text)
  } finally {
    closeSync(fd)
    rmSync(dir, { recursive: true, force: true })
  }
}

/** `dnsperf -h` banner version, e.g. "2.10.0", or undefined. */
export function parseDnsperfVersion(text: string): string | undefined {
  return /^Version\s+(\S+)/m.exec(text)?.[1]
}
