// Config reloads and rule repairs: the daemon's own counters, set by the daemon when it applies a
// config or puts rules back. Named like Prometheus's own reload series so the usual alerts carry over.
import type client from 'prom-client'
import { prom } from './prom.js'

export class ReloadMetrics {
  readonly reloads: client.Counter<'result'>
  /** Unix time the config was last applied: at start, then at each successful reload. */
  readonly configLastReload: client.Gauge
  /** 1 when the last reload (or the start) applied the config, 0 when the last reload was refused. */
  readonly configLastReloadSuccessful: client.Gauge
  readonly rulesReinstalled: client.Counter
  /** Settings the last reload could not apply without a restart. */
  readonly configRestartRequired: client.Gauge<'setting'>

  constructor(registry: client.Registry) {
    this.reloads = new prom.Counter({
      name: 'dns_shaper_config_reloads_total',
      help: 'Config reloads (SIGHUP, or the --config file changed), by result; error also counts the --config file found unreadable.',
      labelNames: ['result'],
      registers: [registry],
    })
    // Named like Prometheus's own prometheus_config_last_reload_success_timestamp_seconds and
    // _successful, so the usual "config reload failed" alert carries over.
    this.configLastReload = new prom.Gauge({
      name: 'dns_shaper_config_last_reload_timestamp_seconds',
      help: 'Unix time the config was last applied: at start, then at each successful reload.',
      registers: [registry],
    })
    this.configLastReloadSuccessful = new prom.Gauge({
      name: 'dns_shaper_config_last_reload_successful',
      help: 'Whether the last config reload applied (1) or was refused, keeping the running config (0).',
      registers: [registry],
    })
    this.configRestartRequired = new prom.Gauge({
      name: 'dns_shaper_config_restart_required',
      help: 'Settings of the config file whose new value waits for a restart (1), as named in the log at the last reload: the running value stays (max-held is raised as far as the slots preallocated at start).',
      labelNames: ['setting'],
      registers: [registry],
    })
    this.rulesReinstalled = new prom.Counter({
      name: 'dns_shaper_rules_reinstalled_total',
      help: 'Times the managed rules were found missing or changed and put back.',
      registers: [registry],
    })
    this.reloads.inc({ result: 'ok' }, 0)
    this.reloads.inc({ result: 'error' }, 0)
    // Successful until a reload is refused (the counter alone cannot tell whether the last reload
    // failed, since an ok may have followed the error); the daemon records the start with recordApplied().
    this.configLastReloadSuccessful.set(1)
  }

  /** The config in force was applied at `nowMs` (milliseconds since the epoch): at start, or by a reload. */
  recordApplied(nowMs: number): void {
    this.configLastReloadSuccessful.set(1)
    this.configLastReload.set(nowMs / 1000)
  }

  /** The settings a reload could not apply without a restart (empty: none); replaces the last list. */
  recordRestartRequired(settings: readonly string[]): void {
    this.configRestartRequired.reset()
    for (const setting of settings) this.configRestartRequired.set({ setting }, 1)
  }

  /**
   * Counts a config reload (SIGHUP, the --config poller, or the poller finding the file unreadable) and
   * records its result and, when it applied, its time (milliseconds since the epoch).
   */
  recordReload(ok: boolean, nowMs: number = Date.now()): void {
    this.reloads.inc({ result: ok ? 'ok' : 'error' })
    if (ok) this.recordApplied(nowMs)
    else this.configLastReloadSuccessful.set(0)
  }
}
