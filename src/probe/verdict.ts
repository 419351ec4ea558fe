// What the race probe measured, from the router namespace's conntrack counter deltas and the sender's
// answer count: how many clashes it provoked, how many the kernel dropped or resolved, and the outcome
// (drops / resolves / inconclusive, and why). Pure: no I/O, no clock.
import { clashResolveDelta, conntrackDelta, type ConntrackStats } from '../kernel/procfs.js'

/** One run of pairs (masquerade off or on): what was sent and answered, and the router's counters. */
export interface PhaseInput {
  masquerade: boolean
  pairs: number
  /** Queries sent (two per pair). */
  queries: number
  answered: number
  /** The router namespace's statistics before and after; undefined when neither source answered. */
  before: ConntrackStats | undefined
  after: ConntrackStats | undefined
  /** Per pair, how far apart the A and AAAA left their CPUs (ns). */
  skewNs: number[]
}

export interface ProbeFigures {
  pairs: number
  queries: number
  answered: number
  /** Queries without an answer. */
  lost: number
  /** dropped + resolved. */
  clashes: number
  dropped: number
  resolved: number
}

export interface PhaseFigures extends ProbeFigures {
  masquerade: boolean
  /** Median skew between the two sends of a pair, µs. */
  skewP50Us: number
  /**
   * `clash_resolve`: the kernel counts resolved clashes (5.10+) and insert_failed counts only drops.
   * `insert_failed`: it has no clash counter and insert_failed counts every clash; drops are then the
   * unanswered queries (at most the clashes), resolved the rest.
   */
  counter: 'clash_resolve' | 'insert_failed'
}

export type ProbeOutcome = 'drops' | 'resolves' | 'inconclusive'
/** Why the probe could not decide: it did not run, or it ran and provoked no clash. */
export type InconclusiveReason = 'no-privilege' | 'one-cpu' | 'counters-missing' | 'no-overlap' | 'failed'

export interface ProbeVerdict {
  outcome: ProbeOutcome
  reason?: InconclusiveReason
  /** Summed over the phases; absent when the probe did not run. */
  figures?: ProbeFigures
  phases?: PhaseFigures[]
  /** One operator-facing sentence. */
  text: string
}

function median(xs: readonly number[]): number {
  if (xs.length === 0) return 0
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor((s.length - 1) / 2)]!
}

/** A phase's figures, or undefined when the router's counters are missing (no source, or no insert_failed). */
export function phaseFigures(p: PhaseInput): PhaseFigures | undefined {
  if (p.before === undefined || p.after === undefined) return undefined
  const failed = conntrackDelta(p.before, p.after, 'insert_failed')
  if (failed === undefined) return undefined
  const lost = Math.max(0, p.queries - p.answered)
  const resolveCounted = clashResolveDelta(p.before, p.after)
  const base = { masquerade: p.masquerade, pairs: p.pairs, queries: p.queries, answered: p.answered, lost }
  const skewP50Us = Math.round(median(p.skewNs) / 100) / 10
  if (resolveCounted !== undefined) {
    return {
      ...base,
      clashes: failed + resolveCounted,
      dropped: failed,
      resolved: resolveCounted,
      skewP50Us,
      counter: 'clash_resolve',
    }
  }
  // Before 5.10 insert_failed counted resolved clashes too; a dropped query is one never answered.
  const dropped = Math.min(lost, failed)
  return { ...base, clashes: failed, dropped, resolved: failed - dropped, skewP50Us, counter: 'insert_failed' }
}

function sum(phases: readonly ProbeFigures[]): ProbeFigures {
  const keys = ['pairs', 'queries', 'answered', 'lost', 'clashes', 'dropped', 'resolved'] as const
  const out = { pairs: 0, queries: 0, answered: 0, lost: 0, clashes: 0, dropped: 0, resolved: 0 }
  for (const p of phases) for (const k of keys) out[k] += p[k]
  return out
}

/** Not run: the probe says why and what would let it run. */
export function notRun(reason: 'no-privilege' | 'one-cpu' | 'failed', detail: string): ProbeVerdict {
  const text =
    reason === 'no-privilege'
      ? `probe not run: it needs CAP_SYS_ADMIN to create its network namespaces (${detail}); nothing was changed`
      : reason === 'one-cpu'
        ? `probe inconclusive: fewer than two CPUs to send from (${detail}), so no clash can be provoked`
        : `probe failed: ${detail}`
  return { outcome: 'inconclusive', reason, text }
}

/** The outcome from the phases' inputs. */
export function probeVerdict(inputs: readonly PhaseInput[]): ProbeVerdict {
  const phases = inputs.map(phaseFigures)
  if (inputs.length === 0 || phases.some(p => p === undefined)) {
    return {
      outcome: 'inconclusive',
      reason: 'counters-missing',
      text: "probe inconclusive: the router namespace's conntrack counters could not be read (neither ctnetlink nor /proc/net/stat/nf_conntrack)",
    }
  }
  const ok = phases as PhaseFigures[]
  const figures = sum(ok)
  const of = `in ${figures.pairs} split-CPU A/AAAA pairs through a random DNAT to 3 endpoints (masquerade off and on)`
  if (figures.dropped > 0) {
    return {
      outcome: 'drops',
      figures,
      phases: ok,
      text: `this kernel drops clashes: ${figures.dropped} of ${figures.clashes} clashes dropped ${of}`,
    }
  }
  if (figures.resolved > 0) {
    return {
      outcome: 'resolves',
      figures,
      phases: ok,
      text: `this kernel resolves clashes: ${figures.resolved} clashes resolved, none dropped, ${of}`,
    }
  }
  const skew = median(ok.map(p => p.skewP50Us))
  return {
    outcome: 'inconclusive',
    reason: 'no-overlap',
    figures,
    phases: ok,
    text: `probe inconclusive: no clash ${of}; the two CPUs never overlapped (sends ${skew} µs apart at the median)`,
  }
}
