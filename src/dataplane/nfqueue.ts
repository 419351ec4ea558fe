// Typed wrapper of the native `nfqueue` addon: the only module that loads the .node file.
// It adds types and a helpful load error; no logic of the packet path lives here.
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import fs from 'node:fs'
import type { NativeConstants, NativeLimits } from './constants.js'

export type PacketKind = 'query' | 'not_query' | 'not_dns' | 'malformed'

export interface ParsedPacket {
  kind: PacketKind
  /** Why the packet could not be classified ('none' when it could). */
  reason: string
  ipVersion: number
  qtype: number
  qclass: number
  dnsId: number
  sport: number
  dport: number
  labels: number
  compressed: boolean
  /** Pair-mode key: addresses, ports and lower-cased name. */
  flowHash: bigint
}

/** The compiled policy the data plane reads (built by src/dataplane/policy.ts). */
export interface NativePolicy {
  /** QTYPE -> hold class; 0 = accept at once. 65536 entries. */
  table: Uint8Array
  /** Hold class -> milliseconds (index 0 unused). */
  holdMs: number[]
  dryRun: boolean
  pair: boolean
  pairWindowMs: number
  maxHeld: number
}

export interface QueueOptions {
  queue: number
  copyRange?: number
  maxLen?: number
  rcvbuf?: number
  /** Capacity of the hold FIFOs; policies may lower the cap, never raise it above this. */
  maxHeld?: number
  /** Pair-table slots (a power of two, limits.minPairSlots..limits.maxPairSlots; default 4096). */
  pairSlots?: number
  /** Called on the JS thread if the data-plane thread dies (it has then accepted what it held). */
  onFatal?: (err: NodeJS.ErrnoException) => void
}

export interface HistogramSnapshot {
  /** Non-cumulative counts per bucket; the last one is +Inf. */
  buckets: number[]
  sum: number
  count: number
}

export interface QueueStats {
  running: boolean
  heldNow: number
  heldMax: number
  packets: Record<string, Record<string, number>>
  parseFailures: Record<string, number>
  counters: Record<string, number>
  hold: HistogramSnapshot
  latency: HistogramSnapshot
}

export interface NativeQueue {
  /** Binds the queue and starts the data-plane thread; throws with code/errno/syscall. */
  start(policy: NativePolicy): void
  setPolicy(policy: NativePolicy): void
  /** Accepts every held packet, drains the kernel queue, unbinds, joins. Idempotent. */
  stop(): void
  stats(): QueueStats
  readonly running: boolean
  /** The options in force: copyRange clamped to a receive slot, maxLen raised above what can wait. */
  readonly options: Required<Omit<QueueOptions, 'onFatal'>>
}

/** One possible CPU's ctnetlink conntrack statistics (names as `conntrack -S` prints them). */
export interface ConntrackCpuCounters {
  cpu: number
  /** Only the counters this kernel sends (clash_resolve since 5.10, chaintoolong since 5.15). */
  counters: Record<string, number>
}

/** Options of the race probe's split-CPU sender. */
export interface SplitCpuOptions {
  /** IPv4 or IPv6 literal: the (DNATed) service address. */
  server: string
  port?: number
  pairs?: number
  /** The CPUs of the A and the AAAA sender; default: the first two this process may run on. */
  cpus?: [number, number]
  /** Per pair, for both answers; no retry (1000). */
  timeoutMs?: number
  /** No new pair after this (60). */
  maxSeconds?: number
}

/** What the split-CPU sender did: pairs sent, answers received, how far apart each pair's two sends were. */
export interface SplitCpuResult {
  pairs: number
  queries: number
  answered: number
  sendErrors: number
  cpus: [number, number]
  /** Per pair, |A send time - AAAA send time| in ns (CLOCK_MONOTONIC). */
  skewNs: number[]
  elapsedSeconds: number
}

interface Addon {
  Queue: new (opts: QueueOptions) => NativeQueue
  parsePacket(buf: Buffer): ParsedPacket
  constants: NativeConstants
  limits: NativeLimits
  conntrackStats(): ConntrackCpuCounters[]
  splitCpuPairs(opts: SplitCpuOptions): SplitCpuResult
  allowedCpus(): number[]
}

function findAddon(): string {
  // src/dataplane/ in tests, dist/dataplane/ when installed: the build directory sits two levels up.
  const here = path.dirname(fileURLToPath(import.meta.url))
  const candidates = [
    process.env.DNS_SHAPER_ADDON,
    path.join(here, '..', '..', 'build', 'Release', 'nfqueue.node'),
    path.join(here, '..', '..', 'build', 'Debug', 'nfqueue.node'),
  ].filter((p): p is string => typeof p === 'string' && p.length > 0)
  const found = candidates.find(p => fs.existsSync(p))
  if (!found) {
    throw new Error(
      `native addon nfqueue.node not found (looked in ${candidates.join(', ')}); ` +
        'build it with `npm ci` or `npx node-gyp rebuild` (needs libmnl-dev and libnetfilter-queue-dev)',
    )
  }
  return found
}

const addonFile = findAddon()
const addon = createRequire(import.meta.url)(addonFile) as Addon
/**
 * The race probe's helper executable, built beside the addon by binding.gyp: runs a program in a new
 * network namespace (native/netns_exec.cc). May be absent (an install that copied only the .node).
 */
export const netnsHelper = path.join(path.dirname(addonFile), 'dns-shaper-netns')

export const Queue = addon.Queue
export const parsePacket = addon.parsePacket
/** What the loaded addon reports; TS reads the same tables from ./constants.ts (test/native/constants.ts checks they agree). */
export const addonConstants: NativeConstants = addon.constants
export const addonLimits: NativeLimits = addon.limits
/** Per-CPU conntrack statistics of this netns over ctnetlink; throws with code/errno/syscall. Needs CAP_NET_ADMIN. */
export const conntrackStats = addon.conntrackStats
/**
 * Sends A/AAAA pairs from two threads pinned to two CPUs on one socket per pair (the race probe).
 * Blocks the calling thread for the whole run: only the probe agent, a process of its own, calls it.
 */
export const splitCpuPairs = addon.splitCpuPairs
/** CPUs this process may run on (sched_getaffinity). */
export const allowedCpus = addon.allowedCpus
