// Conntrack counters of the race lab's router namespace: read, difference, flush.
// Reads and flushes only inside the lab namespace it is given.

import { parseConntrackStats } from '../../harness/product.js'
import { LabError } from '../../harness/netns.js'
import type { Netns } from '../../harness/netns.js'

// ---------------------------------------------------------------------------------------------
// Conntrack counters of the router namespace

export interface ConntrackCounters {
  clashResolve: number
  insertFailed: number
  drop: number
}

export async function readConntrack(ns: Netns): Promise<ConntrackCounters> {
  const r = await ns.execOk(['cat', '/proc/net/stat/nf_conntrack'])
  const s = parseConntrackStats(r.stdout)
  return { clashResolve: s.clashResolve ?? 0, insertFailed: s.insertFailed ?? 0, drop: s.drop ?? 0 }
}

/** Per-CPU counters are 32-bit: a delta survives one wrap. */
export function conntrackCountersDelta(before: ConntrackCounters, after: ConntrackCounters): ConntrackCounters {
  const d = (a: number, b: number): number => (b >= a ? b - a : b + 2 ** 32 - a)
  return {
    clashResolve: d(before.clashResolve, after.clashResolve),
    insertFailed: d(before.insertFailed, after.insertFailed),
    drop: d(before.drop, after.drop),
  }
}

/** Empties the router's conntrack table (both families) so a run starts with no entries. */
export async function flushConntrack(ns: Netns): Promise<void> {
  for (const fam of ['ipv4', 'ipv6']) {
    const r = await ns.exec(['conntrack', '-F', '-f', fam])
    // "0 flow entries have been deleted" exits 0; an empty table on old versions can exit 1.
    if (r.code !== 0 && !/flow entries/i.test(r.stderr)) {
      throw new LabError(`conntrack -F -f ${fam} failed in ${ns.name}: ${r.stderr.trim()}`, {
        hint: 'install the conntrack package',
      })
    }
  }
}
