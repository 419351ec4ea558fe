// Turns flags, DNS_SHAPER_* environment variables and an optional JSON config file into a validated
// Config, or throws ConfigError naming the flag and what it accepts. Every value is parsed here, once
// (CIDRs, interface names, host:port included), so a bad one exits 2 before anything is bound. One
// precedence for every setting, per-type holds included: defaults < file < environment < flags; the
// source of each value is kept for `dns-shaper config print`. No side effects beyond reading the file.
import type { Config, IptablesBackend, KernelFilter, LogLevel, RulesMode, ShapeMode } from './types.js'
import { ConfigError, errorMessage } from '../errors.js'
import { parseQtype, qtypeName } from '../dataplane/qtypes.js'
import type { HoldRule } from '../dataplane/policy.js'
import { checkHolds, type Holds } from './holds.js'
import {
  DEFAULT_MAX_HELD,
  MAX_HELD,
  MAX_HOLD_MS,
  MAX_PAIR_WINDOW_MS,
  MEMORY_BUDGET_BYTES,
  preallocatedBytes,
} from '../dataplane/limits.js'
import { cidrFlag } from './cidr.js'
import { interfaceFlag } from './interface.js'
import { parseListen } from './host-port.js'
import { parseFlags } from './flags.js'
import { bool, hookList, int, list, ms, oneOf, port, queueCount, queueNumber, type RawValue } from './values.js'
import { DEFAULT_RESOLV_CONF, nameserversFrom } from './resolv-conf.js'
import { contentHash, DEFAULT_POLL_INTERVAL_S } from './watch.js'
import { readConfigFile } from './read-file.js'

export type { Config } from './types.js'

/** Port 9153 is CoreDNS's and 9253 node-local-dns's metrics port: stay clear of both. */
export const DEFAULT_METRICS_LISTEN = '127.0.0.1:9363'
/**
 * kubelet's probes, apart from scrapes: on loopback, which the pods of a node cannot reach and
 * kubelet's probes of a hostNetwork pod can (`host: 127.0.0.1`).
 */
export const DEFAULT_PROBE_LISTEN = '127.0.0.1:9364'

export const DEFAULTS: Config = {
  queue: queueNumber('0', '--queue'),
  queues: queueCount('1', '--queues'),
  delayMs: 5,
  qtypes: [28],
  mode: 'pair',
  pairWindowMs: 5,
  rules: 'manage',
  dnsPort: port('53', '--dns-port'),
  dnsIp: [],
  resolvConf: DEFAULT_RESOLV_CONF,
  interfaces: [],
  hooks: hookList('prerouting,output', '--hooks'),
  ipv4: true,
  ipv6: true,
  iptablesBackend: 'auto',
  kernelFilter: 'auto',
  metricsListen: DEFAULT_METRICS_LISTEN,
  probeListen: DEFAULT_PROBE_LISTEN,
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
    c.queue = queueNumber(v, f)
  },
  queues: (c, v, f) => {
    c.queues = queueCount(v, f)
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
    c.dnsPort = port(v, f)
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
    c.hooks = hookList(v, f)
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
  'probe-listen': (c, v, f) => {
    c.probeListen = parseListen(String(v), f)
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

/** Per-type holds: not a Config field, merged per type across the sources (see holdFor). */
const HOLDS = 'holds'
/** Flags `dns-shaper run` accepts (without the leading --); the DaemonSet test checks against this. */
export const RUN_FLAGS = [...Object.keys(setters), HOLDS]
const BOOLEAN_FLAGS = new Set(['ipv4', 'ipv6', 'dry-run'])

/** Where a value came from, lowest precedence first. */
export const SOURCES = ['default', 'file', 'env', 'flag'] as const
export type Source = (typeof SOURCES)[number]
/** A value's source, and the exact name that set it (`--delay`, `DNS_SHAPER_DELAY`, `FILE: delay`). */
export interface Origin {
  source: Source
  by?: string
}
const rank = (s: Source): number => SOURCES.indexOf(s)

/** The environment variable of a flag: --max-held is DNS_SHAPER_MAX_HELD. */
export const envName = (flag: string): string => `DNS_SHAPER_${flag.toUpperCase().replace(/-/g, '_')}`

/** DNS_SHAPER_* variables the product reads that are not flags (tuning knobs, the addon path for tests). */
const OTHER_ENV = new Set(['DNS_SHAPER_RECONCILE_INTERVAL_MS', 'DNS_SHAPER_ADDON'])
/**
 * The project's own test and lab tooling passes settings to itself in the environment (CI exports
 * DNS_SHAPER_IMAGE_ROOTFS for a whole run, the soak script DNS_SHAPER_SOAK_*, .ci/run reads
 * DNS_SHAPER_CI_ARM64), and the daemons those tests start inherit it: these prefixes are never config,
 * so they are not "unknown". test/config/load.ts checks every such name the repository uses.
 */
const TOOLING_ENV = /^DNS_SHAPER_(TEST|IMAGE|SOAK|LAB|BENCH|FUZZ|CORE_FUZZ|BPF|KF|HOSTILE|PROBE|CI|ARM64)_/
/**
 * What kubelet puts in every pod of a namespace that has a Service named dns-shaper (one made for
 * scraping, say): DNS_SHAPER_SERVICE_HOST, DNS_SHAPER_SERVICE_PORT[_NAME], DNS_SHAPER_PORT and
 * DNS_SHAPER_PORT_9363_TCP[_PROTO|_PORT|_ADDR]. No flag has these names; refusing them would crash
 * the whole DaemonSet the day someone adds that Service.
 */
const SERVICE_LINK_ENV =
  /^DNS_SHAPER_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT(_\d+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)?)$/

/** Like an unknown flag: a DNS_SHAPER_* variable that sets nothing is a mistake the operator must hear of. */
function rejectUnknownEnv(env: NodeJS.ProcessEnv): void {
  const known = new Set([...RUN_FLAGS.map(envName), ...OTHER_ENV])
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('DNS_SHAPER_') || known.has(name) || TOOLING_ENV.test(name) || SERVICE_LINK_ENV.test(name))
      continue
    throw new ConfigError(name, 'unknown variable', [...known].join(' '))
  }
}

/** Per-type holds: the file's object { "AAAA": 5, "HTTPS": 2 }, or "AAAA=5,HTTPS=2" from a flag or variable. */
function parseHolds(raw: unknown, name: string): Map<number, number> {
  const out = new Map<number, number>()
  if (raw === undefined) return out
  let entries: [string, unknown][]
  if (typeof raw === 'string') {
    entries = list(raw).map(item => {
      const eq = item.indexOf('=')
      if (eq < 0) throw new ConfigError(name, `"${item}" is not TYPE=MS`, 'AAAA=5,HTTPS=2')
      return [item.slice(0, eq).trim(), item.slice(eq + 1)]
    })
  } else if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
    entries = Object.entries(raw)
  } else {
    throw new ConfigError(name, 'must be an object of type -> milliseconds', '{"AAAA": 5, "HTTPS": 2}')
  }
  const sep = typeof raw === 'string' ? ' ' : '.'
  for (const [k, v] of entries) {
    const q = parseQtype(k)
    if (q === undefined) throw new ConfigError(`${name}${sep}${k}`, 'is not a DNS type', 'type names or numbers')
    out.set(q, ms(String(v), `${name}${sep}${k}`, MAX_HOLD_MS))
  }
  return out
}

/**
 * How a per-type hold and the global delay combine: each held type takes its hold from the highest
 * source that says anything about it, where a source speaks for a type through `holds` (that type
 * only) or `delay` (every held type). Within one source the per-type hold is the more specific and
 * wins. So `--delay 1` (a flag) holds every type 1 ms whatever the file's `holds` say, while a file
 * with `"delay": 5, "holds": {"HTTPS": 2}` holds HTTPS 2 ms and the rest 5 ms.
 */
function holdFor(
  qtype: number,
  holds: ReadonlyMap<number, { ms: number; origin: Origin }>,
  delayMs: number,
  delay: Origin,
): { ms: number; origin: Origin } {
  const perType = holds.get(qtype)
  if (perType !== undefined && rank(perType.origin.source) >= rank(delay.source)) return perType
  return { ms: delayMs, origin: delay }
}

export interface LoadedConfig {
  config: Config
  /** QTYPE -> hold: every type of qtypes and of holds, each with its hold as holdFor decides. */
  rules: Holds
  /** Content hash of the --config file as read (src/config/watch.ts compares against it). */
  configHash?: string
  /** Where each setting's value came from, by flag name; holds per type (by QTYPE number). Set by
   * loadConfig; absent from a LoadedConfig built by hand (tests, plans compiled from settings). */
  origins?: { settings: Record<string, Origin>; holds: Map<number, Origin> }
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
  const readFile = opts.readFile ?? readConfigFile
  const { values, positionals } = parseFlags(argv, RUN_FLAGS, BOOLEAN_FLAGS)
  if (positionals.length > 0) {
    throw new ConfigError(positionals[0] as string, 'unexpected argument', 'flags only, e.g. --delay 5')
  }
  rejectUnknownEnv(env)
  const c: Config = structuredClone(DEFAULTS)
  const settings: Record<string, Origin> = Object.fromEntries(RUN_FLAGS.map(f => [f, { source: 'default' }]))
  const holds = new Map<number, { ms: number; origin: Origin }>()
  /** Applies one source's value of one setting; later calls are higher sources, so they win. */
  const apply = (name: string, raw: RawValue | object, origin: Origin): void => {
    const by = origin.by as string
    if (name === HOLDS) {
      for (const [q, h] of parseHolds(raw, by)) holds.set(q, { ms: h, origin })
    } else {
      const text = Array.isArray(raw) ? raw.join(',') : typeof raw === 'boolean' ? raw : String(raw)
      ;(setters[name] as Setter)(c, text, by)
    }
    settings[name] = origin
  }
  const fromEnv = new Map<string, string>()
  for (const name of RUN_FLAGS) {
    const v = env[envName(name)]
    if (v !== undefined && v !== '') fromEnv.set(name, v)
  }
  const file = (values.get('config') ?? fromEnv.get('config')) as string | undefined
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
      // Own keys only: a plain lookup would find Object.prototype's constructor, toString,
      // __proto__ and valueOf, which then pass as flags or throw a TypeError (exit 1, not 2).
      const known = k === HOLDS || Object.hasOwn(setters, k)
      if (!known || k === 'config')
        throw new ConfigError(`${file}: ${k}`, 'unknown key', RUN_FLAGS.filter(f => f !== 'config').join(', '))
      apply(k, v as RawValue, { source: 'file', by: `${file}: ${k}` })
    }
    c.configFile = file
  }
  for (const [name, v] of fromEnv) apply(name, v, { source: 'env', by: envName(name) })
  for (const [name, v] of values) apply(name, v, { source: 'flag', by: `--${name}` })
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
  // Held: every type of qtypes and every type given a hold, each with the hold holdFor picks.
  const effective = new Map<number, { ms: number; origin: Origin }>()
  for (const q of [...c.qtypes, ...holds.keys()]) effective.set(q, holdFor(q, holds, c.delayMs, settings.delay!))
  // Checked once, here, by the one hold parser (bounds and the data plane's number of hold classes).
  const rules = checkHolds(
    [...effective].map(([qtype, h]) => ({ qtype, holdMs: h.ms })),
    settings[HOLDS]!.by ?? '--delay',
  )
  // The kernel filter queues config.qtypes: a type held only through holds must be among them.
  c.qtypes = [...effective.keys()]
  return {
    config: c,
    rules,
    configHash,
    origins: { settings, holds: new Map([...effective].map(([q, h]) => [q, h.origin])) },
  }
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
