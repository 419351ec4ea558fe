// Compares the live raw table with a plan: is everything of ours there exactly once, and nothing stale?
// Pure; the manager feeds it what it read.
import type { Family } from '../config/types.js'
import { CHAIN, type FamilyPlan } from './plan.js'
import { ruleLine } from './restore.js'
import { ownedJumps, type SavedTable } from './save.js'

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
  const expectedRules = plan.rules.map(r => ruleLine('-A', CHAIN, r))
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
