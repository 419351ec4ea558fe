// Validated settings -> Plan: the holds and the native policy table compiled from them, the query types
// that reach the queue (what the rules' kernel filter lets through), the queues and the listener; and
// diff(prev, next): which parts changed, and which settings only a restart applies. Pure: no I/O and
// no addon (the policy compiler is pure, its bounds come from the build-time tables).
import type { Config } from '../config/types.js'
import type { LoadedConfig } from '../config/load.js'
import type { NativePolicy } from '../dataplane/nfqueue.js'
import { compilePolicy, type HoldRule, type PolicyInput } from '../dataplane/policy.js'
import { queuedQtypes } from '../dataplane/qtypes.js'

/**
 * Settings a reload hands to an owner, each the input of a plan part: the holds (qtypes and delay,
 * overridden per type by the file's holds) and the rest of the data plane's policy input, and the log
 * level. Typed against PolicyInput, so the policy cannot read a setting this list leaves out.
 */
const POLICY_SETTINGS = ['mode', 'pairWindowMs', 'maxHeld', 'dryRun'] as const satisfies readonly (keyof PolicyInput &
  keyof Config)[]
const HOLD_SETTINGS = ['qtypes', 'delayMs'] as const satisfies readonly (keyof Config)[]
const LOG_SETTINGS = ['logLevel'] as const satisfies readonly (keyof Config)[]
const RELOADED: ReadonlySet<keyof Config> = new Set([...POLICY_SETTINGS, ...HOLD_SETTINGS, ...LOG_SETTINGS])

export interface Plan {
  /** The validated settings this plan was compiled from. */
  readonly settings: Readonly<Config>
  /** What is held, and for how long: the one source of "what is held". */
  readonly holds: readonly HoldRule[]
  /** The table the data plane runs (owner: the shaper). */
  readonly policy: NativePolicy
  /** Query types the NFQUEUE rules let reach the queue (owner: rule sync). */
  readonly queued: readonly number[]
  /** NFQUEUE numbers bound at start. */
  readonly queues: readonly number[]
  /** Listener of /metrics, /healthz, /readyz ('' for none). */
  readonly metricsListen: string
}

export function compilePlan(loaded: LoadedConfig): Plan {
  const s = loaded.config
  const policy = compilePolicy({
    rules: loaded.rules,
    mode: s.mode,
    pairWindowMs: s.pairWindowMs,
    maxHeld: s.maxHeld,
    dryRun: s.dryRun,
  })
  return {
    settings: s,
    holds: loaded.rules,
    policy,
    queued: queuedQtypes(
      loaded.rules.map(h => h.qtype),
      s.mode === 'pair',
    ),
    queues: Array.from({ length: s.queues }, (_, i) => s.queue + i),
    metricsListen: s.metricsListen,
  }
}

export interface PlanDiff {
  /** The data plane's table changed: hand it to the shaper. */
  policy: boolean
  /** The queued types changed: the rules' kernel filter must be re-rendered and installed. */
  queued: boolean
  logLevel: boolean
  /** Settings that changed but only apply at start (they keep their running values). */
  restart: (keyof Config)[]
}

const sameJson = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)

function samePolicy(a: NativePolicy, b: NativePolicy): boolean {
  return (
    a.dryRun === b.dryRun &&
    a.pair === b.pair &&
    a.pairWindowMs === b.pairWindowMs &&
    a.maxHeld === b.maxHeld &&
    sameJson(a.holdMs, b.holdMs) &&
    a.table.length === b.table.length &&
    a.table.every((v, i) => v === b.table[i])
  )
}

export function diffPlans(prev: Plan, next: Plan): PlanDiff {
  const changed = (Object.keys(next.settings) as (keyof Config)[]).filter(
    k => !sameJson(next.settings[k], prev.settings[k]),
  )
  return {
    policy: !samePolicy(prev.policy, next.policy),
    queued: !sameJson(prev.queued, next.queued),
    logLevel: prev.settings.logLevel !== next.settings.logLevel,
    restart: changed.filter(k => !RELOADED.has(k)),
  }
}

/**
 * The plan a reload applies: the next plan's holds, policy and log level over the running plan's
 * start-only settings (queues, listener, rule layout), compiled again so every part agrees.
 */
export function reloadPlan(prev: Plan, next: LoadedConfig): Plan {
  const settings: Config = { ...prev.settings }
  const from = next.config as unknown as Record<string, unknown>
  for (const k of RELOADED) (settings as unknown as Record<string, unknown>)[k] = from[k]
  return compilePlan({ config: settings, rules: next.rules })
}
