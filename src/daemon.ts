// Daemon lifecycle: the order of start and stop, signals and reload. Start binds the queue before
// installing rules (a rule never points at an empty queue for longer than it must); stop removes the
// rules first, then accepts every held packet and drains what is still queued, then unbinds.
import type { Config } from './config/types.js'
import { loadConfig, describeRules, type LoadedConfig } from './config/load.js'
import { Shaper } from './shaper.js'
import { Metrics } from './metrics.js'
import { HttpServer } from './http.js'
import { constants } from './nfqueue.js'
import type { Logger } from './log.js'
import type { HoldRule } from './policy/compile.js'
import { queuedQtypes } from './rules/plan.js'
import { errorMessage } from './errors.js'

/** What the daemon needs from the rule manager (src/rules/manager.ts). */
export interface Rules {
  install(): Promise<unknown>
  remove(): Promise<unknown>
  /** Whether the installed rules still match the plan (another process may have removed them). */
  upToDate?(): Promise<boolean>
  describe?(): string
}

/** How often managed rules are checked and put back if something removed them. */
export const RECONCILE_INTERVAL_MS = 30_000

export interface DaemonOptions {
  argv: readonly string[]
  loaded: LoadedConfig
  log: Logger
  /** Builds the rule manager for a config ('manage' mode only). */
  createRules: (config: Config, log: Logger) => Rules
  createShaper?: (
    config: Config,
    rules: HoldRule[],
    onFatal: (queue: number, err: NodeJS.ErrnoException) => void,
  ) => Shaper
  env?: NodeJS.ProcessEnv
  reconcileIntervalMs?: number
}

/** Fields a SIGHUP reload can change; everything else needs a restart. */
const RELOADABLE: (keyof Config)[] = ['delayMs', 'qtypes', 'mode', 'pairWindowMs', 'maxHeld', 'dryRun', 'logLevel']

export class Daemon {
  readonly #opts: DaemonOptions
  #config: Config
  #rules: HoldRule[]
  #shaper: Shaper | undefined
  #ruleManager: Rules | undefined
  #rulesInstalled = false
  #http: HttpServer | undefined
  #metrics: Metrics | undefined
  #stopping: Promise<number> | undefined
  #fatal: NodeJS.ErrnoException | undefined
  #reconcileTimer: NodeJS.Timeout | undefined
  /** Resolves with the exit code once stopped. */
  readonly done: Promise<number>
  #resolveDone!: (code: number) => void

  constructor(opts: DaemonOptions) {
    this.#opts = opts
    this.#config = opts.loaded.config
    this.#rules = opts.loaded.rules
    this.done = new Promise(r => {
      this.#resolveDone = r
    })
  }

  get metrics(): Metrics | undefined {
    return this.#metrics
  }

  async start(): Promise<void> {
    const { log } = this.#opts
    const c = this.#config
    log.info('starting', {
      queues: `${c.queue}${c.queues > 1 ? `..${c.queue + c.queues - 1}` : ''}`,
      holds: describeRules(this.#rules),
      mode: c.mode,
      dryRun: c.dryRun,
      rules: c.rules,
      maxHeld: c.maxHeld,
    })
    const onFatal = (queue: number, err: NodeJS.ErrnoException): void => {
      log.error('data-plane thread died; DNS passes unshaped (fail-open) until restart', { queue, err })
      this.#fatal = err
      void this.stop('fatal')
    }
    this.#shaper = this.#opts.createShaper
      ? this.#opts.createShaper(c, this.#rules, onFatal)
      : new Shaper({ config: c, rules: this.#rules, onFatal })
    this.#shaper.start()
    log.info('queue bound', { queue: c.queue, queues: c.queues })

    this.#metrics = new Metrics({
      constants,
      queueStats: () => this.#shaper?.stats() ?? [],
      policy: () => this.#shaper?.policy,
      onReadError: (source, err) =>
        log.warn(
          `cannot read /proc ${source}; its metrics are left out (it is root-readable only: run as root or add CAP_DAC_READ_SEARCH)`,
          { err: err instanceof Error ? err.message : String(err) },
        ),
      queues: () => Array.from({ length: this.#config.queues }, (_, i) => this.#config.queue + i),
    })
    try {
      if (c.rules === 'manage') {
        this.#ruleManager = this.#opts.createRules(c, log)
        await this.#ruleManager.install()
        this.#rulesInstalled = true
        log.info('rules installed', { detail: this.#ruleManager.describe?.() })
      } else {
        log.info('rules not managed (--rules none): install them with `dns-shaper rules install` or your own tooling')
      }
      if (c.metricsListen) {
        this.#http = new HttpServer(
          {
            metrics: () => this.#metrics!.render(),
            contentType: this.#metrics.contentType,
            healthy: () => this.health(),
            ready: () => this.readiness(),
          },
          e => log.warn('metrics scrape failed', { err: e }),
        )
        const addr = await this.#http.listen(c.metricsListen)
        log.info('metrics listening', { address: addr.address, port: addr.port })
      }
    } catch (e) {
      await this.stop('start failed')
      throw e
    }
    // A ref'd timer: besides reconciling rules it keeps the event loop alive, since the data plane
    // runs on its own thread and holds nothing the loop would wait for.
    this.#reconcileTimer = setInterval(() => {
      void this.reconcile()
    }, this.#opts.reconcileIntervalMs ?? RECONCILE_INTERVAL_MS)
    log.info('ready')
  }

  /**
   * Puts the rules back if they drifted: e.g. an old pod of a rolling update removed them while
   * this one was starting, or an operator flushed the raw table. Returns whether it reinstalled.
   */
  async reconcile(): Promise<boolean> {
    const m = this.#ruleManager
    if (!m?.upToDate || !this.#rulesInstalled || this.#stopping) return false
    try {
      if (await m.upToDate()) return false
      if (this.#stopping) return false
      await m.install()
      this.#metrics?.rulesReinstalled.inc()
      this.#opts.log.warn('rules had drifted (removed or changed by someone else); reinstalled them')
      return true
    } catch (e) {
      this.#opts.log.error('rule check failed', { err: errorMessage(e) })
      return false
    }
  }

  health(): { ok: boolean; detail: string } {
    if (this.#fatal) return { ok: false, detail: `data plane died: ${this.#fatal.message}` }
    const ok = this.#shaper?.running ?? false
    return { ok, detail: ok ? 'data plane running, queue bound' : 'data plane not running' }
  }

  readiness(): { ok: boolean; detail: string } {
    const h = this.health()
    if (!h.ok) return h
    if (this.#stopping) return { ok: false, detail: 'stopping' }
    if (this.#config.rules === 'none') return { ok: true, detail: 'queue bound; rules unmanaged' }
    return this.#rulesInstalled
      ? { ok: true, detail: 'queue bound, rules installed' }
      : { ok: false, detail: 'rules not installed yet' }
  }

  /** SIGHUP: re-read flags, env and config file; apply the policy part. A bad file keeps the old policy. */
  reload(): boolean {
    const { log } = this.#opts
    try {
      const next = loadConfig(this.#opts.argv, { env: this.#opts.env })
      const restartOnly = (Object.keys(next.config) as (keyof Config)[]).filter(
        k => !RELOADABLE.includes(k) && JSON.stringify(next.config[k]) !== JSON.stringify(this.#config[k]),
      )
      if (restartOnly.length)
        log.warn('these settings change only on restart; kept the running values', { settings: restartOnly })
      const merged: Config = { ...this.#config }
      for (const k of RELOADABLE) (merged as unknown as Record<string, unknown>)[k] = next.config[k]
      // The kernel filter's program lists the queued types: when they change, so must the rules.
      const filterChanged = JSON.stringify(queuedQtypes(merged)) !== JSON.stringify(queuedQtypes(this.#config))
      this.#shaper?.reload(merged, next.rules)
      this.#config = merged
      this.#rules = next.rules
      if (filterChanged && this.#ruleManager && this.#rulesInstalled) void this.#reinstallRules()
      this.#metrics?.reloads.inc({ result: 'ok' })
      log.info('config reloaded', { holds: describeRules(next.rules), mode: merged.mode, dryRun: merged.dryRun })
      return true
    } catch (e) {
      this.#metrics?.reloads.inc({ result: 'error' })
      log.error('config reload failed; the running policy is unchanged', {
        err: errorMessage(e),
      })
      return false
    }
  }

  /**
   * After a reload that changed the queued types: a new manager for the new config replaces the rules
   * in one transaction per family. Until then the old program queues the old types (a newly held type
   * passes unshaped for those milliseconds, as it did before the reload; a dropped one is accepted).
   */
  async #reinstallRules(): Promise<void> {
    const { log } = this.#opts
    try {
      const m = this.#opts.createRules(this.#config, log)
      await m.install()
      if (this.#stopping) {
        await m.remove() // stop() removed the old rules meanwhile; do not leave the new ones behind
        return
      }
      this.#ruleManager = m
      log.info('rules updated for the reloaded query types', { detail: m.describe?.() })
    } catch (e) {
      log.error('could not update the rules after reload; the previous rules stay', {
        err: errorMessage(e),
      })
    }
  }

  /** Idempotent. Rules go first so the queue empties; then held packets are accepted and the queue unbound. */
  stop(reason: string): Promise<number> {
    if (this.#stopping) return this.#stopping
    this.#stopping = (async () => {
      const { log } = this.#opts
      log.info('stopping', { reason })
      clearInterval(this.#reconcileTimer)
      let code = this.#fatal ? 1 : 0
      if (this.#ruleManager && this.#rulesInstalled) {
        try {
          await this.#ruleManager.remove()
          this.#rulesInstalled = false
          log.info('rules removed')
        } catch (e) {
          code = 1
          log.error('could not remove rules; remove them with `dns-shaper rules remove`', {
            err: errorMessage(e),
          })
        }
      }
      this.#shaper?.stop()
      const totals = summarize(this.#shaper?.stats() ?? [])
      await this.#http?.close()
      log.info('stopped', totals)
      this.#resolveDone(code)
      return code
    })()
    return this.#stopping
  }
}

function summarize(stats: ReturnType<Shaper['stats']>): Record<string, number> {
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
