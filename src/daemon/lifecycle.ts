// Daemon lifecycle: the order of start and stop, signals and reload. Start binds the queue before
// installing rules (a rule never points at an empty queue for longer than it must); stop first accepts
// every held packet, drains what is still queued and unbinds (iptables may wait seconds on the xtables
// lock, held packets must not), then removes the rules within a deadline (--queue-bypass lets DNS pass
// meanwhile). Every rule operation goes through one RuleSync, in order; stop may come at any point of start. The daemon holds
// one Plan; a reload compiles the next, diffs the two and hands each changed part to its owner.
import type { Config } from '../config/types.js'
import { loadConfig, describeRules, RECONCILE_INTERVAL_MS, type LoadedConfig } from '../config/load.js'
import { Shaper } from '../dataplane/shaper.js'
import { Metrics } from './metrics.js'
import { HttpServer, PROBE_HTTP_LIMITS } from './http.js'
import { constants } from '../dataplane/constants.js'
import type { Logger } from '../log.js'
import { compilePlan, type Plan } from '../plan/plan.js'
import { RuleSync, type Rules } from '../rules/sync.js'
import { registerRuleMetrics } from '../rules/metrics.js'
import { errorMessage } from '../errors.js'
import { isIptablesError } from '../rules/errors.js'
import { COMMIT, NODE_VERSION, VERSION } from '../version.js'
import { ConfigWatcher, type WatchClock } from '../config/watch.js'
import { readConfigFile } from '../config/read-file.js'
import { removeRulesWithin, STOP_RULES_DEADLINE_MS, summarize } from './stop.js'
import { nextPlan } from './reload.js'

export type { Rules } from '../rules/sync.js'
export { STOP_RULES_DEADLINE_MS } from './stop.js'

export interface DaemonOptions {
  argv: readonly string[]
  loaded: LoadedConfig
  log: Logger
  /**
   * Builds the daemon's one rule manager ('manage' mode only), from the start-only settings (backend);
   * every operation then gets the plan's rule part through rule sync.
   */
  createRules: (config: Config, log: Logger) => Rules
  createShaper?: (plan: Plan, onFatal: (queue: number, err: NodeJS.ErrnoException) => void) => Shaper
  env?: NodeJS.ProcessEnv
  reconcileIntervalMs?: number
  /** How long stop's rule phase (removal, then the hooks) may take before the daemon exits without it. */
  stopRulesDeadlineMs?: number
  /** Injected into the --config poller and the reload metrics (tests); real timers, file and clock otherwise. */
  configWatch?: {
    clock?: WatchClock
    random?: () => number
    readFile?: (path: string) => Buffer | string
    /** Milliseconds since the epoch. */
    now?: () => number
  }
}

export class Daemon {
  readonly #opts: DaemonOptions
  /** The plan in force: compiled at construction, replaced by each reload that applies. */
  #plan: Plan
  #shaper: Shaper | undefined
  #shaperStopped = false
  #rules: RuleSync | undefined
  #http: HttpServer | undefined
  #probeHttp: HttpServer | undefined
  /** The reinstall a reload queued and that has not finished. */
  #reinstall: Promise<void> | undefined
  #metrics: Metrics | undefined
  #stopping: Promise<number> | undefined
  #fatal: NodeJS.ErrnoException | undefined
  #reconcileTimer: NodeJS.Timeout | undefined
  #watcher: ConfigWatcher | undefined
  /** Settles when start() has returned or thrown; stop() waits for it. */
  #started: Promise<void> = Promise.resolve()
  /** Resolves with the exit code once stopped. */
  readonly done: Promise<number>
  #resolveDone!: (code: number) => void

  constructor(opts: DaemonOptions) {
    this.#opts = opts
    this.#plan = compilePlan(opts.loaded)
    this.done = new Promise(r => {
      this.#resolveDone = r
    })
  }

  get metrics(): Metrics | undefined {
    return this.#metrics
  }

  /**
   * Binds, installs the rules, listens. A stop() meanwhile wins: start returns at its next step
   * without going on (no listener, no reconcile timer), and stop removes whatever the install put in.
   */
  async start(): Promise<void> {
    const p = this.#start()
    this.#started = p.then(
      () => {},
      () => {},
    )
    try {
      await p
    } catch (e) {
      await this.stop('start failed')
      throw e
    }
  }

  async #start(): Promise<void> {
    const { log } = this.#opts
    const plan = this.#plan
    const c = plan.settings
    if (this.#stopping) return // a signal before start: nothing to begin
    log.info('starting', {
      version: VERSION,
      commit: COMMIT,
      node: NODE_VERSION,
      queues: `${c.queue}${c.queues > 1 ? `..${c.queue + c.queues - 1}` : ''}`,
      holds: describeRules(plan.holds),
      mode: c.mode,
      dryRun: c.dryRun,
      rules: c.rules,
      maxHeld: c.maxHeld,
    })
    if (c.dnsIpAuto) {
      // What `--dns-ip auto` found, so an operator can see which traffic is shaped and why.
      log.info('dns-ip auto: shaping DNS to the nameservers of resolv.conf', {
        resolvConf: c.dnsIpAuto.resolvConf,
        dnsIp: c.dnsIp,
        ...(c.dnsIpAuto.ignored.length ? { ignored: c.dnsIpAuto.ignored } : {}),
      })
    }
    const onFatal = (queue: number, err: NodeJS.ErrnoException): void => {
      log.error('data-plane thread died; DNS passes unshaped (fail-open) until restart', { queue, err })
      this.#fatal = err
      void this.stop('fatal')
    }
    this.#shaper = this.#opts.createShaper ? this.#opts.createShaper(plan, onFatal) : new Shaper({ plan, onFatal })
    this.#shaper.start()
    log.info('queue bound', { queue: c.queue, queues: c.queues })

    this.#metrics = new Metrics({
      constants,
      queueStats: () => this.#shaper?.stats() ?? [],
      policy: () => this.#shaper?.policy,
      onReadError: (source, err) =>
        log.warn(
          source === 'nfnetlink_queue'
            ? `cannot read /proc ${source}; its metrics are left out (it is root-readable only: run as root or add CAP_DAC_READ_SEARCH)`
            : `conntrack source ${source} unavailable; dns_shaper_conntrack_source shows the one in use`,
          { err: errorMessage(err) },
        ),
      queues: () => [...this.#plan.queues],
    })
    // The config in force was applied now (the poller's and SIGHUP's reloads move it on).
    this.#metrics.recordApplied(this.#now())
    if (c.rules === 'manage') {
      const metrics = this.#metrics
      this.#rules = new RuleSync(this.#opts.createRules(c, log), plan.rules, {
        log,
        onReinstalled: () => metrics.rulesReinstalled.inc(),
      })
      const sync = this.#rules
      registerRuleMetrics(metrics.registry, () => sync.health())
      try {
        await this.#rules.install()
      } catch (e) {
        // Another program (kube-proxy on a big legacy node) held the xtables lock for longer than we
        // waited: that passes. Stay up unready; the reconcile timer retries, as it does after a failed
        // reinstall. Anything else (no iptables, no privileges) will not pass by itself: exit.
        if (!isIptablesError(e) || (e.kind !== 'locked' && e.kind !== 'timeout')) throw e
        log.error('could not install the rules: the xtables lock is busy; /readyz answers 503 until a retry succeeds', {
          err: errorMessage(e),
          retryEveryMs: this.#opts.reconcileIntervalMs ?? RECONCILE_INTERVAL_MS,
        })
      }
    } else {
      log.info('rules not managed (--rules none): install them with `dns-shaper rules install` or your own tooling')
    }
    if (this.#stopping) return
    const probes = { healthy: () => this.health(), ready: () => this.readiness() }
    if (c.metricsListen) {
      const metrics = this.#metrics
      this.#http = new HttpServer(
        { metrics: () => metrics.render(), contentType: metrics.contentType, ...probes },
        e => log.warn('metrics scrape failed', { err: e }),
        e => log.error('metrics listener error', { err: e }),
      )
      const addr = await this.#http.listen(c.metricsListen)
      log.info('metrics listening', { address: addr.address, port: addr.port })
    }
    if (this.#stopping) return
    // Probes apart from scrapes, with limits of their own: whatever holds sockets on the metrics
    // port, kubelet's liveness and readiness probes are answered here.
    if (c.probeListen) {
      this.#probeHttp = new HttpServer(
        probes,
        undefined,
        e => log.error('probe listener error', { err: e }),
        PROBE_HTTP_LIMITS,
      )
      const addr = await this.#probeHttp.listen(c.probeListen)
      log.info('probes listening', { address: addr.address, port: addr.port })
    }
    if (this.#stopping) return
    // A ref'd timer: besides reconciling rules it keeps the event loop alive, since the data plane
    // runs on its own thread and holds nothing the loop would wait for.
    this.#reconcileTimer = setInterval(() => {
      void this.reconcile()
    }, this.#opts.reconcileIntervalMs ?? RECONCILE_INTERVAL_MS)
    this.#startWatcher()
    log.info('ready')
  }

  #now(): number {
    return (this.#opts.configWatch?.now ?? Date.now)()
  }

  /**
   * Polls the --config file (a mounted ConfigMap is updated in place by kubelet) and applies a change
   * the way SIGHUP does, so editing the ConfigMap needs no rollout.
   */
  #startWatcher(): void {
    const c = this.#plan.settings
    if (!c.configFile || c.configPollIntervalS === 0) return
    const { log } = this.#opts
    const w = this.#opts.configWatch
    const path = c.configFile
    this.#watcher = new ConfigWatcher({
      path,
      intervalMs: c.configPollIntervalS * 1000,
      readFile: w?.readFile ?? readConfigFile,
      clock: w?.clock,
      random: w?.random,
      onChange: () => {
        log.info('config file changed; reloading', { file: path })
        this.reload()
      },
      // An unreadable file (a deleted ConfigMap key, a file grown over 1 MiB, a directory in its place)
      // is a failed reload: the node runs a config its file no longer holds, and the reload alert
      // must say so. The watcher reports each distinct error once and applies the file once it reads.
      onError: e => {
        this.#metrics?.recordReload(false, this.#now())
        log.error('cannot read the config file; the running config stays until it can be read', {
          file: path,
          err: errorMessage(e),
        })
      },
    })
    this.#watcher.start(this.#opts.loaded.configHash)
    log.info('watching the config file for changes', { file: path, intervalS: c.configPollIntervalS })
  }

  /**
   * Puts the rules back if they drifted (see RuleSync.reconcile; overlapping calls share one run).
   * Returns whether it reinstalled.
   */
  reconcile(): Promise<boolean> {
    if (this.#stopping || this.#rules === undefined) return Promise.resolve(false)
    return this.#rules.reconcile()
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
    if (this.#plan.settings.rules === 'none') return { ok: true, detail: 'queue bound; rules unmanaged' }
    const r = this.#rules?.health()
    if (r === undefined) return { ok: false, detail: 'rules not installed yet' }
    if (r.problem !== undefined) return { ok: false, detail: r.problem }
    const missing = (Object.keys(r.installed) as (keyof typeof r.installed)[]).filter(f => !r.installed[f])
    return missing.length === 0
      ? { ok: true, detail: 'queue bound, rules installed' }
      : { ok: false, detail: `rules missing or outdated: ${missing.join(', ')}` }
  }

  /** SIGHUP: re-read flags, env and config file; apply the policy part. A bad file keeps the old policy. */
  reload(): boolean {
    const { log } = this.#opts
    try {
      const next = loadConfig(this.#opts.argv, { env: this.#opts.env })
      // Whatever path applied this content (SIGHUP or the poller), the poller need not apply it again.
      if (next.configHash) this.#watcher?.markApplied(next.configHash)
      const { plan, changed, restart } = nextPlan(this.#plan, next, this.#shaper?.heldCapacity, log)
      // Each changed part to its owner: the table to the data plane, the queued types to the rules.
      if (changed.policy) this.#shaper?.reload(plan.policy)
      if (changed.logLevel) log.setLevel?.(plan.settings.logLevel)
      this.#plan = plan
      if (changed.rules && this.#rules !== undefined) {
        // Every check and install from now on compares with this plan's rules, queued ones included.
        this.#rules.setPlan(plan.rules)
        // The kernel filter's program lists the queued types: the rules are replaced.
        if (!this.#stopping) void this.#reinstallRules(this.#rules)
      }
      this.#metrics?.recordReload(true, this.#now())
      this.#metrics?.recordRestartRequired(restart)
      log.info('config reloaded', {
        holds: describeRules(plan.holds),
        mode: plan.settings.mode,
        dryRun: plan.settings.dryRun,
      })
      return true
    } catch (e) {
      this.#metrics?.recordReload(false, this.#now())
      log.error('config reload failed; the running policy is unchanged', {
        err: errorMessage(e),
      })
      return false
    }
  }

  /**
   * After a reload that changed the queued types: the rules are replaced in one transaction per
   * family, queued behind any operation still running, with the rule plan last handed over. Until then the old
   * program queues the old types (a newly held type passes unshaped for those milliseconds, as it
   * did before the reload; a dropped one is accepted). A failure leaves /readyz at 503 until a
   * reconcile succeeds.
   */
  async #reinstallRules(sync: RuleSync): Promise<void> {
    const { log } = this.#opts
    // Reloads in a row share one queued reinstall (the last config wins): log its outcome once.
    const p = sync.reinstall()
    if (p === this.#reinstall) return
    this.#reinstall = p
    try {
      await p
      log.info('rules updated for the reloaded query types')
    } catch (e) {
      log.error('could not update the rules after reload; the previous rules stay until a reconcile succeeds', {
        err: errorMessage(e),
      })
    } finally {
      if (this.#reinstall === p) this.#reinstall = undefined
    }
  }

  /**
   * Last resort, synchronous: accepts every held packet and unbinds, for exit paths that cannot wait
   * for stop() (process.exit, a second crash). Rules stay (--queue-bypass lets DNS pass while no one
   * is bound); `dns-shaper rules remove` or the next start cleans them. No-op once the queue is stopped.
   */
  stopNow(reason: string, detail: Record<string, unknown> = {}): void {
    if (this.#shaperStopped || this.#shaper === undefined) return
    this.#stopShaper()
    this.#opts.log.error('exiting without a clean stop: released held packets and unbound the queue', {
      reason,
      ...summarize(this.#shaper.stats()),
      ...detail,
    })
  }

  #stopShaper(): void {
    if (this.#shaperStopped) return
    this.#shaperStopped = true
    this.#shaper?.stop()
  }

  /**
   * Idempotent. Held packets go first: accept them, drain, unbind, at once whatever the rule
   * operations are doing (one may be waiting on the xtables lock). Then the rules, within
   * STOP_RULES_DEADLINE_MS: removal, then (nft) the base chains, whose deletion would flush the queue
   * and so must come after the release.
   */
  stop(reason: string): Promise<number> {
    if (this.#stopping) return this.#stopping
    this.#stopping = (async () => {
      const { log } = this.#opts
      log.info('stopping', { reason })
      clearInterval(this.#reconcileTimer)
      this.#watcher?.stop()
      // start() may still be installing (it returns at its next step, never binding after a stop):
      // a shaper it bound is released now, not after the install.
      this.#stopShaper()
      const rulesGone = await removeRulesWithin(
        this.#started,
        () => this.#rules,
        this.#opts.stopRulesDeadlineMs ?? STOP_RULES_DEADLINE_MS,
        log,
      )
      const code = this.#fatal || !rulesGone ? 1 : 0
      const totals = summarize(this.#shaper?.stats() ?? [])
      await Promise.all([this.#http?.close(), this.#probeHttp?.close()])
      log.info('stopped', totals)
      this.#resolveDone(code)
      return code
    })()
    return this.#stopping
  }
}
