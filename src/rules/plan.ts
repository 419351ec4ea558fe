// The DNS-SHAPER rules as data: per family the rules of our chain and one jump per hook, built from a
// Config (kernel filter resolved). Pure: no I/O, no rendering (restore.ts), no live state (manager.ts).
import type { Config, Family, Hook, KernelFilter } from '../config/types.js'
import { ConfigError } from '../errors.js'
import { CIDR_ACCEPTED, parseCidr } from '../config/cidr.js'
import { IFNAME_ACCEPTED, isValidInterface } from '../config/interface.js'
import { BpfError, bpfMatchArgs, buildFilter, u32MatchArgs } from '../dataplane/bpf.js'
import { queuedQtypes } from '../dataplane/qtypes.js'

/** Our chain in the raw table of each family. Everything in it is ours. */
export const CHAIN = 'DNS-SHAPER'
/** Every jump we add carries a comment starting with this; that is how we find our jumps again. */
export const COMMENT_PREFIX = 'dns-shaper:'
export const TABLE = 'raw'

export const BUILTIN_CHAIN: Record<Hook, string> = { prerouting: 'PREROUTING', output: 'OUTPUT' }
export const HOOK_ORDER: readonly Hook[] = ['prerouting', 'output']

export function jumpComment(hook: Hook): string {
  return `${COMMENT_PREFIX} shape DNS (${hook})`
}

const MAX_QUEUE = 65535

/**
 * Check the fields the rules are built from, with the same parsers config load uses (a Config built in
 * code bypasses the load). Throws ConfigError naming the flag and the accepted form.
 */
export function validateRuleConfig(config: Config): void {
  if (!Number.isInteger(config.queue) || config.queue < 0 || config.queue > MAX_QUEUE) {
    throw new ConfigError('--queue', `${String(config.queue)} is not a queue number`, `an integer 0-${MAX_QUEUE}`)
  }
  if (!Number.isInteger(config.queues) || config.queues < 1 || config.queue + config.queues - 1 > MAX_QUEUE) {
    throw new ConfigError(
      '--queues',
      `${String(config.queues)} queues starting at ${config.queue} is out of range`,
      `an integer >= 1 with queue + queues - 1 <= ${MAX_QUEUE}`,
    )
  }
  if (!Number.isInteger(config.dnsPort) || config.dnsPort < 1 || config.dnsPort > 65535) {
    throw new ConfigError('--dns-port', `${String(config.dnsPort)} is not a port`, 'an integer 1-65535')
  }
  for (const c of config.dnsIp) {
    if (typeof c !== 'string' || parseCidr(c) === undefined) {
      throw new ConfigError('--dns-ip', `${JSON.stringify(c)} is not an address or CIDR`, CIDR_ACCEPTED)
    }
  }
  for (const i of config.interfaces) {
    if (typeof i !== 'string' || !isValidInterface(i)) {
      throw new ConfigError('--interfaces', `${JSON.stringify(i)} is not an interface name`, IFNAME_ACCEPTED)
    }
  }
  if (config.hooks.length === 0) {
    throw new ConfigError('--hooks', 'no hook given (use --rules none to install no rules)', 'prerouting,output')
  }
  for (const h of config.hooks) {
    if (!HOOK_ORDER.includes(h)) {
      throw new ConfigError('--hooks', `${JSON.stringify(h)} is not a hook`, 'prerouting, output or both')
    }
  }
}

/** What the NFQUEUE rules match on besides the port: decided from --kernel-filter (auto resolved). */
export type FilterMode = Exclude<KernelFilter, 'auto'>

/** The mode a fresh RuleManager starts with: auto tries bpf first. */
export function initialFilterMode(config: Config): FilterMode {
  return config.kernelFilter === 'auto' ? 'bpf' : config.kernelFilter
}

/**
 * Extra match arguments for the NFQUEUE rule, one list per rule (the IPv6 u32 fallback needs two
 * rules). A program that cannot be built (too many types) falls back to u32 under auto.
 */
export function filterMatches(config: Config, family: Family, mode: FilterMode): string[][] {
  const types = queuedQtypes(config.qtypes, config.mode === 'pair')
  // Nothing held: the daemon accepts everything it sees; queue as before rather than build nothing.
  if (mode === 'off' || types.length === 0) return [[]]
  if (mode === 'u32') return u32MatchArgs(family)
  try {
    return [bpfMatchArgs(buildFilter(family, types))]
  } catch (e) {
    if (!(e instanceof BpfError)) throw e
    if (config.kernelFilter === 'auto') return u32MatchArgs(family)
    throw new ConfigError('--kernel-filter', e.message, 'u32, off, or fewer --qtypes')
  }
}

/** Whether a failed restore means the bpf or u32 match is missing (kernel module or iptables extension). */
export function isMissingMatch(stderr: string): boolean {
  return /Couldn't load match `(bpf|u32)'|Extension (bpf|u32) revision \d+ not supported|No chain\/target\/match by that name/.test(
    stderr,
  )
}

export interface FamilyPlan {
  family: Family
  /** Argument lists of the rules in CHAIN, in order (without `-A DNS-SHAPER`). */
  rules: string[][]
  /** One jump per hooked built-in chain. */
  jumps: { chain: string; args: string[] }[]
  /** Why this family gets no rules at all (then rules and jumps are empty). */
  skipped?: string
}

export function familyLabel(f: Family): string {
  return f === 'ipv4' ? 'IPv4' : 'IPv6'
}

/**
 * The rules one family needs. Argument order is the order iptables-save prints them in, so
 * what we render and what we read back compare equal.
 *
 * `dnsIp` split by family: with addresses configured, a family that has none of them gets NO
 * rules (not "any destination"): the operator restricted shaping to those servers, and widening
 * it for the other family would queue DNS traffic they did not ask for. Stale rules of that
 * family from an earlier configuration are still removed by install().
 */
/** --ipv4 / --ipv6: whether this family is shaped at all (off: its tables are only cleaned, as a courtesy). */
export function familyEnabled(config: Pick<Config, 'ipv4' | 'ipv6'>, family: Family): boolean {
  return family === 'ipv4' ? config.ipv4 : config.ipv6
}

export function planRules(config: Config, family: Family, filter: FilterMode = initialFilterMode(config)): FamilyPlan {
  validateRuleConfig(config)
  if (!familyEnabled(config, family)) {
    return { family, rules: [], jumps: [], skipped: `${familyLabel(family)} is disabled (--${family} off)` }
  }
  const cidrs = [
    ...new Set(
      config.dnsIp
        .map(c => parseCidr(c))
        .filter(c => c?.family === family)
        .map(c => c!.text),
    ),
  ]
  if (config.dnsIp.length > 0 && cidrs.length === 0) {
    return {
      family,
      rules: [],
      jumps: [],
      skipped: `--dns-ip lists no ${familyLabel(family)} address, so ${familyLabel(family)} DNS is not shaped`,
    }
  }
  const hooks = HOOK_ORDER.filter(h => config.hooks.includes(h))
  const ifaces = [...new Set(config.interfaces)]
  // Never --queue-cpu-fanout: it picks the queue by CPU, which can put the A and the AAAA of one
  // socket on different queues (and threads); their verdict order is then lost and the conntrack
  // race comes back. --queue-balance hashes the flow, so a flow stays on one queue.
  const target =
    config.queues > 1
      ? ['-j', 'NFQUEUE', '--queue-balance', `${config.queue}:${config.queue + config.queues - 1}`, '--queue-bypass']
      : ['-j', 'NFQUEUE', '--queue-num', String(config.queue), '--queue-bypass']
  const match = ['-p', 'udp', '-m', 'udp', '--dport', String(config.dnsPort)]
  // After the port match: iptables-save prints matches in the order given, so rendered == saved.
  const filters = filterMatches(config, family, filter)
  const dests: (string | undefined)[] = cidrs.length > 0 ? cidrs : [undefined]
  const rules: string[][] = []
  // With interfaces, -i rules only ever match from PREROUTING (no input device in OUTPUT) and -o
  // rules only from OUTPUT (no output device yet in PREROUTING), so one chain serves both hooks.
  const ifaceArgs: string[][] = []
  if (ifaces.length === 0) ifaceArgs.push([])
  else {
    for (const hook of hooks) {
      const flag = hook === 'prerouting' ? '-i' : '-o'
      for (const i of ifaces) ifaceArgs.push([flag, i])
    }
  }
  for (const ia of ifaceArgs) {
    for (const d of dests) {
      for (const fm of filters) rules.push([...(d !== undefined ? ['-d', d] : []), ...ia, ...match, ...fm, ...target])
    }
  }
  // Loopback traffic passes OUTPUT and then PREROUTING (-i lo): with both hooks it would be queued,
  // and held, twice. It is shaped once, in OUTPUT (a host-network client of a node-local cache).
  const skipLo = hooks.includes('output')
  const jumps = hooks.map(h => ({
    chain: BUILTIN_CHAIN[h],
    args: [
      ...(h === 'prerouting' && skipLo ? ['!', '-i', 'lo'] : []),
      '-m',
      'comment',
      '--comment',
      jumpComment(h),
      '-j',
      CHAIN,
    ],
  }))
  return { family, rules, jumps }
}
