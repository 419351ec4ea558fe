// What a benchmark variant is: something that may bind the router's NFQUEUE and shape DNS, started
// and stopped by bench/run.ts, which alone installs the (shared) queue rule and measures.

import type { Lab } from '../../harness/topology.js'

export interface BenchContext {
  lab: Lab
  /** NFQUEUE number the shared rule sends to. */
  queue: number
  /** Configured AAAA hold, ms. */
  delayMs: number
  /** Repository root (dist/cli.js, bench/ref/nfq_ref). */
  repoRoot: string
  /** Port the daemon's metrics listen on, on the router's loopback. */
  metricsPort: number
  /** Directory of the npm `nfqueue` package (optional variant). */
  npmNfqueueDir: string
  /** Queues from `queue` on, spread by --queue-balance (default 1). */
  queues?: number
  /** Pair mode: --pair-window (default: delayMs). */
  pairWindowMs?: number
  /** dns-shaper --max-held (default: the daemon's). */
  maxHeld?: number
  /** Node binary dns-shaper runs on (default: the benchmark's own). */
  daemonNode?: string
}

export interface Running {
  /** Process doing the verdicts (CPU and RSS are read from it); undefined for the baseline. */
  pid?: number
  /** All verdict processes when there are several (one per queue); CPU is summed over them. */
  pids?: number[]
  /** Prometheus text of the daemon's metrics, when it has them. */
  metrics?(): Promise<string | undefined>
  /** Stops it (bounded); returns whatever summary it printed at exit. */
  stop(): Promise<Record<string, unknown> | undefined>
}

export interface Variant {
  id: string
  label: string
  /** Whether the shared NFQUEUE rule is installed for it. */
  queue: boolean
  /** Holds AAAA queries for the context's delay. */
  holdsAAAA: boolean
  /** Pair mode: AAAA may leave right behind its A, before the hold. */
  pairMode?: boolean
  /** A reason it cannot run here (missing binary ...), or undefined. */
  unavailable?(ctx: BenchContext): Promise<string | undefined>
  start(ctx: BenchContext): Promise<Running>
}
