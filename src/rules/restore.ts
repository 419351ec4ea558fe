// iptables-restore text: the transaction that installs a plan (or removes everything of ours, and the
// built-in chains only our jumps used) given the live raw table. Pure: it reads nothing and runs nothing.
import type { Family } from '../config/types.js'
import {
  BUILTIN_CHAIN,
  CHAIN,
  familyLabel,
  HOOK_ORDER,
  initialFilterMode,
  planRules,
  TABLE,
  type FamilyPlan,
  type FilterMode,
} from './plan.js'
import { ownedJumps, type SavedTable } from './save.js'
import type { Config } from '../config/types.js'

/** Quote an argument the way iptables-save does (only when needed). */
function quoteArg(a: string): string {
  if (a !== '' && /^[A-Za-z0-9_.:@/+,!=-]+$/.test(a)) return a
  return `"${a.replace(/(["\\])/g, '\\$1')}"`
}

export function ruleLine(op: '-A' | '-D', chain: string, args: readonly string[]): string {
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
  for (const r of plan.rules) out.push(ruleLine('-A', CHAIN, r))
  // Appended, not inserted: NFQUEUE's accept verdict ends this table's traversal, so rules other
  // software keeps in raw (node-local-dns NOTRACK, ...) must run before our jump.
  for (const j of plan.jumps) out.push(ruleLine('-A', j.chain, j.args))
  out.push('COMMIT')
  return out.join('\n') + '\n'
}

/**
 * The exact iptables-restore input for one family (what `dns-shaper rules print` shows). With no
 * rules of ours installed, install() applies exactly this text. A family without rules yields a
 * comment naming the reason.
 */
export function renderRestore(
  config: Readonly<Config>,
  family: Family,
  filter: FilterMode = initialFilterMode(config),
): string {
  const plan = planRules(config, family, filter)
  if (plan.skipped !== undefined) return `# dns-shaper: no ${familyLabel(family)} rules: ${plan.skipped}\n`
  return header(family, 'rules') + installBody(plan, [])
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

/**
 * The restore transaction that removes everything of ours, or null when nothing is installed.
 * `builtins` lists built-in chains to delete as well (nft only: see builtinsToDelete).
 */
export function renderRemove(table: SavedTable | undefined, builtins: readonly string[] = []): string | null {
  const dels = deletionLines(table)
  const hasChain = table?.chains.has(CHAIN) === true
  if (dels.length === 0 && !hasChain) return null
  const out = [`*${TABLE}`, ...dels]
  if (hasChain) out.push(`:${CHAIN} - [0:0]`, `-X ${CHAIN}`) // declare = flush, then delete
  for (const c of builtins) out.push(`-X ${c}`)
  out.push('COMMIT')
  return out.join('\n') + '\n'
}

/** Built-in chains of the raw table that were in use (rules, or a policy other than ACCEPT). */
export function builtinsInUse(table: SavedTable | undefined): Set<string> {
  const used = new Set<string>()
  if (table === undefined) return used
  const ours = new Set(ownedJumps(table))
  for (const c of Object.values(BUILTIN_CHAIN)) {
    const policy = table.chains.get(c)
    if ((policy !== undefined && policy !== 'ACCEPT') || table.rules.some(r => r.chain === c && !ours.has(r)))
      used.add(c)
  }
  return used
}

/**
 * Built-in chains a removal should delete, so the table is left as found. iptables-nft creates a
 * base chain (hooked into the stack, traversed by every packet) the first time a rule is added to
 * it and never deletes it; save output shows built-in chains whether they exist or not. So: a
 * built-in chain that holds one of our jumps and nothing else, with policy ACCEPT, and that was not
 * in use before we first installed (`before`, when this process saw it). The kernel refuses to
 * delete a chain that is not empty, so a rule added meanwhile fails the transaction rather than
 * being lost. Legacy tables cannot drop built-in chains; nothing is deleted there.
 */
export function builtinsToDelete(table: SavedTable | undefined, before?: ReadonlySet<string>): string[] {
  if (table === undefined) return []
  const ours = new Set(ownedJumps(table))
  const inUse = builtinsInUse(table)
  return HOOK_ORDER.map(h => BUILTIN_CHAIN[h]).filter(
    c =>
      !inUse.has(c) &&
      before?.has(c) !== true &&
      table.chains.get(c) === 'ACCEPT' &&
      table.rules.some(r => r.chain === c && ours.has(r)),
  )
}
