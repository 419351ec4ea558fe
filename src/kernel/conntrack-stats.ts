// Conntrack statistics from the best source this kernel offers: ctnetlink (IPCTNL_MSG_CT_GET_STATS_CPU,
// as `conntrack -S`), else /proc/net/stat/nf_conntrack (only with CONFIG_NF_CONNTRACK_PROCFS).
// "Loaded" is decided by nf_conntrack_count, never by the stat file. Reads only; no metrics, no policy.
import { conntrackStats as nativeConntrackStats, type ConntrackCpuCounters } from '../dataplane/nfqueue.js'
import {
  CONNTRACK_FILE,
  DEFAULT_PROC_ROOT,
  readConntrackCount,
  readConntrackStats,
  type ConntrackStats,
} from './procfs.js'
import { errorMessage } from '../errors.js'

/** Where conntrack statistics can come from, in order of preference. */
export const CONNTRACK_SOURCES = ['netlink', 'procfs'] as const
export type ConntrackSource = (typeof CONNTRACK_SOURCES)[number]

export interface SourceResult {
  ok: boolean
  /** Why it gave no statistics (absent when ok). */
  error?: string
}

export interface ConntrackReading {
  /** nf_conntrack is loaded in this network namespace (nf_conntrack_count exists). */
  loaded: boolean
  /** nf_conntrack_count, when readable. */
  entries: number | undefined
  /** The source `stats` came from; 'none' when conntrack is not loaded or no source answered. */
  source: ConntrackSource | 'none'
  stats: ConntrackStats | undefined
  /** Every source's outcome this read: a failing source is reported, never silently dropped. */
  sources: Record<ConntrackSource, SourceResult>
}

/** The three reads, injectable for tests (fixtures, fakes). */
export interface ConntrackReaders {
  /** nf_conntrack_count, undefined when the file is absent (module not loaded). */
  count(): Promise<number | undefined>
  /** Throws when ctnetlink cannot answer (no CAP_NET_ADMIN, nf_conntrack_netlink unavailable). */
  netlink(): Promise<ConntrackStats>
  /** undefined when the stat file is absent (CONFIG_NF_CONNTRACK_PROCFS off, or not loaded). */
  procfs(): Promise<ConntrackStats | undefined>
}

/** ctnetlink's per-CPU rows in the shape the procfs parser produces, so deltas work on either. */
export function statsFromNetlink(cpus: ConntrackCpuCounters[], entries?: number): ConntrackStats {
  const columns: string[] = []
  for (const c of cpus) for (const name of Object.keys(c.counters)) if (!columns.includes(name)) columns.push(name)
  const sorted = [...cpus].sort((a, b) => a.cpu - b.cpu)
  const rows = sorted.map(c => columns.map(name => c.counters[name] ?? 0))
  const totals: Record<string, number> = {}
  columns.forEach((name, k) => {
    totals[name] = rows.reduce((sum, row) => sum + row[k]!, 0)
  })
  const pick = (name: string): number | undefined => (columns.includes(name) ? totals[name] : undefined)
  return {
    columns,
    cpus: rows,
    totals,
    entries,
    insertFailed: pick('insert_failed'),
    drop: pick('drop'),
    clashResolve: pick('clash_resolve'),
  }
}

export function defaultConntrackReaders(root: string = DEFAULT_PROC_ROOT): ConntrackReaders {
  return {
    count: () => readConntrackCount(root),
    netlink: async () => statsFromNetlink(nativeConntrackStats()),
    procfs: () => readConntrackStats(root),
  }
}

/**
 * Reads conntrack statistics, netlink first. When nf_conntrack is not loaded neither source is asked:
 * a ctnetlink request would make the kernel load nf_conntrack_netlink and with it nf_conntrack.
 * Both sources are read when conntrack is loaded, so each one's health is visible on every scrape.
 */
export async function readConntrack(readers: ConntrackReaders): Promise<ConntrackReading> {
  let entries: number | undefined
  let countError: string | undefined
  try {
    entries = await readers.count()
  } catch (e: unknown) {
    countError = errorMessage(e)
  }
  if (entries === undefined && countError === undefined) {
    const why = 'nf_conntrack is not loaded in this network namespace (no nf_conntrack_count)'
    return {
      loaded: false,
      entries: undefined,
      source: 'none',
      stats: undefined,
      sources: { netlink: { ok: false, error: why }, procfs: { ok: false, error: why } },
    }
  }
  const [netlink, procfs] = await Promise.all([
    readers.netlink().then(
      s => ({ stats: s as ConntrackStats | undefined, result: { ok: true } as SourceResult }),
      (e: unknown) => ({ stats: undefined, result: { ok: false, error: errorMessage(e) } }),
    ),
    readers.procfs().then(
      s => ({
        stats: s,
        result: s
          ? ({ ok: true } as SourceResult)
          : {
              ok: false,
              error: `no /proc/${CONNTRACK_FILE} (kernel built without CONFIG_NF_CONNTRACK_PROCFS)`,
            },
      }),
      (e: unknown) => ({ stats: undefined, result: { ok: false, error: errorMessage(e) } }),
    ),
  ])
  const chosen = netlink.stats ? 'netlink' : procfs.stats ? 'procfs' : 'none'
  const stats = netlink.stats ?? procfs.stats
  if (stats && entries !== undefined) stats.entries = entries
  return {
    // A count file we could not read: conntrack is loaded if a source answered.
    loaded: entries !== undefined || stats !== undefined,
    entries,
    source: chosen,
    stats,
    sources: { netlink: netlink.result, procfs: procfs.result },
  }
}
