// Reads the two shapes iptables prints a table in (iptables-save [-c], and `iptables -S [-v]`) into one
// SavedTable: chains, rules with counters, and which jumps are ours. Pure: parsing only, it never runs iptables.
import { CHAIN, COMMENT_PREFIX } from './plan.js'

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
export function splitSaveLine(text: string): string[] {
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

/**
 * Parse iptables-save output (with or without -c) into tables. With `only`, every other table is
 * skipped line by line: a node's nat table can hold 100k kube-proxy rules, and the daemon must never
 * hold their parse (see the manager's #readRaw).
 */
export function parseSave(text: string, only?: string): Map<string, SavedTable> {
  const tables = new Map<string, SavedTable>()
  let cur: SavedTable | undefined
  for (let start = 0; start < text.length;) {
    let end = text.indexOf('\n', start)
    if (end < 0) end = text.length
    const l = text.slice(start, end).trim()
    start = end + 1
    if (l === '' || l.startsWith('#')) continue
    if (l.startsWith('*')) {
      const name = l.slice(1)
      cur = only === undefined || name === only ? { chains: new Map(), rules: [] } : undefined
      if (cur !== undefined) tables.set(name, cur)
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
    const counters = /^\[(\d+):(\d+)\]\s+/.exec(l)
    const rule = counters ? ruleOf(l.slice(counters[0].length), counters[1]!, counters[2]!) : ruleOf(l)
    if (rule !== undefined) cur.rules.push(rule)
  }
  return tables
}

/** A rule from its `-A CHAIN ...` text without counters; undefined for any other line. */
function ruleOf(line: string, packets?: string, bytes?: string): SavedRule | undefined {
  const args = splitSaveLine(line)
  if (args[0] !== '-A' || args[1] === undefined) return undefined
  const rule: SavedRule = { chain: args[1], args: args.slice(2), line }
  if (packets !== undefined) {
    rule.packets = Number(packets)
    rule.bytes = Number(bytes)
  }
  return rule
}

/**
 * `iptables -t TABLE -S [-v]` output (one table; iptables-nft reads only that table's rules, where
 * iptables-nft-save fetches the whole nft ruleset: see Iptables.readRaw) into the same SavedTable as
 * parseSaveTable: `-P CHAIN POLICY` and `-N CHAIN` declare chains (`:CHAIN POLICY` / `:CHAIN -`), and
 * `-v` puts a rule's counters as `-c PACKETS BYTES` before its target, where save puts `[P:B]` in
 * front. Rule text is otherwise identical (iptables 1.8 prints both with one function), so `line` is
 * the save line: the counters are cut out of it.
 */
export function parseRuleSpecs(text: string): SavedTable {
  const table: SavedTable = { chains: new Map(), rules: [] }
  for (const raw of text.split('\n')) {
    const l = raw.trim()
    const decl = /^-([PN])\s+(\S+)(?:\s+(\S+))?/.exec(l)
    if (decl) {
      table.chains.set(decl[2]!, decl[1] === 'P' ? (decl[3] ?? '-') : '-')
      continue
    }
    const c = specCounters(l)
    const rule = c ? ruleOf(l.slice(0, c.start) + l.slice(c.end), c.packets, c.bytes) : ruleOf(l)
    if (rule !== undefined) table.rules.push(rule)
  }
  return table
}

/** Where `-c PACKETS BYTES` sits in an `iptables -S -v` rule line (outside quotes), with its values. */
function specCounters(line: string): { start: number; end: number; packets: string; bytes: string } | undefined {
  // Arguments as iptables quotes them: "..." with backslash escapes, or a run of non-blanks.
  const args = [...line.matchAll(/"(?:[^"\\]|\\.)*"|\S+/g)]
  for (let i = 0; i + 2 < args.length; i++) {
    const [flag, p, b] = [args[i]!, args[i + 1]!, args[i + 2]!]
    if (flag[0] !== '-c' || !/^\d+$/.test(p[0]) || !/^\d+$/.test(b[0])) continue
    // Cut the blank before `-c` too, so the rest reads exactly as the save line.
    return { start: flag.index - 1, end: b.index + b[0].length, packets: p[0], bytes: b[0] }
  }
  return undefined
}

/** One table of iptables-save output, parsed alone; undefined when the output does not have it. */
export function parseSaveTable(text: string, table: string): SavedTable | undefined {
  return parseSave(text, table).get(table)
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
