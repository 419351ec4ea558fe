// Turns flags, DNS_SHAPER_* environment variables and an optional JSON config file into a validated
// Config, or throws ConfigError naming the flag and what it accepts. Every value is parsed here, once
// (CIDRs, interface names, host:port included), so a bad one exits 2 before anything is bound. No side
// effects beyond reading the config file.
import fs from 'node:fs'
import type { Config, Hook, IptablesBackend, KernelFilter, LogLevel, RulesMode, ShapeMode } from './types.js'
import { ConfigError, errorMessage } from '../errors.js'
import { parseQtype, qtypeName } from '../dataplane/qtypes.js'
import type { HoldRule } from '../dataplane/policy.js'
import {
  DEFAULT_MAX_HELD,
  MAX_HELD,
  MAX_HOLD_CLASSES,
  MAX_HOLD_MS,
  MAX_PAIR_WINDOW_MS,
  MEMORY_BUDGET_BYTES,
  preallocatedBytes,
} from '../dataplane/limits.js'
import { cidrFlag } from './cidr.js'
import { interfaceFlag } from './interface.js'
import { parseListen } from './host-port.js'
import { parseFlags } from './flags.js'
import { bool, int, list, ms, oneOf, type RawValue } from './values.js'
import { DEFAULT_RESOLV_CONF, nameserversFrom } from './resolv-conf.js'
import { contentHash, DEFAULT_POLL_INTERVAL_S } from './watch.js'

export type { Config } from './types.js'

/** Port 9153 is CoreDNS's and 9253 node-local-dns's metrics port: stay clear of both. */
export const DEFAULT_METRICS_LISTEN = '127.0.0.1:9363'

export const DEFAULTS: Config = {
  queue: 0,
  queues: 1,
  delayMs: 5,
  qtypes: [28],
  mode: 'pair',
  pairWindowMs: 5,
  rules: 'manage',
  dnsPort: 53,
  dnsIp: [],
  resolvConf: DEFAULT_RESOLV_CONF,
  interfaces: [],
  hooks: ['prerouting', 'output'],
  ipv4: true,
  ipv6: true,
  iptablesBackend: 'auto',
  kernelFilter: 'auto',
  metricsListen: DEFAULT_METRICS_LISTEN,
  maxHeld: DEFAULT_MAX_HELD,
  dryRun: false,
  logLevel: 'info',
  configPollIntervalS: DEFAULT_POLL_INTERVAL_S,
}

/** `--dns-ip auto` is resolved once every source is applied (--resolv-conf may come after it). */
const AUTO = Symbol('dns-ip auto')
type Loading = Config & { [AUTO]?: string }

type Setter = (c: Config, raw: RawValue, flag: string) => void

const setters: Record<string, Setter> = {
  queue: (c, v, f) => {
    c.queue = int(v, f, 0, 65535)
  },
  queues: (c, v, f) => {
    c.queues = int(v, f, 1, 64)
  },
  delay: (c, v, f) => {
    c.delayMs = ms(v, f, MAX_HOLD_MS)
  },
  qtypes: (c, v, f) => {
    const types = list(v).map(t => {
      const n = parseQtype(t)
      if (n === undefined)
        throw new ConfigError(
          f,
          `"${t}" is not a DNS type`,
          'type names (AAAA, HTTPS, SVCB, ...) or numbers 1..65535, comma-separated',
        )
      return n
    })
    c.qtypes = [...new Set(types)]
  },
  mode: (c, v, f) => {
    c.mode = oneOf<ShapeMode>(v, f, ['fixed', 'pair'])
  },
  'pair-window': (c, v, f) => {
    c.pairWindowMs = ms(v, f, MAX_PAIR_WINDOW_MS)
  },
  rules: (c, v, f) => {
    c.rules = oneOf<RulesMode>(v, f, ['manage', 'none'])
  },
  'dns-port': (c, v, f) => {
    c.dnsPort = int(v, f, 1, 65535)
  },
  'dns-ip': (c, v, f) => {
    const items = list(v)
    if (items.some(x => x.toLowerCase() === 'auto')) {
      if (items.length > 1) throw new ConfigError(f, '"auto" stands alone', 'auto, or comma-separated addresses/CIDRs')
      // The flag that said auto, for the error if resolv.conf cannot give addresses.
      ;(c as Loading)[AUTO] = f
      c.dnsIp = []
      return
    }
    delete (c as Loading)[AUTO]
    c.dnsIp = items.map(x => cidrFlag(x, f))
  },
  'resolv-conf': (c, v, f) => {
    const p = String(v).trim()
    if (p === '') throw new ConfigError(f, 'needs a path', 'the resolv.conf --dns-ip auto reads, e.g. /etc/resolv.conf')
    c.resolvConf = p
  },
  interfaces: (c, v, f) => {
    c.interfaces = list(v).map(i => interfaceFlag(i, f))
  },
  hooks: (c, v, f) => {
    const hooks = list(v).map(h => oneOf<Hook>(h, f, ['prerouting', 'output']))
    if (hooks.length === 0) throw new ConfigError(f, 'no hook given', 'prerouting,output')
    c.hooks = [...new Set(hooks)]
  },
  ipv4: (c, v, f) => {
    c.ipv4 = bool(v, f)
  },
  ipv6: (c, v, f) => {
    c.ipv6 = bool(v, f)
  },
  'iptables-backend': (c, v, f) => {
    c.iptablesBackend = oneOf<IptablesBackend>(v, f, ['auto', 'nft', 'legacy'])
  },
  'kernel-filter': (c, v, f) => {
    c.kernelFilter = oneOf<KernelFilter>(v, f, ['auto', 'bpf', 'u32', 'off'])
  },
  'metrics-listen': (c, v, f) => {
    c.metricsListen = parseListen(String(v), f)
  },
  'max-held': (c, v, f) => {
    c.maxHeld = int(v, f, 1, MAX_HELD)
  },
  'dry-run': (c, v, f) => {
    c.dryRun = bool(v, f)
  },
  'log-level': (c, v, f) => {
    c.logLevel = oneOf<LogLevel>(v, f, ['debug', 'info', 'warn', 'error'])
  },
  config: (c, v) => {
    c.configFile = String(v)
  },
  'config-poll-interval': (c, v, f) => {
    c.configPollIntervalS = int(v, f, 0, 86400)
  },
}

/** Flags `dns-shaper run` accepts (without the leading --); the DaemonSet test checks against this. */
export const RUN_FLAGS = Object.keys(setters)
const BOOLEAN_FLAGS = new Set(['ipv4', 'ipv6', 'dry-run'])

/** Per-type holds from the config file: { "holds": { "AAAA": 5, "HTTPS": 2 } }. */
function holdsFromFile(raw: unknown, file: string): Map<number, number> {
  const out = new Map<number, number>()
  if (raw === undefined) return out
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`${file}: holds`, 'must be an object of type -> milliseconds', '{"AAAA": 5, "HTTPS": 2}')
  }
  for (const [k, v] of Object.entries(raw)) {
    const q = parseQtype(k)
    if (q === undefined) throw new ConfigError(`${file}: holds.${k}`, 'is not a DNS type', 'type names or numbers')
    out.set(q, ms(String(v), `${file}: holds.${k}`, MAX_HOLD_MS))
  }
  return out
}

export interface LoadedConfig {
  config: Config
  /** QTYPE -> hold, from qtypes + delay, overridden per type by the file's "holds". */
  rules: HoldRule[]
  /** Content hash of the --config file as read (src/config/watch.ts compares against it). */
  configHash?: string
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv
  readFile?: (path: string) => string
}

/**
 * Precedence, lowest first: defaults, config file, environment, flags. The file may use the flag
 * names (kebab-case) as keys, plus "holds" for per-type hold times.
 */
export function loadConfig(argv: readonly string[], opts: LoadOptions = {}): LoadedConfig {
  const env = opts.env ?? process.env
  const readFile = opts.readFile ?? ((p: string) => fs.readFileSync(p, 'utf8'))
  const { values, positionals } = parseFlags(argv, RUN_FLAGS, BOOLEAN_FLAGS)
  if (positionals.length > 0) {
    throw new ConfigError(positionals[0] as string, 'unexpected argument', 'flags only, e.g. --delay 5')
  }
  const c: Config = structuredClone(DEFAULTS)
  const fromEnv = new Map<string, string>()
  for (const name of RUN_FLAGS) {
    const v = env[`DNS_SHAPER_${name.toUpperCase().replace(/-/g, '_')}`]
    if (v !== undefined && v !== '') fromEnv.set(name, v)
  }
  const file = (values.get('config') ?? fromEnv.get('config')) as string | undefined
  let fileHolds = new Map<number, number>()
  let configHash: string | undefined
  if (file) {
    let parsed: unknown
    try {
      const text = readFile(file)
      configHash = contentHash(text)
      parsed = JSON.parse(text)
    } catch (e) {
      const why = errorMessage(e)
      throw new ConfigError('--config', `cannot read ${file}: ${why}`, 'a JSON object with flag names as keys')
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new ConfigError('--config', `${file} is not a JSON object`, '{"delay": 5, "qtypes": "AAAA"}')
    }
    for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
      if (k === 'holds') {
        fileHolds = holdsFromFile(v, file)
        continue
      }
      // Own keys only: a plain lookup would find Object.prototype's constructor, toString,
      // __proto__ and valueOf, which then pass as flags or throw a TypeError (exit 1, not 2).
      const setter = Object.hasOwn(setters, k) ? setters[k] : undefined
      if (!setter || k === 'config')
        throw new ConfigError(
          `${file}: ${k}`,
          'unknown key',
          RUN_FLAGS.filter(f => f !== 'config').join(', ') + ', holds',
        )
      const text = Array.isArray(v) ? v.join(',') : typeof v === 'boolean' ? v : String(v)
      setter(c, text, `${file}: ${k}`)
    }
    c.configFile = file
  }
  for (const [name, v] of fromEnv)
    (setters[name] as Setter)(c, v, `DNS_SHAPER_${name.toUpperCase().replace(/-/g, '_')}`)
  for (const [name, v] of values) (setters[name] as Setter)(c, v, `--${name}`)
  const autoFlag = (c as Loading)[AUTO]
  if (autoFlag !== undefined) {
    delete (c as Loading)[AUTO]
    const found = nameserversFrom(c.resolvConf, readFile, autoFlag)
    c.dnsIp = found.cidrs
    c.dnsIpAuto = { resolvConf: c.resolvConf, ignored: found.ignored }
  }
  if (!c.ipv4 && !c.ipv6)
    throw new ConfigError(
      '--ipv4',
      'IPv4 and IPv6 are both off: nothing would be shaped',
      'turn at least one of --ipv4, --ipv6 on',
    )
  if (c.queue + c.queues - 1 > 65535)
    throw new ConfigError('--queues', `queue ${c.queue} + ${c.queues} exceeds 65535`, 'fewer queues or a lower --queue')
  const mib = (b: number): string => (b / 2 ** 20).toFixed(0)
  if (preallocatedBytes(c.queues, c.maxHeld) > MEMORY_BUDGET_BYTES)
    throw new ConfigError(
      '--max-held',
      `${c.queues} queue(s) with --max-held ${c.maxHeld} preallocate ${mib(preallocatedBytes(c.queues, c.maxHeld))} MiB`,
      `at most ${mib(MEMORY_BUDGET_BYTES)} MiB in all: a lower --max-held or fewer --queues`,
    )
  const holds = new Map<number, number>(c.qtypes.map(q => [q, c.delayMs]))
  for (const [q, h] of fileHolds) holds.set(q, h)
  // The data plane keeps one FIFO per distinct hold: more than it has is a config error, found here
  // (exit 2) rather than when the policy is compiled for a queue that is already bound.
  const classes = new Set(holds.values()).size
  if (classes > MAX_HOLD_CLASSES) {
    throw new ConfigError(
      file ? `${file}: holds` : '--delay',
      `${classes} distinct hold durations; the data plane has ${MAX_HOLD_CLASSES}`,
      `at most ${MAX_HOLD_CLASSES} different hold times: merge some`,
    )
  }
  // The kernel filter queues config.qtypes: a type held only through the file must be among them.
  c.qtypes = [...holds.keys()]
  return { config: c, rules: [...holds].map(([qtype, holdMs]) => ({ qtype, holdMs })), configHash }
}

/** One line for the start-up log. */
export function describeRules(rules: readonly HoldRule[]): string {
  return rules.map(r => `${qtypeName(r.qtype)}=${r.holdMs}ms`).join(',') || 'nothing held'
}

/** How often managed rules are checked and put back if something removed them (ms). */
export const RECONCILE_INTERVAL_MS = 30_000
const RECONCILE_ENV = 'DNS_SHAPER_RECONCILE_INTERVAL_MS'

/**
 * The reconcile interval from DNS_SHAPER_RECONCILE_INTERVAL_MS (a tuning knob for tests and
 * operators, not a flag). Unset or empty: the default. Anything else must be a sane integer:
 * 0 or "abc" used to fall back silently, and a tiny value would run iptables-save back to back.
 */
export function reconcileIntervalFromEnv(env: NodeJS.ProcessEnv): number {
  const raw = env[RECONCILE_ENV]
  if (raw === undefined || raw.trim() === '') return RECONCILE_INTERVAL_MS
  return int(raw, RECONCILE_ENV, 100, 86_400_000)
}
