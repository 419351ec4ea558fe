// `dns-shaper config print`: the effective config as JSON, each setting with its value and where that
// value came from (default, file, env, flag; `by` names the exact flag, variable or file key). The
// per-type holds show the hold each held type gets, which is how the delay/holds precedence becomes
// visible. Pure: renders what loadConfig returned.
import type { Config } from './types.js'
import type { LoadedConfig, Origin } from './load.js'
import { qtypeName } from '../dataplane/qtypes.js'

type Printed = { value: unknown } & Origin

/** Each flag's value in the form an operator writes it (the Config field it sets, formatted). */
const VALUES: Record<string, (c: Config) => unknown> = {
  queue: c => c.queue,
  queues: c => c.queues,
  delay: c => c.delayMs,
  qtypes: c => c.qtypes.map(qtypeName),
  mode: c => c.mode,
  'pair-window': c => c.pairWindowMs,
  rules: c => c.rules,
  'dns-port': c => c.dnsPort,
  'dns-ip': c => c.dnsIp,
  'resolv-conf': c => c.resolvConf,
  interfaces: c => c.interfaces,
  hooks: c => c.hooks,
  ipv4: c => c.ipv4,
  ipv6: c => c.ipv6,
  'iptables-backend': c => c.iptablesBackend,
  'kernel-filter': c => c.kernelFilter,
  'metrics-listen': c => c.metricsListen,
  'probe-listen': c => c.probeListen,
  'max-held': c => c.maxHeld,
  'dry-run': c => c.dryRun,
  'log-level': c => c.logLevel,
  config: c => c.configFile ?? null,
  'config-poll-interval': c => c.configPollIntervalS,
}

export interface PrintedConfig {
  [setting: string]: Printed | { value: Record<string, number>; source: Record<string, Origin> }
}

/** The effective config of `loaded`, setting by setting, in the order of `flags`. */
export function printableConfig(loaded: LoadedConfig, flags: readonly string[]): PrintedConfig {
  const out: PrintedConfig = {}
  for (const f of flags) {
    if (f === 'holds') {
      const value: Record<string, number> = {}
      const source: Record<string, Origin> = {}
      for (const r of loaded.rules) {
        const name = qtypeName(r.qtype)
        value[name] = r.holdMs
        source[name] = loaded.origins?.holds.get(r.qtype) ?? { source: 'default' }
      }
      out[f] = { value, source }
      continue
    }
    const get = VALUES[f]
    if (!get) throw new Error(`config print: no printer for --${f}`)
    const origin = loaded.origins?.settings[f] ?? { source: 'default' }
    out[f] = { value: get(loaded.config), ...origin }
    // "auto" resolves to addresses: say so beside them.
    if (f === 'dns-ip' && loaded.config.dnsIpAuto)
      out[f] = { ...(out[f] as Printed), auto: { resolvConf: loaded.config.dnsIpAuto.resolvConf } } as Printed
  }
  return out
}
