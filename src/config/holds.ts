// The one parser of hold rules (QTYPE -> milliseconds): checks them against the data plane's bounds
// (native/limits.h via the build-time tables) and is the only maker of Holds, the type the policy compiler
// takes, so the compiler checks nothing and no unchecked hold reaches it. Pure.
import { ConfigError } from '../errors.js'
import type { HoldRule } from '../dataplane/policy.js'
import { MAX_HOLD_CLASSES, MAX_HOLD_MS } from '../dataplane/limits.js'

declare const checked: unique symbol
/** Hold rules checkHolds accepted (no other code can build one). */
export type Holds = readonly HoldRule[] & { readonly [checked]: 'Holds' }

/** `rules` checked: each QTYPE 1..65535, each hold 0..MAX_HOLD_MS, at most MAX_HOLD_CLASSES distinct holds. */
export function checkHolds(rules: readonly HoldRule[], flag: string): Holds {
  for (const r of rules) {
    if (!Number.isInteger(r.qtype) || r.qtype < 1 || r.qtype > 65535)
      throw new ConfigError(flag, `QTYPE ${r.qtype} is out of range`, 'type names or numbers 1..65535')
    if (!(r.holdMs >= 0 && r.holdMs <= MAX_HOLD_MS))
      throw new ConfigError(
        flag,
        `hold of ${r.holdMs} ms for QTYPE ${r.qtype} is out of range 0..${MAX_HOLD_MS}`,
        `milliseconds 0..${MAX_HOLD_MS}`,
      )
  }
  // The data plane keeps one FIFO per distinct hold: more than it has is a config error, found here
  // (exit 2) rather than when the policy is compiled for a queue that is already bound.
  const classes = new Set(rules.map(r => r.holdMs)).size
  if (classes > MAX_HOLD_CLASSES) {
    throw new ConfigError(
      flag,
      `${classes} distinct hold durations; the data plane has ${MAX_HOLD_CLASSES}`,
      `at most ${MAX_HOLD_CLASSES} different hold times: merge some`,
    )
  }
  return rules.map(r => ({ ...r })) as unknown as Holds
}
