// Test helpers for comparing the two conntrack statistics sources: the ctnetlink counter names
// (as `conntrack -S` prints them) and the /proc/net/stat/nf_conntrack column each one is printed in.
import { conntrackDelta, type ConntrackStats } from '../../src/kernel/procfs.js'

/** ctnetlink attribute name -> procfs column (same per-CPU kernel counter). */
export const NETLINK_TO_PROCFS: Record<string, string> = {
  searched: 'searched',
  found: 'found',
  new: 'new',
  invalid: 'invalid',
  ignore: 'ignore',
  delete: 'delete',
  delete_list: 'delete_list',
  insert: 'insert',
  insert_failed: 'insert_failed',
  drop: 'drop',
  early_drop: 'early_drop',
  error: 'icmp_error',
  search_restart: 'search_restart',
  clash_resolve: 'clashres',
  chaintoolong: 'chainlength',
}

/** Per-counter deltas of both sources for every counter both report, keyed by the netlink name. */
export function pairedDeltas(
  nlBefore: ConntrackStats,
  nlAfter: ConntrackStats,
  procBefore: ConntrackStats,
  procAfter: ConntrackStats,
): Record<string, { netlink: number; procfs: number }> {
  const out: Record<string, { netlink: number; procfs: number }> = {}
  for (const name of nlAfter.columns) {
    const col = NETLINK_TO_PROCFS[name]
    if (col === undefined || !procAfter.columns.includes(col)) continue
    const n = conntrackDelta(nlBefore, nlAfter, name)
    const p = conntrackDelta(procBefore, procAfter, col)
    if (n !== undefined && p !== undefined) out[name] = { netlink: n, procfs: p }
  }
  return out
}
