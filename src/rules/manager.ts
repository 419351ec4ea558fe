// The rule manager: install/remove/status of the DNS-SHAPER rules, each family one atomic
// iptables-restore transaction, serialised, each family standing alone, with kernel-filter fallback. It must never touch a
// rule it did not create, nor run anything through a shell (every command goes through exec.ts).
import { readFile } from 'node:fs/promises'
import type { Config, Family } from '../config/types.js'
import { createRunner, netnsWrap, wrapRunner, type Runner } from '../kernel/exec.js'
import { isIptablesError } from './errors.js'
import { Iptables } from './iptables.js'
import { detectBackend, type Backend, type BackendDecision } from './backend.js'
import {
  compileRulePlan,
  familyEnabled,
  familyPlan,
  initialFilterMode,
  isMissingMatch,
  type FilterMode,
  type RulePlan,
} from './plan.js'
import { renderInstall, renderRemove, renderRestore } from './restore.js'
import { CreatedChains, FAMILIES, type RuleLog } from './created-chains.js'
import { ownedJumps, type SavedTable } from './save.js'
import { compareTable, type FamilyStatus } from './status.js'
import type { FamilyPlan } from './plan.js'

export type { RuleLog } from './created-chains.js'

export interface RuleManagerOptions {
  /**
   * The backend setting, and the rules of operations called without a plan (the one-shot `rules`
   * commands); the daemon passes its current rule plan to every operation instead.
   */
  config: Config
  /** Command runner (default: execFile with a 30 s timeout); given one, /proc is read through it too (`cat`). */
  runner?: Runner
  /** Run every command inside this network namespace (`ip netns exec NS ...`). */
  netns?: string
  /** Generic argv prefix for every command (ignored when netns is set). */
  wrap?: readonly string[]
  log?: RuleLog
  /** Seconds iptables-restore waits for the xtables lock (default 5). */
  lockWaitSeconds?: number
  /** Timeout per command in ms (default 30 s); must exceed the lock wait. */
  timeoutMs?: number
  /** Skip detection and use this backend decision. */
  backend?: BackendDecision
  /**
   * Read the tables and log the transaction, but never restore. Separate from the daemon's
   * --dry-run, which classifies packets without holding them and still needs the rules.
   */
  dryRun?: boolean
}

export interface FamilyResult {
  family: Family
  /** A restore transaction was applied (or, in dry-run, would have been). */
  changed: boolean
  /** Jumps of ours that were deleted before re-adding (stale copies included). */
  jumpsRemoved: number
  /** The transaction text, null when nothing was to do. */
  input: string | null
  skipped?: string
}

export interface ApplyResult {
  backend: BackendDecision
  dryRun: boolean
  families: FamilyResult[]
}

export interface RuleStatus {
  backend: BackendDecision
  families: FamilyStatus[]
}

/** What a family that failed to install is left with: a failed restore applies nothing. */
function stateAfterFailure(plan: FamilyPlan, table: SavedTable | undefined): string {
  const st = compareTable(plan, table)
  if (st.upToDate) return 'unchanged; its rules already matched the config'
  if (st.chainPresent || st.jumps.length > 0)
    return 'kept its previous rules (they may queue an older set of query types)'
  return `no rules of ours: its DNS passes unshaped`
}

export class RuleManager {
  /** The plan of operations called without one. */
  readonly #plan: RulePlan
  readonly #backendSetting: Config['iptablesBackend']
  readonly #dryRun: boolean
  readonly #run: Runner
  readonly #iptables: Iptables
  readonly #log: RuleLog
  readonly #waitSeconds: number
  readonly #timeoutMs: number
  #backend: Promise<BackendDecision> | undefined
  /** The kernel filter in use; under auto it steps down (bpf → u32 → off) when a match is missing. */
  #filter: FilterMode
  /** The --kernel-filter setting #filter was derived from: a plan with another one starts over. */
  #filterSetting: Config['kernelFilter']
  /** The built-in chains and nft table our first install created, deleted again by remove. */
  readonly #created: CreatedChains
  /** Serialises install/remove/status so two transactions never read-modify-write concurrently. */
  #tail: Promise<unknown> = Promise.resolve()

  constructor(opts: RuleManagerOptions) {
    this.#plan = compileRulePlan(opts.config)
    this.#backendSetting = opts.config.iptablesBackend
    this.#dryRun = opts.dryRun ?? false
    this.#log = opts.log ?? {}
    this.#filter = initialFilterMode(opts.config)
    this.#filterSetting = opts.config.kernelFilter
    this.#waitSeconds = opts.lockWaitSeconds ?? 5
    this.#timeoutMs = opts.timeoutMs ?? Math.max(30_000, (this.#waitSeconds + 10) * 1000)
    const base = opts.runner ?? createRunner({ timeoutMs: this.#timeoutMs })
    const wrap = opts.netns !== undefined ? netnsWrap(opts.netns) : (opts.wrap ?? [])
    this.#run = wrapRunner(base, wrap)
    // /proc/net is the reader's namespace: read it here only when the commands run here too.
    const here = opts.runner === undefined && wrap.length === 0
    this.#iptables = new Iptables({
      run: this.#run,
      ...(here ? { readFile: (path: string) => readFile(path, 'utf8') } : {}),
      waitSeconds: this.#waitSeconds,
      timeoutMs: this.#timeoutMs,
      dryRun: this.#dryRun,
      debug: (msg, fields) => this.#log.debug?.(msg, fields),
    })
    this.#created = new CreatedChains({
      run: this.#run,
      iptables: this.#iptables,
      log: this.#log,
      dryRun: this.#dryRun,
    })
    if (opts.backend !== undefined) this.#backend = Promise.resolve(opts.backend)
  }

  /** Which backend to use, and why. Detected once, then cached. */
  detectBackend(): Promise<BackendDecision> {
    if (this.#backend === undefined) {
      const p = detectBackend(this.#run, this.#backendSetting, {
        onProbe: (argv, rules, missing) => this.#log.debug?.('iptables backend probe', { argv, rules, missing }),
      }).then(d => {
        this.#log.info?.(`iptables backend: ${d.backend} (${d.reason})`, { backend: d.backend, source: d.source })
        return d
      })
      // A failed detection is retried by the next call.
      p.catch(() => {
        if (this.#backend === p) this.#backend = undefined
      })
      this.#backend = p
    }
    return this.#backend
  }

  /**
   * The plan an operation works from, taken when it starts (one already running finishes with its
   * own). A plan with another --kernel-filter setting restarts the filter from that setting.
   */
  #use(plan: RulePlan | undefined): RulePlan {
    const p = plan ?? this.#plan
    if (p.config.kernelFilter !== this.#filterSetting) {
      this.#filterSetting = p.config.kernelFilter
      this.#filter = initialFilterMode(p.config)
    }
    return p
  }

  /** The restore input for one family (no live state needed). */
  render(family: Family, plan: RulePlan = this.#plan): string {
    return renderRestore(plan.config, family, this.#filter)
  }

  /** The kernel filter the rules use now (auto resolved by the last install). */
  get filter(): FilterMode {
    return this.#filter
  }

  /**
   * Make the live rules match the config: per family one restore transaction that deletes all our
   * jumps (stale copies too), flushes and refills CHAIN, and adds one jump per hook. Each family
   * stands alone: a restore is atomic, so a family that fails keeps what it had, and the other
   * family keeps what this call installed (a failed IPv6 restore must not unshape IPv4). Each
   * family's state is logged; the first error is thrown.
   */
  install(rulePlan?: RulePlan): Promise<ApplyResult> {
    return this.#serial(async () => {
      const plan = this.#use(rulePlan)
      const backend = await this.detectBackend()
      let pass = await this.#installPass(plan, backend.backend)
      // auto: a kernel or iptables without xt_bpf (or u32) refuses the match; step down and start
      // over with every family, so both use the same filter. Bounded: bpf → u32 → off, then no match.
      while (pass.missingMatch !== undefined) {
        const next: FilterMode = this.#filter === 'bpf' ? 'u32' : 'off'
        this.#log.warn?.(
          `kernel filter ${this.#filter} unavailable (${pass.missingMatch.trim().split('\n')[0] ?? ''}); using ${next}`,
        )
        this.#filter = next
        pass = await this.#installPass(plan, backend.backend)
      }
      const { results, failed } = pass
      const first = [...failed.values()][0]
      if (first !== undefined) {
        const families = Object.fromEntries(
          results.map(r => [
            r.family,
            failed.get(r.family)?.state ?? (r.skipped !== undefined ? `no rules (${r.skipped})` : 'rules installed'),
          ]),
        )
        this.#log.warn?.(`rule install failed for ${[...failed.keys()].join(' and ')}; each family is left as logged`, {
          families,
          error: first.error instanceof Error ? first.error.message : String(first.error),
        })
        throw first.error
      }
      return { backend, dryRun: this.#dryRun, families: results }
    })
  }

  /**
   * One install attempt over both families with the current kernel filter. Stops early, with the
   * iptables stderr, when auto may step the filter down (the caller then starts over).
   */
  async #installPass(
    rulePlan: RulePlan,
    backend: Backend,
  ): Promise<{
    results: FamilyResult[]
    failed: Map<Family, { error: unknown; state: string }>
    missingMatch?: string
  }> {
    const results: FamilyResult[] = []
    const failed = new Map<Family, { error: unknown; state: string }>()
    for (const family of FAMILIES) {
      const plan = familyPlan(rulePlan, family, this.#filter)
      const optional = !familyEnabled(rulePlan.config, family)
      let table: SavedTable | undefined
      let read = false
      try {
        table = await this.#iptables.readRaw(backend, family)
        read = true
        await this.#created.noteBefore(backend, family, table)
        const input = renderInstall(plan, table)
        const r: FamilyResult = { family, changed: input !== null, jumpsRemoved: ownedJumps(table).length, input }
        if (plan.skipped !== undefined) r.skipped = plan.skipped
        if (input !== null) {
          try {
            await this.#iptables.apply(backend, family, input)
          } catch (e) {
            if (
              rulePlan.config.kernelFilter === 'auto' &&
              this.#filter !== 'off' &&
              isIptablesError(e) &&
              isMissingMatch(e.stderr)
            )
              return { results, failed, missingMatch: e.stderr }
            throw e
          }
        }
        results.push(r)
        this.#logResult('install', r)
      } catch (e) {
        // A family turned off: cleaning its stale rules is a courtesy (its iptables may not work at all).
        if (optional) {
          this.#log.debug?.(`${family} disabled; could not check for stale ${family} rules`, { error: String(e) })
          results.push({ family, changed: false, jumpsRemoved: 0, input: null, skipped: plan.skipped ?? '' })
          continue
        }
        failed.set(family, {
          error: e,
          state: read ? stateAfterFailure(plan, table) : 'unknown (its table could not be read)',
        })
        results.push({ family, changed: false, jumpsRemoved: 0, input: null })
      }
    }
    return { results, failed }
  }

  /**
   * Remove everything install() added (our jumps, then our chain, and on nft the built-in chains our
   * jumps created). Nothing installed: no change, no error. Every family is tried; the first error
   * is thrown after.
   *
   * Deleting a base chain unregisters a netfilter hook, and the kernel then drops every packet queued
   * in the namespace (nfqnl_nf_hook_drop flushes all queues): a daemon holding packets must pass
   * `{ hooks: 'later' }`, release them, and then call removeHooks().
   */
  remove(opts: { hooks?: 'now' | 'later'; plan?: RulePlan } = {}): Promise<ApplyResult> {
    return this.#serial(async () => {
      const plan = this.#use(opts.plan)
      const backend = await this.detectBackend()
      const results: FamilyResult[] = []
      let error: { e: unknown } | undefined
      for (const family of FAMILIES) {
        try {
          results.push(await this.#removeFamily(backend.backend, family, opts.hooks ?? 'now'))
        } catch (e) {
          if (familyEnabled(plan.config, family)) {
            error ??= { e }
            this.#log.warn?.(`could not remove the ${family} rules`, {
              error: e instanceof Error ? e.message : String(e),
            })
            continue
          }
          this.#log.debug?.(`${family} disabled; could not check for ${family} rules`, { error: String(e) })
          results.push({
            family,
            changed: false,
            jumpsRemoved: 0,
            input: null,
            skipped: familyPlan(plan, family, this.#filter).skipped ?? '',
          })
        }
      }
      if (error !== undefined) throw error.e
      return { backend, dryRun: this.#dryRun, families: results }
    })
  }

  /** Live state of our rules per enabled family, with packet counters. Read-only. */
  async status(rulePlan?: RulePlan): Promise<RuleStatus> {
    let plan: RulePlan | undefined
    const { backend, results } = await this.#eachFamily(async (b, family) => {
      plan ??= this.#use(rulePlan)
      return !familyEnabled(plan.config, family)
        ? undefined
        : compareTable(familyPlan(plan, family, this.#filter), await this.#iptables.readRaw(b, family))
    })
    return { backend, families: results }
  }

  /** Serialised: detect the backend, then `fn` for each family in order (undefined: nothing for that family). */
  #eachFamily<T>(
    fn: (backend: Backend, family: Family) => Promise<T | undefined>,
  ): Promise<{ backend: BackendDecision; results: T[] }> {
    return this.#serial(async () => {
      const backend = await this.detectBackend()
      const results: T[] = []
      for (const family of FAMILIES) {
        const r = await fn(backend.backend, family)
        if (r !== undefined) results.push(r)
      }
      return { backend, results }
    })
  }

  /**
   * The second half of remove({ hooks: 'later' }): deletes the built-in chains it set aside, if
   * they are still empty with policy ACCEPT. Best effort: a chain someone used meanwhile stays.
   */
  removeHooks(): Promise<void> {
    return this.#serial(async () => {
      await this.#created.removeHooks((await this.detectBackend()).backend)
    })
  }

  async #removeFamily(backend: Backend, family: Family, when: 'now' | 'later' = 'now'): Promise<FamilyResult> {
    const table = await this.#iptables.readRaw(backend, family)
    const builtins = this.#created.builtinsFor(backend, family, table, when)
    let input = renderRemove(table, builtins)
    const r: FamilyResult = { family, changed: input !== null, jumpsRemoved: ownedJumps(table).length, input }
    if (input !== null) {
      try {
        await this.#iptables.apply(backend, family, input)
      } catch (e) {
        // A rule added to that built-in chain since we read it (the kernel then refuses to delete the
        // chain), or an iptables-nft too old to delete built-in chains: remove only ours.
        if (builtins.length === 0 || !isIptablesError(e)) throw e
        this.#log.debug?.(`remove ${family}: keeping the built-in chains ${builtins.join(', ')}`, { error: e.message })
        input = renderRemove(table)
        r.input = input
        if (input !== null) await this.#iptables.apply(backend, family, input)
      }
    }
    if (backend === 'nft' && when === 'now') await this.#created.dropCreatedTable(family)
    this.#logResult('remove', r)
    return r
  }

  #logResult(op: string, r: FamilyResult): void {
    if (!r.changed) {
      this.#log.debug?.(`${op} ${r.family}: nothing to do${r.skipped ? ` (${r.skipped})` : ''}`)
      return
    }
    const verb = this.#dryRun ? 'would apply' : 'applied'
    this.#log.info?.(`${op} ${r.family}: ${verb} iptables-restore transaction`, {
      jumpsRemoved: r.jumpsRemoved,
      ...(r.skipped ? { skipped: r.skipped } : {}),
      ...(this.#dryRun ? { input: r.input } : {}),
    })
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#tail.then(fn, fn)
    this.#tail = p.catch(() => {})
    return p
  }
}
