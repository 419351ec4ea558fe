// Readers for the netfilter files under /proc (NFQUEUE queue stats, conntrack per-CPU stats and count).
// Pure parsing plus one readFile each: no caching, no metrics, no policy decisions.
// Both files are per network namespace: they describe the netns of the reading process.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { errorMessage } from '../errors.js'

export const DEFAULT_PROC_ROOT = '/proc'
export const NFQUEUE_FILE = 'net/netfilter/nfnetlink_queue'
export const CONNTRACK_FILE = 'net/stat/nf_conntrack'
/** Present whenever nf_conntrack is loaded, whatever CONFIG_NF_CONNTRACK_PROCFS says. */
export const CONNTRACK_COUNT_FILE = 'sys/net/netfilter/nf_conntrack_count'

/** One bound queue, as the kernel prints it in nfnetlink_queue (instance_seq_show). */
export interface NfqueueStats {
  queue: number
  /** Netlink port id of the bound socket; for a process's first netlink socket this is its PID. */
  portid: number
  /** Packets waiting for a verdict (queue_total). */
  waiting: number
  /** 0 none, 1 meta, 2 packet. */
  copyMode: number
  copyRange: number
  /** Dropped because the queue was full (without FAIL_OPEN) or the message could not be built. */
  dropped: number
  /** Could not be delivered to the socket (receive buffer full); with FAIL_OPEN these are accepted instead. */
  userDropped: number
  /** Last packet id handed out; ids are assigned only after the queue-length check. */
  idSequence: number
}

/** Per-CPU conntrack statistics, summed. */
export interface ConntrackStats {
  /** Column names in the order of the header line of this kernel. */
  columns: string[]
  /** Raw per-CPU rows (one per possible CPU), kept so deltas can be computed per 32-bit counter. */
  cpus: number[][]
  /** Every column summed over CPUs, except `entries` (a global count repeated on each line: taken once). */
  totals: Record<string, number>
  /** Conntrack entries in this namespace; undefined if the kernel prints no entries column. */
  entries: number | undefined
  insertFailed: number | undefined
  drop: number | undefined
  /** Clashes the kernel resolved (5.10+, header column `clashres`); undefined: this kernel has no clash counter. */
  clashResolve: number | undefined
}

/** A /proc file exists but does not look like what the kernel prints. */
export class ProcParseError extends Error {
  readonly file: string
  readonly line: number
  constructor(file: string, line: number, message: string) {
    super(`${file}:${line}: ${message}`)
    this.name = 'ProcParseError'
    this.file = file
    this.line = line
  }
}

function isErrno(e: unknown, code: string): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === code
}

/** The file's text, or undefined when it does not exist (module not loaded). Other errors name the file. */
async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8')
  } catch (e: unknown) {
    if (isErrno(e, 'ENOENT')) return undefined
    const why = errorMessage(e)
    throw new Error(`cannot read ${file}: ${why} (is /proc mounted and readable by this user?)`, { cause: e })
  }
}

const NFQUEUE_FIELDS = [
  'queue',
  'portid',
  'waiting',
  'copyMode',
  'copyRange',
  'dropped',
  'userDropped',
  'idSequence',
] as const

export function parseNfqueueStats(text: string, file = NFQUEUE_FILE): NfqueueStats[] {
  const out: NfqueueStats[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim()
    if (line === '') continue
    const f = line.split(/\s+/)
    // The 9th column is a constant 1 (historically the "use" count); don't insist on it.
    if (f.length < NFQUEUE_FIELDS.length) {
      throw new ProcParseError(file, i + 1, `expected ${NFQUEUE_FIELDS.length + 1} columns, got ${f.length}: "${line}"`)
    }
    const row = {} as Record<(typeof NFQUEUE_FIELDS)[number], number>
    NFQUEUE_FIELDS.forEach((name, k) => {
      const s = f[k]!
      if (!/^\d+$/.test(s)) throw new ProcParseError(file, i + 1, `column ${name} is not a decimal number: "${s}"`)
      row[name] = Number(s)
    })
    out.push(row)
  }
  // The kernel lists queues in hash order; sort so callers and tests see a stable order.
  return out.sort((a, b) => a.queue - b.queue)
}

/**
 * Bound NFQUEUE queues of this netns. Only bound queues are listed; a missing file means
 * nfnetlink_queue is not loaded (nothing bound), which is an empty list, not an error.
 */
export async function readNfqueueStats(root: string = DEFAULT_PROC_ROOT, queue?: number): Promise<NfqueueStats[]> {
  const file = join(root, NFQUEUE_FILE)
  const text = await readOptional(file)
  if (text === undefined) return []
  const all = parseNfqueueStats(text, file)
  return queue === undefined ? all : all.filter(q => q.queue === queue)
}

/** Header names differ between kernels; these are the same counter under another name. */
const CLASH_RESOLVE_NAMES = ['clashres', 'clash_resolve']

export function parseConntrackStats(text: string, file = CONNTRACK_FILE): ConntrackStats {
  const lines = text
    .split('\n')
    .map(l => l.trim())
    .filter(l => l !== '')
  const header = lines[0]
  if (header === undefined) throw new ProcParseError(file, 1, 'empty file, expected a header line of column names')
  const columns = header.split(/\s+/)
  if (columns.some(c => !/^[a-z_][a-z0-9_]*$/i.test(c))) {
    throw new ProcParseError(file, 1, `first line is not a header of column names: "${header}"`)
  }
  const cpus: number[][] = []
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i]!.split(/\s+/)
    if (f.length !== columns.length) {
      throw new ProcParseError(file, i + 1, `expected ${columns.length} columns as in the header, got ${f.length}`)
    }
    cpus.push(
      f.map(s => {
        if (!/^[0-9a-f]+$/i.test(s)) throw new ProcParseError(file, i + 1, `not a hex number: "${s}"`)
        return parseInt(s, 16)
      }),
    )
  }
  const totals: Record<string, number> = {}
  columns.forEach((name, k) => {
    // `entries` is the namespace's global count printed on every CPU line: summing would multiply it.
    totals[name] = name === 'entries' ? (cpus[0]?.[k] ?? 0) : cpus.reduce((sum, row) => sum + row[k]!, 0)
  })
  const pick = (names: string[]): number | undefined => {
    const n = names.find(c => c in totals)
    return n === undefined ? undefined : totals[n]
  }
  return {
    columns,
    cpus,
    totals,
    entries: pick(['entries']),
    insertFailed: pick(['insert_failed']),
    drop: pick(['drop']),
    clashResolve: pick(CLASH_RESOLVE_NAMES),
  }
}

/**
 * Conntrack statistics of this netns, or undefined when nf_conntrack is not loaded here
 * (then nothing is tracked, so nothing can clash).
 */
export async function readConntrackStats(root: string = DEFAULT_PROC_ROOT): Promise<ConntrackStats | undefined> {
  const file = join(root, CONNTRACK_FILE)
  const text = await readOptional(file)
  return text === undefined ? undefined : parseConntrackStats(text, file)
}

/**
 * Conntrack entries of this netns from nf_conntrack_count, or undefined when nf_conntrack is not
 * loaded. Unlike /proc/net/stat/nf_conntrack this file does not depend on CONFIG_NF_CONNTRACK_PROCFS,
 * so it is what decides "conntrack loaded".
 */
export async function readConntrackCount(root: string = DEFAULT_PROC_ROOT): Promise<number | undefined> {
  const file = join(root, CONNTRACK_COUNT_FILE)
  const text = await readOptional(file)
  if (text === undefined) return undefined
  const s = text.trim()
  if (!/^\d+$/.test(s)) throw new ProcParseError(file, 1, `expected a decimal count, got "${s}"`)
  return Number(s)
}

/**
 * Increase of one conntrack counter between two reads, or undefined if the column is absent.
 * The per-CPU counters are 32-bit and wrap, so the difference is taken per CPU modulo 2^32;
 * if the CPU list changed (hotplug) fall back to the totals, floored at 0.
 */
export function conntrackDelta(before: ConntrackStats, after: ConntrackStats, column: string): number | undefined {
  const kb = before.columns.indexOf(column)
  const ka = after.columns.indexOf(column)
  if (kb < 0 || ka < 0) return undefined
  if (before.cpus.length !== after.cpus.length) return Math.max(0, after.totals[column]! - before.totals[column]!)
  let sum = 0
  for (let c = 0; c < after.cpus.length; c++) {
    sum += (after.cpus[c]![ka]! - before.cpus[c]![kb]! + 2 ** 32) % 2 ** 32
  }
  return sum
}

/** conntrackDelta for the clash counter under whichever name this kernel uses. */
export function clashResolveDelta(before: ConntrackStats, after: ConntrackStats): number | undefined {
  const name = CLASH_RESOLVE_NAMES.find(n => after.columns.includes(n))
  return name === undefined ? undefined : conntrackDelta(before, after, name)
}
