// Result shapes of a benchmark run and their renderings: a plain-text table for stdout and the
// Markdown page (bench/results/latest.md). Pure: the caller writes the files.

import type { Added, GoalCheck, HoldStats, ShaperHold } from './analyze.js'
import type { QueueDelta } from './queue.js'
import type { Dist } from '../../harness/stats.js'

export type Profile = 'c10' | 'pairs'

export interface RunResult {
  profile: Profile
  /** dnsperf -Q. */
  rate: number
  durationS: number
  achievedQps: number
  sent: number
  completed: number
  lost: number
  lostA: number
  lostAAAA: number
  rcodeErrors: number
  a: Dist
  aaaa: Dist
  addedA?: Added
  addedAAAA?: Added
  hold?: HoldStats
  shaperHold?: ShaperHold
  /** dns_shaper_verdict_latency_seconds over the run: receipt to verdict of packets accepted at once (µs). */
  shaperVerdictUs?: { p50: number; p99: number; count: number }
  cpuUs?: number
  cpuSource?: 'schedstat' | 'stat'
  cpuUsPerPacket?: number
  queue?: QueueDelta
  /** Daemon counters over the run (pair_released, deadline_released, bypassed ...). */
  counters?: Record<string, number>
  /** CDF points (µs, fraction) for the plot. */
  cdfA: Array<[number, number]>
  cdfHoldMs?: Array<[number, number]>
}

export interface RateTest {
  rate: number
  achievedQps: number
  sent: number
  lost: number
  pass: boolean
}

export interface MaxRate {
  /** Highest tested rate with zero loss and ≥97 % of it achieved (0 when none passed). */
  zeroLossQps: number
  /** Lowest failing rate tested (undefined when the cap passed). */
  failedQps?: number
  capped: boolean
  tests: RateTest[]
}

export interface VariantResult {
  id: string
  label: string
  skipped?: string
  error?: string
  rssRestKb?: number
  /** RssAnon and RssFile of rssRestKb (private memory, mapped files). */
  rssRestAnonKb?: number
  rssRestFileKb?: number
  rssEndKb?: number
  /** CPU % of the verdict process with no traffic (1 s at rest). */
  idleCpuPct?: number
  hwmKb?: number
  /** Queries sent through it over the whole variant (warm-up, runs, search, top-up). */
  packets: number
  runs: RunResult[]
  maxRate?: MaxRate
  exitSummary?: Record<string, unknown>
}

export interface Machine {
  nproc: number
  cpuModel: string
  kernel: string
  node: string
  dnsperf?: string
  loadavg: number[]
}

export interface BenchReport {
  date: string
  machine: Machine
  config: Record<string, unknown>
  variants: VariantResult[]
  goals: GoalCheck[]
  notes: string[]
  elapsedS: number
}

const f0 = (v: number | undefined | null): string => (v == null || !Number.isFinite(v) ? '–' : String(Math.round(v)))
const f2 = (v: number | undefined | null): string => (v == null || !Number.isFinite(v) ? '–' : v.toFixed(2))
const f3 = (v: number | undefined | null): string => (v == null || !Number.isFinite(v) ? '–' : v.toFixed(3))
const kqps = (v: number | undefined): string =>
  v == null || !Number.isFinite(v) ? '–' : `${(v / 1000).toFixed(v < 10_000 ? 1 : 0)}k`

export const RUN_HEADER = [
  'variant',
  'clients',
  'rate',
  'got qps',
  'A p50 µs',
  'A p99',
  'A p99.9',
  '+A p50',
  '+A p99',
  '+A p99.9',
  'hold p50 ms',
  'hold p99',
  'hold max',
  'early',
  'lost',
  'CPU µs/pkt',
]

/** Early releases; in pair mode the AAAA released behind their A are shown too (early by design). */
function earlyCell(r: RunResult): string {
  if (!r.hold) return '–'
  const paired = r.counters?.['pairReleased'] ?? 0
  return paired > 0 ? `${r.hold.early} (paired ${paired})` : String(r.hold.early)
}

export function runRow(v: VariantResult, r: RunResult): string[] {
  const held = r.hold
  return [
    v.id,
    r.profile === 'pairs' ? 'stub' : '10',
    kqps(r.rate),
    kqps(r.achievedQps),
    f0(r.a.p50),
    f0(r.a.p99),
    f0(r.a.p999),
    f0(r.addedA?.p50),
    f0(r.addedA?.p99),
    f0(r.addedA?.p999),
    f3(held?.p50Ms),
    f3(held?.p99Ms),
    f3(held?.maxMs),
    earlyCell(r),
    String(r.lost),
    f2(r.cpuUsPerPacket),
  ]
}

export const VARIANT_HEADER = [
  'variant',
  'zero-loss max qps',
  'first failing qps',
  'idle CPU %',
  'RSS at rest MiB (anon+file)',
  'RSS after N pkts MiB',
  'N packets',
  'note',
]

export function variantRow(v: VariantResult): string[] {
  const mib = (kb: number | undefined): string => (kb === undefined ? '–' : (kb / 1024).toFixed(1))
  const m = v.maxRate
  return [
    v.id,
    m ? `${kqps(m.zeroLossQps)}${m.capped ? ' (cap)' : ''}` : '–',
    m?.failedQps ? kqps(m.failedQps) : '–',
    v.idleCpuPct === undefined ? '–' : v.idleCpuPct.toFixed(2),
    v.rssRestAnonKb === undefined || v.rssRestFileKb === undefined
      ? mib(v.rssRestKb)
      : `${mib(v.rssRestKb)} (${mib(v.rssRestAnonKb)}+${mib(v.rssRestFileKb)})`,
    mib(v.rssEndKb),
    v.packets ? `${(v.packets / 1e6).toFixed(2)}M` : '–',
    v.skipped ? `skipped: ${v.skipped}` : v.error ? `error: ${v.error}` : '',
  ]
}

export const GOAL_HEADER = ['goal', 'variant', 'vs', 'rate', 'value', 'reference', 'ratio', 'target', 'met']

export function goalRow(g: GoalCheck): string[] {
  const num = (x: number | null): string => (x === null ? '–' : Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(3))
  return [
    g.goal,
    g.variant,
    g.reference,
    g.rate ? kqps(g.rate) : 'max',
    num(g.value),
    num(g.referenceValue),
    g.ratio === null ? '–' : `${g.ratio.toFixed(2)}×`,
    g.limit,
    g.pass === null ? 'n/a' : g.pass ? 'yes' : 'NO',
  ]
}

/** Fixed-width text table. */
export function textTable(header: string[], rows: string[][]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  const line = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ')
  return [line(header), w.map(n => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n')
}

export function mdTable(header: string[], rows: string[][]): string {
  const cell = (s: string): string => s.replace(/\|/g, '\\|')
  return [
    `| ${header.map(cell).join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map(r => `| ${r.map(cell).join(' | ')} |`),
  ].join('\n')
}

function allRunRows(rep: BenchReport): string[][] {
  return rep.variants.flatMap(v => v.runs.map(r => runRow(v, r)))
}

export function renderText(rep: BenchReport): string {
  return [
    textTable(RUN_HEADER, allRunRows(rep)),
    '',
    textTable(VARIANT_HEADER, rep.variants.map(variantRow)),
    '',
    rep.goals.length
      ? textTable(GOAL_HEADER, rep.goals.map(goalRow))
      : '(no goals: nfq_ref hold or dns-shaper not measured)',
    ...(rep.notes.length ? ['', ...rep.notes.map(n => `note: ${n}`)] : []),
  ].join('\n')
}

export function renderMarkdown(rep: BenchReport, svgName: string): string {
  const m = rep.machine
  return [
    '# dns-shaper benchmark',
    '',
    `- date: ${rep.date} (run took ${rep.elapsedS.toFixed(0)} s)`,
    `- machine: ${m.nproc} CPUs, ${m.cpuModel}, kernel ${m.kernel}, node ${m.node}, dnsperf ${m.dnsperf ?? '?'}, load average at start ${m.loadavg.map(x => x.toFixed(2)).join(' ')}`,
    `- config: ${Object.entries(rep.config)
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join(', ')}`,
    '',
    'Lab: client ─ router (raw PREROUTING: `-p udp --dport 53 -j NFQUEUE --queue-num 0 --queue-bypass`, the same rule for every queue variant) ─ unbound, each in its own network namespace. dnsperf in the client namespace, A and AAAA queries for hostN.example.test.',
    "`+A` = A latency minus the baseline's at the same percentile, rate and client profile (µs). `hold` = AAAA latency minus the baseline's median AAAA latency (ms). `early` = AAAA answers faster than hold + the baseline's fastest answer (certainly released early). CPU = the verdict process's own time (all threads) per query.",
    '',
    '## Runs',
    '',
    mdTable(RUN_HEADER, allRunRows(rep)),
    '',
    '## Capacity and memory',
    '',
    mdTable(VARIANT_HEADER, rep.variants.map(variantRow)),
    '',
    '## Goals (ratios against nfq_ref measured in the same run)',
    '',
    rep.goals.length ? mdTable(GOAL_HEADER, rep.goals.map(goalRow)) : '(none measured)',
    '',
    ...(rep.notes.length ? ['## Notes', '', ...rep.notes.map(n => `- ${n}`), ''] : []),
    `![latency CDFs](${svgName})`,
    '',
  ].join('\n')
}
