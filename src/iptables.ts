// iptables rule manager: the DNS-SHAPER rules as data, their iptables-restore text, and install/remove/status
// that reconcile them atomically. It must never touch a rule it did not create, nor run anything through a shell.
import type { Config, Hook, KernelFilter } from './config-types.js'
import { createRunner, netnsWrap, wrapRunner, type Runner } from './exec.js'
import { ConfigError, iptablesFailure, iptablesSpawnFailure, isIptablesError } from './errors.js'
import { binaries, detectBackend, type Backend, type BackendDecision, type Family } from './iptables-backend.js'
import { isIP } from 'node:net'
import { BpfError, bpfMatchArgs, buildFilter, QTYPE_A, u32MatchArgs } from './policy/bpf.js'

export type { Backend, BackendDecision, Family } from './iptables-backend.js'

/** Our chain in the raw table of each family. Everything in it is ours. */
export const CHAIN = 'DNS-SHAPER'
/** Every jump we add carries a comment starting with this; that is how we find our jumps again. */
export const COMMENT_PREFIX = 'dns-shaper:'
export const TABLE = 'raw'

const BUILTIN_CHAIN: Record<Hook, string> = { prerouting: 'PREROUTING', output: 'OUTPUT' }
const HOOK_ORDER: readonly Hook[] = ['prerouting', 'output']

export function jumpComment(hook: Hook): string {
  return `${COMMENT_PREFIX} shape DNS (${hook})`
}

// ---------------------------------------------------------------------------------------------
// Validation

const IFNAME = /^[A-Za-z0-9_.:@-]{1,15}$/
const IFNAME_ACCEPTED =
  'interface names of 1-15 characters from A-Z a-z 0-9 _ . : @ -, not starting with -, optionally ending in + (prefix wildcard)'
const CIDR_ACCEPTED =
  'IPv4 or IPv6 addresses with an optional /prefix, e.g. 198.51.100.10, 203.0.113.0/24, 2001:db8::53/128'

export function isValidInterface(name: string): boolean {
  const base = name.endsWith('+') ? name.slice(0, -1) : name
  return name.length <= 15 && IFNAME.test(base) && !base.startsWith('-') && base !== '.' && base !== '..'
}

export interface Cidr {
  family: Family
  /** Canonical form as iptables-save prints it: host bits cleared, explicit prefix, RFC 5952-ish IPv6. */
  text: string
}

/** Parse `addr` or `addr/prefix`; undefined when it is not one. Host bits are cleared as iptables does. */
export function parseCidr(input: string): Cidr | undefined {
  const parts = input.split('/')
  if (parts.length > 2) return undefined
  const [addr = '', prefixText] = parts
  const version = addr.includes('%') ? 0 : isIP(addr)
  if (version === 0) return undefined
  const max = version === 4 ? 32 : 128
  let prefix = max
  if (prefixText !== undefined) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) return undefined
    prefix = Number(prefixText)
    if (prefix > max) return undefined
  }
  if (version === 4) {
    const bytes = addr.split('.').map(Number)
    return { family: 'ipv4', text: `${maskBytes(bytes, prefix).join('.')}/${prefix}` }
  }
  const bytes = ipv6Bytes(addr)
  if (bytes === undefined) return undefined
  return { family: 'ipv6', text: `${formatIpv6(maskBytes(bytes, prefix))}/${prefix}` }
}

function maskBytes(bytes: number[], prefix: number): number[] {
  return bytes.map((b, i) => {
    const bits = Math.max(0, Math.min(8, prefix - i * 8))
    return b & ((0xff << (8 - bits)) & 0xff)
  })
}

function ipv6Bytes(addr: string): number[] | undefined {
  let text = addr
  const tail: number[] = []
  const lastColon = text.lastIndexOf(':')
  if (text.slice(lastColon + 1).includes('.')) {
    // Embedded IPv4 (::ffff:192.0.2.1).
    for (const p of text.slice(lastColon + 1).split('.')) tail.push(Number(p))
    text = text.slice(0, lastColon + 1) + '0:0'
  }
  const halves = text.split('::')
  if (halves.length > 2) return undefined
  const groups = (s: string): string[] => (s === '' ? [] : s.split(':'))
  const head = groups(halves[0] ?? '')
  const rest = halves.length === 2 ? groups(halves[1] ?? '') : []
  const fill = 8 - head.length - rest.length
  if (halves.length === 1 ? fill !== 0 : fill < 0) return undefined
  const words = [...head, ...Array<string>(halves.length === 2 ? fill : 0).fill('0'), ...rest].map(g => parseInt(g, 16))
  const bytes: number[] = []
  for (const w of words) bytes.push(w >> 8, w & 0xff)
  if (tail.length === 4) bytes.splice(12, 4, ...tail)
  return bytes.length === 16 ? bytes : undefined
}

/** IPv6 text as glibc inet_ntop prints it (what ip6tables-save shows). */
export function formatIpv6(bytes: number[]): string {
  const words: number[] = []
  for (let i = 0; i < 16; i += 2) words.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0))
  let bestBase = -1
  let bestLen = 0
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && words[j] === 0) j++
    if (j - i > bestLen) {
      bestBase = i
      bestLen = j - i
    }
    i = j
  }
  if (bestLen < 2) bestBase = -1
  if (bestBase === 0 && (bestLen === 6 || (bestLen === 5 && words[5] === 0xffff))) {
    const v4 = bytes.slice(12, 16).join('.')
    return bestLen === 6 ? `::${v4}` : `::ffff:${v4}`
  }
  let out = ''
  for (let i = 0; i < 8; i++) {
    if (i === bestBase) {
      out += '::'
      i += bestLen - 1
      continue
    }
    if (out !== '' && !out.endsWith(':')) out += ':'
    out += (words[i] ?? 0).toString(16)
  }
  return out
}

const MAX_QUEUE = 65535

/** Check the fields the rules are built from. Throws ConfigError naming the flag and the accepted form. */
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

// ---------------------------------------------------------------------------------------------
// Kernel filter

/** What the NFQUEUE rules match on besides the port: decided from --kernel-filter (auto resolved). */
export type FilterMode = Exclude<KernelFilter, 'auto'>

/** Query types that must reach the queue: the held ones, and A in pair mode (it releases the AAAA). */
export function queuedQtypes(config: Config): number[] {
  const types = [...new Set(config.qtypes)]
  if (config.mode === 'pair' && types.length > 0 && !types.includes(QTYPE_A)) types.unshift(QTYPE_A)
  return types
}

/** The mode a fresh RuleManager starts with: auto tries bpf first. */
export function initialFilterMode(config: Config): FilterMode {
  return config.kernelFilter === 'auto' ? 'bpf' : config.kernelFilter
}

/**
 * Extra match arguments for the NFQUEUE rule, one list per rule (the IPv6 u32 fallback needs two
 * rules). A program that cannot be built (too many types) falls back to u32 under auto.
 */
export function filterMatches(config: Config, family: Family, mode: FilterMode): string[][] {
  const types = queuedQtypes(config)
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

// ---------------------------------------------------------------------------------------------
// Rules as data

export interface FamilyPlan {
  family: Family
  /** Argument lists of the rules in CHAIN, in order (without `-A DNS-SHAPER`). */
  rules: string[][]
  /** One jump per hooked built-in chain. */
  jumps: { chain: string; args: string[] }[]
  /** Why this family gets no rules at all (then rules and jumps are empty). */
  skipped?: string
}

function familyLabel(f: Family): string {
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
export function planRules(config: Config, family: Family, filter: FilterMode = initialFilterMode(config)): FamilyPlan {
  validateRuleConfig(config)
  if (family === 'ipv6' && !config.ipv6) {
    return { family, rules: [], jumps: [], skipped: 'IPv6 is disabled (--ipv6 off)' }
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

/** Quote an argument the way iptables-save does (only when needed). */
function quoteArg(a: string): string {
  if (a !== '' && /^[A-Za-z0-9_.:@/+,!=-]+$/.test(a)) return a
  return `"${a.replace(/(["\\])/g, '\\$1')}"`
}

function line(op: '-A' | '-D', chain: string, args: readonly string[]): string {
  return [op, chain, ...args.map(quoteArg)].join(' ')
}

function header(family: Family, what: string): string {
  const tool = family === 'ipv4' ? 'iptables-restore' : 'ip6tables-restore'
  return `# dns-shaper ${familyLabel(family)} ${what}: apply with ${tool} --noflush (nft or legacy variant)\n`
}

function installBody(plan: FamilyPlan, deletions: readonly string[]): string {
  const out = [`*${TABLE}`, `:${CHAIN} - [0:0]`, ...deletions]
  // Declaring the chain in a --noflush restore creates it, or flushes it if it exists: the
  // rules below then are its whole content, however many copies an earlier run left.
  for (const r of plan.rules) out.push(line('-A', CHAIN, r))
  // Appended, not inserted: NFQUEUE's accept verdict ends this table's traversal, so rules other
  // software keeps in raw (node-local-dns NOTRACK, ...) must run before our jump.
  for (const j of plan.jumps) out.push(line('-A', j.chain, j.args))
  out.push('COMMIT')
  return out.join('\n') + '\n'
}

/**
 * The exact iptables-restore input for one family (what `dns-shaper rules print` shows). With no
 * rules of ours installed, install() applies exactly this text. A family without rules yields a
 * comment naming the reason.
 */
export function renderRestore(config: Config, family: Family, filter: FilterMode = initialFilterMode(config)): string {
  const plan = planRules(config, family, filter)
  if (plan.skipped !== undefined) return `# dns-shaper: no ${familyLabel(family)} rules: ${plan.skipped}\n`
  return header(family, 'rules') + installBody(plan, [])
}

// ---------------------------------------------------------------------------------------------
// Reading iptables-save

export interface SavedRule {
  chain: string
  /** Arguments after `-A CHAIN`, unquoted. */
  args: string[]
  /** The rule as iptables-save printed it, without counters. */
  line: string
  packets?: number
  bytes?: number
}

export interface SavedTable {
  /** Chain name → policy ('-' for user chains). */
  chains: Map<string, string>
  rules: SavedRule[]
}

/** Split a save line into arguments, honouring iptables-save's double quotes and backslash escapes. */
export function splitArgs(text: string): string[] {
  const args: string[] = []
  let cur = ''
  let inArg = false
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!
    if (quoted) {
      if (ch === '\\' && i + 1 < text.length) cur += text[++i]
      else if (ch === '"') quoted = false
      else cur += ch
    } else if (ch === '"') {
      quoted = true
      inArg = true
    } else if (ch === ' ' || ch === '\t') {
      if (inArg) args.push(cur)
      cur = ''
      inArg = false
    } else {
      cur += ch
      inArg = true
    }
  }
  if (inArg) args.push(cur)
  return args
}

/** Parse iptables-save output (with or without -c) into tables. */
export function parseSave(text: string): Map<string, SavedTable> {
  const tables = new Map<string, SavedTable>()
  let cur: SavedTable | undefined
  for (const raw of text.split('\n')) {
    const l = raw.trim()
    if (l === '' || l.startsWith('#')) continue
    if (l.startsWith('*')) {
      cur = { chains: new Map(), rules: [] }
      tables.set(l.slice(1), cur)
      continue
    }
    if (cur === undefined) continue
    if (l === 'COMMIT') {
      cur = undefined
      continue
    }
    if (l.startsWith(':')) {
      const [name = '', policy = '-'] = l.slice(1).split(/\s+/)
      cur.chains.set(name, policy)
      continue
    }
    let body = l
    let packets: number | undefined
    let bytes: number | undefined
    const counters = /^\[(\d+):(\d+)\]\s+/.exec(body)
    if (counters) {
      packets = Number(counters[1])
      bytes = Number(counters[2])
      body = body.slice(counters[0].length)
    }
    const args = splitArgs(body)
    if (args[0] !== '-A' || args[1] === undefined) continue
    const rule: SavedRule = { chain: args[1], args: args.slice(2), line: body }
    if (packets !== undefined) {
      rule.packets = packets
      rule.bytes = bytes
    }
    cur.rules.push(rule)
  }
  return tables
}

function commentOf(args: readonly string[]): string | undefined {
  const i = args.indexOf('--comment')
  return i >= 0 ? args[i + 1] : undefined
}

function targetOf(args: readonly string[]): string | undefined {
  for (let i = args.length - 2; i >= 0; i--) if (args[i] === '-j' || args[i] === '-g') return args[i + 1]
  return undefined
}

/**
 * Our jumps in a saved raw table: rules outside CHAIN whose comment starts with COMMENT_PREFIX,
 * or that jump to CHAIN (the chain name is ours; a jump left to it would also block its removal).
 */
export function ownedJumps(table: SavedTable | undefined): SavedRule[] {
  if (table === undefined) return []
  return table.rules.filter(
    r => r.chain !== CHAIN && (commentOf(r.args)?.startsWith(COMMENT_PREFIX) === true || targetOf(r.args) === CHAIN),
  )
}

function deletionLines(table: SavedTable | undefined): string[] {
  // Save output is valid restore input; one -D per copy removes duplicates left by a crash.
  return ownedJumps(table).map(r => r.line.replace(/^-A /, '-D '))
}

/** The restore transaction that makes the live table match `plan`, or null when nothing is to do. */
export function renderInstall(plan: FamilyPlan, table: SavedTable | undefined): string | null {
  if (plan.skipped !== undefined) return renderRemove(table)
  return header(plan.family, 'install') + installBody(plan, deletionLines(table))
}

/** The restore transaction that removes everything of ours, or null when nothing is installed. */
export function renderRemove(table: SavedTable | undefined): string | null {
  const dels = deletionLines(table)
  const hasChain = table?.chains.has(CHAIN) === true
  if (dels.length === 0 && !hasChain) return null
  const out = [`*${TABLE}`, ...dels]
  if (hasChain) out.push(`:${CHAIN} - [0:0]`, `-X ${CHAIN}`) // declare = flush, then delete
  out.push('COMMIT')
  return out.join('\n') + '\n'
}

export interface FamilyStatus {
  family: Family
  /** Why this family is meant to have no rules. */
  skipped?: string
  chainPresent: boolean
  /** Our jumps per built-in chain, with their count (more than 1 means stale copies). */
  jumps: { chain: string; count: number; packets: number }[]
  rules: { line: string; packets: number; bytes: number }[]
  expectedRules: string[]
  /** Live rules equal the configured ones, one jump per hook, nothing extra. */
  upToDate: boolean
}

/** Compare a saved raw table with a plan. Pure. */
export function compareTable(plan: FamilyPlan, table: SavedTable | undefined): FamilyStatus {
  const live = table?.rules.filter(r => r.chain === CHAIN) ?? []
  const jumps = new Map<string, { count: number; packets: number }>()
  for (const j of ownedJumps(table)) {
    const e = jumps.get(j.chain) ?? { count: 0, packets: 0 }
    e.count++
    e.packets += j.packets ?? 0
    jumps.set(j.chain, e)
  }
  const key = (args: readonly string[]): string => args.join('\u0000')
  const expectedRules = plan.rules.map(r => line('-A', CHAIN, r))
  const chainPresent = table?.chains.has(CHAIN) === true
  let upToDate: boolean
  if (plan.skipped !== undefined) upToDate = !chainPresent && jumps.size === 0
  else {
    const rulesMatch =
      live.length === plan.rules.length && live.every((r, i) => key(r.args) === key(plan.rules[i] ?? []))
    const wantJumps = new Map(plan.jumps.map(j => [j.chain, key(j.args)]))
    const jumpsMatch =
      jumps.size === wantJumps.size &&
      ownedJumps(table).every(j => wantJumps.get(j.chain) === key(j.args) && jumps.get(j.chain)?.count === 1)
    upToDate = chainPresent && rulesMatch && jumpsMatch
  }
  const status: FamilyStatus = {
    family: plan.family,
    chainPresent,
    jumps: [...jumps].map(([chain, e]) => ({ chain, ...e })),
    rules: live.map(r => ({ line: r.line, packets: r.packets ?? 0, bytes: r.bytes ?? 0 })),
    expectedRules,
    upToDate,
  }
  if (plan.skipped !== undefined) status.skipped = plan.skipped
  return status
}

// ---------------------------------------------------------------------------------------------
// The manager

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
  remove(): Promise<ApplyResult> {
    return this.#serial(async () => {
      const backend = await this.detectBackend()
      const results: FamilyResult[] = []
      for (const family of FAMILIES) {
        try {
          results.push(await this.#removeFamily(backend.backend, family))
        } catch (e) {
          if (family === 'ipv4' || this.#config.ipv6) throw e
          this.#log.debug?.('ipv6 disabled; could not check for ip6tables rules', { error: String(e) })
          results.push({
            family,
            changed: false,
            jumpsRemoved: 0,
            input: null,
            skipped: 'IPv6 is disabled (--ipv6 off)',
          })
        }
      }
      return { backend, dryRun: this.#dryRun, families: results }
    })
  }

  /** Live state of our rules per enabled family, with packet counters. Read-only. */
  status(): Promise<RuleStatus> {
    return this.#serial(async () => {
      const backend = await this.detectBackend()
      const families: FamilyStatus[] = []
      for (const family of FAMILIES) {
        if (family === 'ipv6' && !this.#config.ipv6) continue
        families.push(
          compareTable(planRules(this.#config, family, this.#filter), await this.#readRaw(backend.backend, family)),
        )
      }
      return { backend, families }
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
