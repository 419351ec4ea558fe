// Rule sync: the daemon's single queue of rule operations (install, reconcile, remove), run one at a
// time against its one rule manager with the latest config, and the rule health they leave behind
// (readiness, metrics). It must not decide policy, touch the data plane, or run an operation after remove.
import type { Config, Family } from '../config/types.js'
import type { RuleManager } from './manager.js'
import type { Logger } from '../log.js'
import { errorMessage } from '../errors.js'

export const FAMILIES: readonly Family[] = ['ipv4', 'ipv6']
export type SyncOp = 'install' | 'reconcile' | 'remove'
export const SYNC_OPS: readonly SyncOp[] = ['install', 'reconcile', 'remove']

/** Whether a family's live rules match the plan (a family planned to have none matches when it has none). */
export interface FamilyState {
  family: Family
  ok: boolean
}

/** What the daemon needs from a rule manager (RuleManager through ruleManagerRules, or a test fake). */
export interface Rules {
  /** Make the live rules match the config last set. */
  install(): Promise<unknown>
  /** Remove every rule of ours, but no hook (see removeHooks). */
  remove(): Promise<unknown>
  /**
   * Delete the built-in chains our rules created (nft). Unregistering a hook makes the kernel drop
   * every packet queued in the namespace, so this runs only once the queue has released and unbound.
   */
  removeHooks?(): Promise<unknown>
  /** Per family: do the live rules match the plan of the config last set? */
  status(): Promise<FamilyState[]>
  /** Operations that start after this use `config`. */
  setConfig(config: Config): void
  describe?(): string
}

/** The adapter the CLI uses: a RuleManager as Rules. */
export function ruleManagerRules(m: RuleManager): Rules {
  return {
    install: () => m.install(),
    remove: () => m.remove({ hooks: 'later' }),
    removeHooks: () => m.removeHooks(),
    status: async () => {
      const st = await m.status()
      // status() leaves out a disabled IPv6: planned to have no rules, and removed by install().
      return FAMILIES.map(family => ({ family, ok: st.families.find(f => f.family === family)?.upToDate ?? true }))
    },
    setConfig: c => m.setConfig(c),
  }
}

export interface RuleHealth {
  /** Per family, whether the live rules matched the plan at the last operation. */
  installed: Record<Family, boolean>
  /** Failed operations since start, by operation. */
  errors: Record<SyncOp, number>
  /** Unix time (s) of the last operation that left the rules matching the plan (or removed them). */
  lastSyncSeconds: number | undefined
  /** Why the rules are not in place, for /readyz; undefined when they are. */
  problem: string | undefined
}

export interface RuleSyncOptions {
  log: Logger
  /** Called when a reconcile found drifted rules and put them back. */
  onReinstalled?: () => void
  now?: () => number
}

export class RuleSync {
  readonly #rules: Rules
  readonly #opts: RuleSyncOptions
  #tail: Promise<unknown> = Promise.resolve()
  #installed: Record<Family, boolean> = { ipv4: false, ipv6: false }
  readonly #errors: Record<SyncOp, number> = { install: 0, reconcile: 0, remove: 0 }
  #last: number | undefined
  #problem: string | undefined = 'rules not installed yet'
  /** An install was asked for: reconcile may put rules back. */
  #wanted = false
  /** remove() was asked for: nothing installs after it, whatever is still queued. */
  #closed = false
  #reconciling: Promise<boolean> | undefined

  constructor(rules: Rules, opts: RuleSyncOptions) {
    this.#rules = rules
    this.#opts = opts
  }

  /** Later operations (queued ones included) use this config: the last one set wins. */
  configure(config: Config): void {
    this.#rules.setConfig(config)
  }

  /** Installs with the config last set, after every operation queued before. Throws on failure. */
  install(): Promise<void> {
    return this.#serial(async () => {
      if (this.#closed) return
      this.#wanted = true
      try {
        await this.#rules.install()
      } catch (e) {
        this.#errors.install++
        await this.#failed(`rule install failed: ${errorMessage(e)}`)
        throw e
      }
      this.#ok()
      this.#opts.log.info('rules installed', { detail: this.#rules.describe?.() })
    })
  }

  /**
   * Puts the rules back if they drifted (an old pod of a rolling update removed them, an operator
   * flushed the raw table, an earlier install failed). At most one runs or waits at a time: a
   * reconcile asked for meanwhile shares it. Returns whether it reinstalled.
   */
  reconcile(): Promise<boolean> {
    this.#reconciling ??= this.#serial(async () => {
      this.#reconciling = undefined
      if (this.#closed || !this.#wanted) return false
      let states: FamilyState[]
      try {
        states = await this.#rules.status()
      } catch (e) {
        // The rules may well still be there: count it, keep the last known state.
        this.#errors.reconcile++
        this.#opts.log.error('rule check failed', { err: errorMessage(e) })
        return false
      }
      if (states.every(s => s.ok)) {
        this.#ok()
        return false
      }
      this.#apply(states)
      const drifted = states.filter(s => !s.ok).map(s => s.family)
      try {
        await this.#rules.install()
      } catch (e) {
        this.#errors.reconcile++
        await this.#failed(
          `rules of ${drifted.join(', ')} are missing or outdated and reinstalling failed: ${errorMessage(e)}`,
        )
        this.#opts.log.error('rules had drifted and could not be reinstalled; retrying at the next check', {
          families: drifted,
          err: errorMessage(e),
        })
        return false
      }
      this.#ok()
      this.#opts.onReinstalled?.()
      this.#opts.log.warn('rules had drifted (removed or changed by someone else); reinstalled them', {
        families: drifted,
      })
      return true
    })
    return this.#reconciling
  }

  /**
   * Removes the rules after everything queued before it, a start-up install still running included,
   * so whatever was installed is removed in any interleaving. Nothing installs after it.
   */
  remove(): Promise<void> {
    this.#closed = true
    return this.#serial(async () => {
      if (!this.#wanted) return
      try {
        await this.#rules.remove()
      } catch (e) {
        this.#errors.remove++
        throw e
      }
      this.#installed = { ipv4: false, ipv6: false }
      this.#last = this.#now()
      this.#problem = 'rules removed'
      this.#opts.log.info('rules removed')
    })
  }

  /** After remove() and the queue's release: delete the hooks our rules created. Never throws. */
  removeHooks(): Promise<void> {
    return this.#serial(async () => {
      try {
        await this.#rules.removeHooks?.()
      } catch (e) {
        this.#errors.remove++
        this.#opts.log.warn('could not delete the empty built-in chains our rules created', { err: errorMessage(e) })
      }
    })
  }

  health(): RuleHealth {
    return {
      installed: { ...this.#installed },
      errors: { ...this.#errors },
      lastSyncSeconds: this.#last,
      problem: this.#problem,
    }
  }

  #ok(): void {
    this.#installed = { ipv4: true, ipv6: true }
    this.#last = this.#now()
    this.#problem = undefined
  }

  #apply(states: readonly FamilyState[]): void {
    for (const s of states) this.#installed[s.family] = s.ok
  }

  /** After a failed install: learn which families still match (a failed family keeps what it had). */
  async #failed(problem: string): Promise<void> {
    this.#problem = problem
    try {
      this.#apply(await this.#rules.status())
    } catch {
      this.#installed = { ipv4: false, ipv6: false }
    }
  }

  #now(): number {
    return (this.#opts.now ?? Date.now)() / 1000
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#tail.then(fn, fn)
    this.#tail = p.catch(() => {})
    return p
  }
}
