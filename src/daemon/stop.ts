// Stop's rule phase and its totals: removes the rules within a deadline, then the hooks; must never touch the queue (the caller has released it already) nor wait past the deadline.
import type { Logger } from '../log.js'
import type { Shaper } from '../dataplane/shaper.js'
import type { RuleSync } from '../rules/sync.js'
import { errorMessage } from '../errors.js'

/**
 * Stop's rule phase at most this long: each restore waits up to 5 s for the xtables lock, and the
 * DaemonSet's grace period (30 s) must not run out. Rules left behind pass DNS (--queue-bypass) and
 * the next start replaces them.
 */
export const STOP_RULES_DEADLINE_MS = 10_000

/**
 * Stop's rule phase, bounded by the deadline from the stop on: an install of start() still running
 * (it may wait on the xtables lock too), then the removal, then the hooks. Whether the rules are gone.
 * `rules` is read once `started` settles, since start() may create the rule sync meanwhile.
 */
export async function removeRulesWithin(
  started: Promise<void>,
  rules: () => RuleSync | undefined,
  deadlineMs: number,
  log: Logger,
): Promise<boolean> {
  const phase = (async (): Promise<boolean> => {
    await started
    const sync = rules()
    if (sync === undefined) return true
    try {
      await sync.remove()
    } catch (e) {
      log.error(
        'could not remove rules; they stay until the next start replaces them, and DNS passes meanwhile (--queue-bypass); or remove them with `dns-shaper rules remove`',
        { err: errorMessage(e) },
      )
      return false
    }
    await sync.removeHooks()
    return true
  })()
  let timer: NodeJS.Timeout | undefined
  const done = await Promise.race([
    phase,
    new Promise<'deadline'>(r => {
      timer = setTimeout(r, deadlineMs, 'deadline')
    }),
  ])
  clearTimeout(timer)
  if (done === 'deadline')
    log.error(
      'rules not removed within the stop deadline (iptables is waiting, likely on the xtables lock); they stay until the next start replaces them, and DNS passes meanwhile (--queue-bypass); or remove them with `dns-shaper rules remove`',
      { deadlineMs },
    )
  return done === true
}

/** The packet totals stop logs: per action over every queue, and what stop released. */
export function summarize(stats: ReturnType<Shaper['stats']>): Record<string, number> {
  const sum = (f: (s: (typeof stats)[number]['stats']) => number): number => stats.reduce((a, q) => a + f(q.stats), 0)
  const byAction = (a: string): number => sum(s => Object.values(s.packets[a] ?? {}).reduce((x, y) => x + y, 0))
  return {
    accepted: byAction('accepted'),
    held: byAction('held'),
    bypassed: byAction('bypassed'),
    malformed: byAction('malformed'),
    releasedAtStop: sum(s => s.counters.shutdown_released ?? 0),
  }
}
