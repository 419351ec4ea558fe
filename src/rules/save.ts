// Reads iptables-save output (with or without -c): tables, chains, rules with counters, and which jumps
// are ours. Pure: parsing only, it never runs iptables.
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
    let body = l
    let packets: number | undefined
    let bytes: number | undefined
    const counters = /^\[(\d+):(\d+)\]\s+/.exec(body)
    if (counters) {
      packets = Number(counters[1])
      bytes = Number(counters[2])
      body = body.slice(counters[0].length)
    }
    const args = splitSaveLine(body)
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
