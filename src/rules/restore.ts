// iptables-restore text: the transaction that installs a plan (or removes everything of ours) given the
// live raw table. Pure: it reads nothing and runs nothing.
import type { Family } from '../config/types.js'
import { CHAIN, familyLabel, initialFilterMode, planRules, TABLE, type FamilyPlan, type FilterMode } from './plan.js'
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
export function renderRestore(config: Config, family: Family, filter: FilterMode = initialFilterMode(config)): string {
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
