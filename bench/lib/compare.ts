// Side-by-side runs of two builds (`bench/run.ts --compare DIR`, repeated): each dns-shaper variant's
// CPU per query and A median against its `@before` twin, per run and as the median over runs, with
// the C floor (nfq_ref hold) of the same runs beside them. Pure: reports in, rows and markdown out.
import type { BenchReport, Profile } from './report.js'

export interface CompareRow {
  variant: string
  profile: Profile
  rate: number
  /** One entry per report that has both sides: [now, before]. */
  cpuUs: Array<[number, number]>
  aP50Us: Array<[number, number]>
  /** Median over runs of now/before. */
  cpuRatio: number
  aP50Ratio: number
  /** The C floor's CPU per query at the same profile and rate, median over runs (when it ran). */
  floorCpuUs?: number
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length === 0 ? NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

const FLOOR = 'nfq-ref-hold'

/** Rows for every (variant, profile, rate) that ran with an `@before` twin in at least one report. */
export function compareRuns(reports: readonly BenchReport[], tag = 'before'): CompareRow[] {
  const key = (v: string, p: Profile, r: number): string => `${v}|${p}|${r}`
  const rows = new Map<string, CompareRow>()
  const floor = new Map<string, number[]>()
  for (const rep of reports) {
    const runs = new Map<string, { cpu?: number; a: number }>()
    for (const v of rep.variants)
      for (const r of v.runs) runs.set(key(v.id, r.profile, r.rate), { cpu: r.cpuUsPerPacket, a: r.a.p50 })
    for (const v of rep.variants) {
      if (v.id === FLOOR)
        for (const r of v.runs)
          if (r.cpuUsPerPacket !== undefined)
            floor.set(key('', r.profile, r.rate), [...(floor.get(key('', r.profile, r.rate)) ?? []), r.cpuUsPerPacket])
      if (v.id.includes('@') || !v.id.startsWith('dns-shaper')) continue
      for (const r of v.runs) {
        const before = runs.get(key(`${v.id}@${tag}`, r.profile, r.rate))
        if (!before || r.cpuUsPerPacket === undefined || before.cpu === undefined) continue
        const k = key(v.id, r.profile, r.rate)
        const row = rows.get(k) ?? {
          variant: v.id,
          profile: r.profile,
          rate: r.rate,
          cpuUs: [],
          aP50Us: [],
          cpuRatio: NaN,
          aP50Ratio: NaN,
        }
        row.cpuUs.push([r.cpuUsPerPacket, before.cpu])
        row.aP50Us.push([r.a.p50, before.a])
        rows.set(k, row)
      }
    }
  }
  return [...rows.values()].map(row => {
    const f = floor.get(key('', row.profile, row.rate))
    return {
      ...row,
      cpuRatio: median(row.cpuUs.map(([n, b]) => n / b)),
      aP50Ratio: median(row.aP50Us.map(([n, b]) => n / b)),
      ...(f ? { floorCpuUs: median(f) } : {}),
    }
  })
}

/** Geometric mean of the rows' median ratios: one figure per measure across operating points. */
export function geomean(xs: readonly number[]): number {
  return Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length)
}

/** The rows as a markdown table, with the runs' dates and load, and the two geometric means. */
export function compareMarkdown(reports: readonly BenchReport[], rows: readonly CompareRow[], bound = 0.05): string {
  const r2 = (x: number): string => x.toFixed(2)
  const mark = (x: number): string => (Math.abs(x - 1) > bound ? ` **${r2(x)}**` : ` ${r2(x)}`)
  const lines = [
    `# Side by side: this build against \`@before\` (${reports.length} runs of \`bench/run.ts --compare\`)`,
    '',
    ...reports.map(
      (r, i) =>
        `- run ${i + 1}: ${r.date}, load average at start ${r.machine.loadavg.map(l => l.toFixed(2)).join(' ')}, ${r.machine.nproc} CPUs, ${r.elapsedS.toFixed(0)} s`,
    ),
    '',
    `Ratio = now / before (median over runs; per run in brackets). Bold: outside ±${bound * 100} %.`,
    '',
    '| variant | clients | rate | CPU µs/query now vs before | ratio | A p50 µs now vs before | ratio | C floor CPU µs/query |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      row =>
        `| ${row.variant} | ${row.profile === 'pairs' ? 'stub' : '10'} | ${row.rate} | ` +
        `${r2(median(row.cpuUs.map(c => c[0])))} vs ${r2(median(row.cpuUs.map(c => c[1])))} | ` +
        `${mark(row.cpuRatio)} (${row.cpuUs.map(([n, b]) => r2(n / b)).join(', ')}) | ` +
        `${median(row.aP50Us.map(c => c[0]))} vs ${median(row.aP50Us.map(c => c[1]))} | ` +
        `${mark(row.aP50Ratio)} (${row.aP50Us.map(([n, b]) => r2(n / b)).join(', ')}) | ` +
        `${row.floorCpuUs === undefined ? '–' : r2(row.floorCpuUs)} |`,
    ),
    '',
    `Geometric mean over the ${rows.length} rows: CPU per query ${r2(geomean(rows.map(r => r.cpuRatio)))}, ` +
      `A p50 ${r2(geomean(rows.map(r => r.aP50Ratio)))}.`,
    '',
  ]
  return lines.join('\n')
}
