// A reload's next plan: the loaded config clamped to what start preallocated, with what needs a restart; it must not apply anything (the daemon hands each changed part to its owner).
import type { LoadedConfig } from '../config/load.js'
import type { Logger } from '../log.js'
import { compilePlan, diffPlans, reloadPlan, type Plan, type PlanDiff } from '../plan/plan.js'

const RESTART_HINT = 'kubectl -n kube-system rollout restart ds/dns-shaper (or restart the daemon)'

/**
 * The plan a reload applies, what changed from `prev`, and the settings kept at their running values
 * until a restart (each logged with the hint). `heldCapacity`: the held slots preallocated at start.
 */
export function nextPlan(
  prev: Plan,
  loaded: LoadedConfig,
  heldCapacity: number | undefined,
  log: Logger,
): { plan: Plan; changed: PlanDiff; restart: string[] } {
  let next = loaded
  const restart: string[] = []
  // The held slots were preallocated at start: raise max-held as far as they go and apply the rest.
  if (heldCapacity !== undefined && next.config.maxHeld > heldCapacity) {
    log.warn('max-held is above the held slots preallocated at start; raised to them, the rest needs a restart', {
      settings: ['maxHeld'],
      requested: next.config.maxHeld,
      applied: heldCapacity,
      hint: RESTART_HINT,
    })
    next = { ...next, config: { ...next.config, maxHeld: heldCapacity } }
    restart.push('maxHeld')
  }
  const plan = reloadPlan(prev, next)
  const diff = diffPlans(prev, compilePlan(next))
  if (diff.restart.length)
    log.warn('these settings change only on restart; kept the running values', {
      settings: diff.restart,
      hint: RESTART_HINT,
    })
  restart.push(...diff.restart)
  return { plan, changed: diffPlans(prev, plan), restart }
}
