// The verdict of `dns-shaper check`: can the shaper run here (no fail item), and does the node need it
// (race probe when it ran, kernel clash handling, conntrack counters, NOTRACK, the service dataplane)? Pure.
import type { ClashHandling } from '../kernel/release.js'
import type { ProbeVerdict } from '../probe/verdict.js'

export type Need = 'recommended' | 'optional' | 'not-needed' | 'unknown'

export interface VerdictInput {
  /** Release string as reported, for the text. */
  release: string
  /** undefined: the release could not be parsed. */
  kernel: ClashHandling | undefined
  conntrackLoaded: boolean
  /** undefined: DNS is tracked; otherwise the scope of the NOTRACK rules ('' = any destination). */
  dnsUntracked: string | undefined
  /** Per-second increases over the sample; undefined when not sampled. */
  rates: { insertFailed: number | undefined; clashResolve: number | undefined } | undefined
  /** Fail items, as "id: found". */
  blockers: string[]
  /**
   * Set when every service dataplane found translates services in eBPF before netfilter (Cilium,
   * Calico eBPF): the summary saying so. Optional: older callers and tests leave it out.
   */
  dataplaneInert?: string
  /** What the race probe measured (check --probe); it outranks the kernel version table. */
  probe?: ProbeVerdict
}

export interface Verdict {
  need: Need
  ready: boolean
  blockers: string[]
  line: string
}

export function formatRate(perSecond: number): string {
  const r = perSecond >= 10 ? Math.round(perSecond) : Math.round(perSecond * 100) / 100
  return `${r}/s`
}

function decideNeed(v: VerdictInput): { need: Need; text: string } {
  if (v.dnsUntracked !== undefined) {
    const scope = v.dnsUntracked === '' ? '' : ` (to ${v.dnsUntracked})`
    return { need: 'not-needed', text: `not needed: DNS is not tracked${scope}` }
  }
  if (!v.conntrackLoaded)
    return { need: 'not-needed', text: 'not needed: conntrack is not loaded in this network namespace' }
  // The raw rule would match nothing: no query reaches netfilter with the service address.
  if (v.dataplaneInert !== undefined) return { need: 'not-needed', text: `not needed: ${v.dataplaneInert}` }
  const k = v.kernel
  const failed = v.rates?.insertFailed
  const p = v.probe
  // Measured beats read: a backported kernel's version says "drops" when it resolves, and the reverse.
  if (p?.outcome === 'drops' && p.figures !== undefined) {
    return {
      need: 'recommended',
      text: `shaping recommended: the probe saw this kernel drop ${p.figures.dropped} of ${p.figures.clashes} clashes (measured; the probe outranks the kernel version table)`,
    }
  }
  // On 5.6–5.9 insert_failed also counts resolved clashes, so a rising value there is not proof of drops.
  // The probe tells which counting this kernel does: a clash_resolve counter means insert_failed counts
  // only drops; resolved clashes without one mean a rising insert_failed may be resolutions too.
  const counter = p?.phases?.[0]?.counter
  const risingMeansDrop =
    counter === 'clash_resolve' ||
    (counter === undefined && (k === undefined || k.insertFailedMeansDrop || k.level !== 'all'))
  if (failed !== undefined && failed > 0 && risingMeansDrop) {
    return {
      need: 'recommended',
      text: `shaping recommended: insert_failed rising (${formatRate(failed)}): the kernel is dropping clashing DNS packets`,
    }
  }
  if (p?.outcome === 'resolves' && p.figures !== undefined) {
    const table = k === undefined ? 'cannot read its release' : `says "${k.level}"`
    return {
      need: 'optional',
      text: `optional: the probe saw this kernel resolve ${p.figures.resolved} clashes and drop none (measured; the probe outranks the kernel version table, which ${table})`,
    }
  }
  // The probe ran but could not decide: say so beside the version table's answer.
  const fallback = p === undefined ? '' : ` (${p.text}; decided by the kernel version table)`
  if (k?.level === 'drop')
    return {
      need: 'recommended',
      text: `shaping recommended: kernel ${v.release} drops clashing UDP conntrack entries${fallback}`,
    }
  if (k?.level === 'same-tuple') {
    return {
      need: 'recommended',
      text: `shaping recommended: kernel ${v.release} drops clashes DNATed to different endpoints${fallback}`,
    }
  }
  if (k?.level === 'all') {
    const seen = v.rates === undefined ? undefined : (v.rates.clashResolve ?? v.rates.insertFailed)
    return {
      need: 'optional',
      text: `optional: the kernel resolves clashes (${seen === undefined ? 'not sampled' : `${formatRate(seen)} seen`})${fallback}`,
    }
  }
  return {
    need: 'unknown',
    text: `unknown: cannot tell clash handling from kernel release "${v.release}"; ${failed === undefined ? 'sample' : 'keep watching'} insert_failed${fallback}`,
  }
}

export function decideVerdict(v: VerdictInput): Verdict {
  const { need, text } = decideNeed(v)
  const ready = v.blockers.length === 0
  return { need, ready, blockers: v.blockers, line: ready ? text : `cannot run: ${v.blockers.join('; ')} — ${text}` }
}
