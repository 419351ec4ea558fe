// The rule manager: install/remove/status of the DNS-SHAPER rules, each family one atomic
// iptables-restore transaction, serialised, with rollback and kernel-filter fallback. It must never touch a
// rule it did not create, nor run anything through a shell (every command goes through exec.ts).
import type { Config, Family } from '../config/types.js'
import { createRunner, netnsWrap, wrapRunner, type Runner } from '../exec.js'
import { iptablesFailure, iptablesSpawnFailure, isIptablesError } from './errors.js'
import { binaries, detectBackend, type Backend, type BackendDecision } from './backend.js'
import { initialFilterMode, isMissingMatch, planRules, TABLE, validateRuleConfig, type FilterMode } from './plan.js'
import { renderInstall, renderRemove, renderRestore } from './restore.js'
import { ownedJumps, parseSave, type SavedTable } from './save.js'
import { compareTable, type FamilyStatus } from './status.js'

type LogFn = (msg: string, fields?: Record<string, unknown>) => void
export interface RuleLog {
  debug?: LogFn
  info?: LogFn
  warn?: LogFn
}

export interface RuleManagerOptions {
  config: Config
  /** Command runner (default: execFile with a 30 s timeout). */
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

const FAMILIES: readonly Family[] = ['ipv4', 'ipv6']

export class RuleManager {
  readonly #config: Config
  readonly #dryRun: boolean
  readonly #run: Runner
  readonly #log: RuleLog
  readonly #waitSeconds: number
  readonly #timeoutMs: number
  #backend: Promise<BackendDecision> | undefined
  /** The kernel filter in use; under auto it steps down (bpf → u32 → off) when a match is missing. */
  #filter: FilterMode
  /** Whether the restore binary accepted --wait (old iptables-restore < 1.6.2 does not). */
  #useWait = true
  /** Serialises install/remove/status so two transactions never read-modify-write concurrently. */
  #tail: Promise<unknown> = Promise.resolve()

  constructor(opts: RuleManagerOptions) {
    validateRuleConfig(opts.config)
    this.#config = opts.config
    this.#dryRun = opts.dryRun ?? false
    this.#log = opts.log ?? {}
    this.#filter = initialFilterMode(opts.config)
    this.#waitSeconds = opts.lockWaitSeconds ?? 5
    this.#timeoutMs = opts.timeoutMs ?? Math.max(30_000, (this.#waitSeconds + 10) * 1000)
    const base = opts.runner ?? createRunner({ timeoutMs: this.#timeoutMs })
    const wrap = opts.netns !== undefined ? netnsWrap(opts.netns) : (opts.wrap ?? [])
    this.#run = wrapRunner(base, wrap)
    if (opts.backend !== undefined) this.#backend = Promise.resolve(opts.backend)
  }

  /** Which backend to use, and why. Detected once, then cached. */
  detectBackend(): Promise<BackendDecision> {
    if (this.#backend === undefined) {
      const p = detectBackend(this.#run, this.#config.iptablesBackend, {
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

  /** The restore input for one family (no live state needed). */
  render(family: Family): string {
    return renderRestore(this.#config, family, this.#filter)
  }

  /** The kernel filter the rules use now (auto resolved by the last install). */
  get filter(): FilterMode {
    return this.#filter
  }

  /**
   * Make the live rules match the config: per family one restore transaction that deletes all our
   * jumps (stale copies too), flushes and refills CHAIN, and adds one jump per hook. If a family
   * fails, families installed by this call are removed again before the error is thrown.
   */
  install(): Promise<ApplyResult> {
    return this.#serial(async () => {
      const backend = await this.detectBackend()
      const results: FamilyResult[] = []
      const done: Family[] = []
      try {
        for (let fi = 0; fi < FAMILIES.length; fi++) {
          const family = FAMILIES[fi]!
          const plan = planRules(this.#config, family, this.#filter)
          const optional = family === 'ipv6' && !this.#config.ipv6
          try {
            const table = await this.#readRaw(backend.backend, family)
            const input = renderInstall(plan, table)
            const r: FamilyResult = {
              family,
              changed: input !== null,
              jumpsRemoved: ownedJumps(table).length,
              input,
            }
            if (plan.skipped !== undefined) r.skipped = plan.skipped
            if (input !== null) {
              try {
                await this.#apply(backend.backend, family, input)
              } catch (e) {
                // auto: a kernel or iptables without xt_bpf (or u32) refuses the match; step down and
                // start over, so both families use the same filter.
                if (
                  this.#config.kernelFilter !== 'auto' ||
                  this.#filter === 'off' ||
                  !isIptablesError(e) ||
                  !isMissingMatch(e.stderr)
                )
                  throw e
                const next: FilterMode = this.#filter === 'bpf' ? 'u32' : 'off'
                this.#log.warn?.(
                  `kernel filter ${this.#filter} unavailable (${e.stderr.trim().split('\n')[0] ?? ''}); using ${next}`,
                )
                this.#filter = next
                results.length = 0
                fi = -1
                continue
              }
            }
            if (plan.skipped === undefined) done.push(family)
            results.push(r)
            this.#logResult('install', r)
          } catch (e) {
            // IPv6 off: cleaning stale IPv6 rules is a courtesy (ip6tables may not work at all).
            if (!optional) throw e
            this.#log.debug?.('ipv6 disabled; could not check for stale ip6tables rules', { error: String(e) })
            results.push({ family, changed: false, jumpsRemoved: 0, input: null, skipped: plan.skipped ?? '' })
          }
        }
      } catch (e) {
        for (const family of done) {
          try {
            await this.#removeFamily(backend.backend, family)
          } catch (undo) {
            this.#log.warn?.(`could not roll back ${family} rules after a failed install`, { error: String(undo) })
          }
        }
        throw e
      }
      return { backend, dryRun: this.#dryRun, families: results }
    })
  }

  /** Remove everything install() added (our jumps, then our chain). Nothing installed: no change, no error. */
  async remove(): Promise<ApplyResult> {
    const { backend, results } = await this.#eachFamily(async (b, family) => {
      try {
        return await this.#removeFamily(b, family)
      } catch (e) {
        if (family === 'ipv4' || this.#config.ipv6) throw e
        this.#log.debug?.('ipv6 disabled; could not check for ip6tables rules', { error: String(e) })
        const r: FamilyResult = {
          family,
          changed: false,
          jumpsRemoved: 0,
          input: null,
          skipped: 'IPv6 is disabled (--ipv6 off)',
        }
        return r
      }
    })
    return { backend, dryRun: this.#dryRun, families: results }
  }

  /** Live state of our rules per enabled family, with packet counters. Read-only. */
  async status(): Promise<RuleStatus> {
    const { backend, results } = await this.#eachFamily(async (b, family) =>
      family === 'ipv6' && !this.#config.ipv6
        ? undefined
        : compareTable(planRules(this.#config, family, this.#filter), await this.#readRaw(b, family)),
    )
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

  async #removeFamily(backend: Backend, family: Family): Promise<FamilyResult> {
    const table = await this.#readRaw(backend, family)
    const input = renderRemove(table)
    const r: FamilyResult = { family, changed: input !== null, jumpsRemoved: ownedJumps(table).length, input }
    if (input !== null) await this.#apply(backend, family, input)
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

  async #exec(argv: string[], input?: string): Promise<string> {
    let res
    try {
      res = await this.#run(argv, input === undefined ? {} : { input })
    } catch (e) {
      throw iptablesSpawnFailure(argv, e, input)
    }
    if (res.code === 0 && !res.timedOut) return res.stdout
    throw iptablesFailure(argv, res, { input, waitSeconds: this.#waitSeconds, timeoutMs: this.#timeoutMs })
  }

  /** The raw table of one family, with counters. */
  async #readRaw(backend: Backend, family: Family): Promise<SavedTable | undefined> {
    const save = binaries(backend, family).save
    // legacy: `-t raw` would load the raw table into the kernel even when nothing is there, so
    // read everything and pick raw out. nft: `-t raw` has no side effect and is much smaller.
    if (backend === 'nft') return parseSave(await this.#exec([save, '-c', '-t', TABLE])).get(TABLE)
    try {
      return parseSave(await this.#exec([save, '-c'])).get(TABLE)
    } catch (e) {
      // Without -t, legacy save lists tables from /proc/net/ip_tables_names, which only root may
      // read: a daemon with just CAP_NET_ADMIN/CAP_NET_RAW is refused. Asking for raw directly
      // works; it loads the raw table, which the install that follows needs anyway.
      if (!(isIptablesError(e) && e.kind === 'permission')) throw e
      return parseSave(await this.#exec([save, '-c', '-t', TABLE])).get(TABLE)
    }
  }

  async #apply(backend: Backend, family: Family, input: string): Promise<void> {
    if (this.#dryRun) return
    const restore = binaries(backend, family).restore
    if (this.#useWait) {
      const argv = [restore, '--noflush', `--wait=${this.#waitSeconds}`]
      try {
        await this.#exec(argv, input)
        return
      } catch (e) {
        if (!(isIptablesError(e) && /(unrecognized|invalid|unknown) option.*(w|wait)/.test(e.stderr))) throw e
        this.#log.debug?.(`${restore} does not know --wait; retrying without`)
        this.#useWait = false
      }
    }
    await this.#exec([restore, '--noflush'], input)
  }
}
