// What a kernel release does with clashing UDP conntrack entries (the A/AAAA race), from its version.
// Pure: no I/O. Mainline versions only; distribution kernels may carry backports (see clashHandling).

export interface KernelVersion {
  major: number
  minor: number
  patch: number
  /** The string as given (uname -r). */
  release: string
}

/**
 * Parses `uname -r` style strings: "6.18.44-fc-v769", "5.4.0-150-generic", "3.10.0-1160.el7.x86_64",
 * "6.1" (no patch). Undefined when there is no leading MAJOR.MINOR.
 */
export function parseKernelRelease(release: string): KernelVersion | undefined {
  const m = /^\s*(\d+)\.(\d+)(?:\.(\d+))?/.exec(release)
  if (m === null) return undefined
  return {
    major: Number(m[1]),
    minor: Number(m[2]),
    patch: m[3] === undefined ? 0 : Number(m[3]),
    release: release.trim(),
  }
}

/** a < b: negative, equal: 0, a > b: positive (major.minor.patch only). */
export function compareKernel(
  a: Pick<KernelVersion, 'major' | 'minor' | 'patch'>,
  b: Pick<KernelVersion, 'major' | 'minor' | 'patch'>,
): number {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch
}

export function kernelAtLeast(v: KernelVersion, major: number, minor: number): boolean {
  return compareKernel(v, { major, minor, patch: 0 }) >= 0
}

/**
 * drop:       NATed clashes lose (insert_failed, the query is dropped: a 5 s resolver timeout).
 * same-tuple: clashes resolved when both packets end up with the same tuple; DNAT to different
 *             endpoints (kube-proxy picking a random endpoint per packet) still drops.
 * all:        clashing UDP entries are inserted too, whatever the DNAT result.
 */
export type ClashLevel = 'drop' | 'same-tuple' | 'all'

export interface ClashHandling {
  level: ClashLevel
  /** insert_failed counts only unresolved clashes and `clashres` counts resolved ones (5.10+). */
  clashCounter: boolean
  /** Before 5.10 insert_failed also counted clashes that were resolved, so a rising value is ambiguous. */
  insertFailedMeansDrop: boolean
  /** One operator-facing sentence. */
  summary: string
}

// Mainline steps (netfilter commits, by title):
//  4.19 "netfilter: nf_conntrack: resolve clash for matching conntracks" — the 4.8-era clash
//       resolution skipped NATed entries; from here an identical (post-NAT) tuple is merged.
//  5.0  "netfilter: nf_nat: skip nat clash resolution for same-origin entries" — SNAT no longer
//       picks a new source port for the second packet of the same flow, so its tuple matches.
//  5.6  "netfilter: conntrack: allow insertion of clashing entries" — UDP clashes with a different
//       DNAT result get their own entry instead of being dropped.
//  5.10 "netfilter: conntrack: add clash resolution stat counter" — `clashres` column; insert_failed
//       from then on counts only clashes that could not be resolved.
const BACKPORT_NOTE =
  'distribution kernels (RHEL, Ubuntu HWE, cloud vendors) may carry backports: trust the live counters over the version'

export function clashHandling(v: KernelVersion): ClashHandling {
  const clashCounter = kernelAtLeast(v, 5, 10)
  const base = { clashCounter, insertFailedMeansDrop: clashCounter }
  if (!kernelAtLeast(v, 4, 19)) {
    return {
      ...base,
      level: 'drop',
      summary: `kernel ${v.release} drops the losing packet of a NATed UDP clash (insert_failed; the resolver waits 5 s); ${BACKPORT_NOTE}`,
    }
  }
  if (!kernelAtLeast(v, 5, 6)) {
    const snat = kernelAtLeast(v, 5, 0) ? '' : ' (same-origin SNAT clashes only from 5.0)'
    return {
      ...base,
      level: 'same-tuple',
      summary: `kernel ${v.release} resolves clashes with identical tuples${snat} but drops clashes DNATed to different endpoints (services with several endpoints); ${BACKPORT_NOTE}`,
    }
  }
  return {
    ...base,
    level: 'all',
    summary: clashCounter
      ? `kernel ${v.release} resolves UDP clashes, also with different DNAT results, and counts them in clashres`
      : `kernel ${v.release} resolves UDP clashes, also with different DNAT results; it has no clash counter and its insert_failed also counts resolved clashes`,
  }
}
