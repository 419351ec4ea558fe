// Compiles policy rules (QTYPE -> hold) into the flat table the data plane reads. Pure: no I/O.
import type { NativePolicy } from './nfqueue.js'
import { OperatorError } from '../errors.js'
import type { ShapeMode } from '../config/types.js'
import { MAX_HOLD_CLASSES, MAX_HOLD_MS } from './limits.js'

export interface HoldRule {
  qtype: number
  holdMs: number
}

export interface PolicyInput {
  rules: HoldRule[]
  dryRun: boolean
  mode: ShapeMode
  pairWindowMs: number
  maxHeld: number
}

/** The data plane keeps one hold class per distinct hold duration (bound from native/limits.h). */
export { MAX_HOLD_CLASSES }

/** A hold rule the data plane cannot take: a configuration problem (exit 2), like ConfigError. */
export class PolicyError extends OperatorError {
  override name = 'PolicyError'
  readonly cliExitCode = 2
}

export function compilePolicy(input: PolicyInput): NativePolicy {
  const table = new Uint8Array(65536)
  const holdMs: number[] = [0]
  const classOf = new Map<number, number>()
  for (const rule of input.rules) {
    if (!Number.isInteger(rule.qtype) || rule.qtype < 1 || rule.qtype > 65535) {
      throw new PolicyError(`QTYPE ${rule.qtype} is out of range; use 1..65535 or a type name`)
    }
    if (!(rule.holdMs >= 0 && rule.holdMs <= MAX_HOLD_MS)) {
      throw new PolicyError(`hold of ${rule.holdMs} ms for QTYPE ${rule.qtype} is out of range 0..${MAX_HOLD_MS}`)
    }
    let cls = classOf.get(rule.holdMs)
    if (cls === undefined) {
      if (holdMs.length > MAX_HOLD_CLASSES) {
        throw new PolicyError(`more than ${MAX_HOLD_CLASSES} distinct hold durations; merge some`)
      }
      cls = holdMs.length
      holdMs.push(rule.holdMs)
      classOf.set(rule.holdMs, cls)
    }
    table[rule.qtype] = cls
  }
  return {
    table,
    holdMs,
    dryRun: input.dryRun,
    pair: input.mode === 'pair',
    pairWindowMs: input.pairWindowMs,
    maxHeld: input.maxHeld,
  }
}

/** Inverse view for logs and `rules print`: which QTYPEs are held, and for how long. */
export function describePolicy(p: NativePolicy): HoldRule[] {
  const out: HoldRule[] = []
  for (let q = 1; q < p.table.length; q++) {
    const cls = p.table[q] ?? 0
    if (cls) out.push({ qtype: q, holdMs: p.holdMs[cls] ?? 0 })
  }
  return out
}

/** The query types a compiled table holds (any hold class, 0 ms included), ascending. */
export function heldQtypes(p: Pick<NativePolicy, 'table'>): number[] {
  const out: number[] = []
  for (let q = 0; q < p.table.length; q++) if ((p.table[q] ?? 0) > 0) out.push(q)
  return out
}
