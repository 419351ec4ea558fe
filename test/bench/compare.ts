// bench/lib/compare.ts on synthetic reports: each variant against its @before twin, per run and as the
// median over runs, the C floor beside, rows only where both sides ran, and the markdown marks.
import t from 'tap'
import { compareMarkdown, compareRuns, geomean } from '../../bench/lib/compare.js'
import type { BenchReport, RunResult, VariantResult } from '../../bench/lib/report.js'

const run = (rate: number, cpu: number | undefined, aP50: number, profile: 'c10' | 'pairs' = 'c10'): RunResult =>
  ({
    profile,
    rate,
    a: { p50: aP50 },
    ...(cpu === undefined ? {} : { cpuUsPerPacket: cpu }),
  }) as unknown as RunResult
const variant = (id: string, runs: RunResult[]): VariantResult => ({ id, label: id, packets: 0, runs })
const report = (variants: VariantResult[], date: string): BenchReport => ({
  date,
  machine: { nproc: 2, cpuModel: 'x', kernel: 'k', node: 'v20', loadavg: [1, 1, 1] },
  config: {},
  variants,
  goals: [],
  notes: [],
  elapsedS: 300,
})

const reports = [
  report(
    [
      variant('baseline', [run(1000, undefined, 30)]),
      variant('nfq-ref-hold', [run(1000, 20, 50)]),
      variant('dns-shaper-fixed', [run(1000, 40, 100), run(10000, 10, 60)]),
      variant('dns-shaper-fixed@before', [run(1000, 40, 80), run(10000, 10, 60)]),
      // No twin: no row.
      variant('dns-shaper-pair', [run(1000, 30, 90)]),
    ],
    'd1',
  ),
  report(
    [
      variant('nfq-ref-hold', [run(1000, 24, 50)]),
      variant('dns-shaper-fixed', [run(1000, 44, 100)]),
      variant('dns-shaper-fixed@before', [run(1000, 40, 100)]),
    ],
    'd2',
  ),
  report(
    [
      variant('nfq-ref-hold', [run(1000, 22, 50)]),
      variant('dns-shaper-fixed', [run(1000, 36, 100)]),
      variant('dns-shaper-fixed@before', [run(1000, 40, 125)]),
    ],
    'd3',
  ),
]

t.test('rows: each variant against its twin, per run and the median of the per-run ratios', async t => {
  const rows = compareRuns(reports)
  t.same(
    rows.map(r => [r.variant, r.profile, r.rate]),
    [
      ['dns-shaper-fixed', 'c10', 1000],
      ['dns-shaper-fixed', 'c10', 10000],
    ],
    'only what ran with an @before twin',
  )
  const [r1k, r10k] = rows
  t.same(r1k!.cpuUs, [
    [40, 40],
    [44, 40],
    [36, 40],
  ])
  t.equal(r1k!.cpuRatio, 1, 'CPU: median of 1, 1.1, 0.9')
  t.equal(r1k!.aP50Ratio, 1, 'A p50: median of 1.25, 1, 0.8')
  t.equal(r1k!.floorCpuUs, 22, 'the C floor: median of 20, 24, 22')
  t.equal(r10k!.cpuUs.length, 1, 'a rate that ran once has one pair')
  t.equal(r10k!.floorCpuUs, undefined, 'no floor at a rate it did not run')
})

t.test('markdown: ratios outside the bound in bold, the runs listed, the geometric means', async t => {
  const md = compareMarkdown(reports, compareRuns(reports))
  t.match(md, /- run 1: d1, load average at start 1\.00 1\.00 1\.00, 2 CPUs, 300 s/)
  t.match(
    md,
    /\| dns-shaper-fixed \| 10 \| 1000 \| 40\.00 vs 40\.00 \| {2}1\.00 \(1\.00, 1\.10, 0\.90\) \| 100 vs 100 \| {2}1\.00 \(1\.25, 1\.00, 0\.80\) \| 22\.00 \|/,
  )
  const skewed = compareMarkdown(reports.slice(0, 1), compareRuns(reports.slice(0, 1)))
  t.match(skewed, /\*\*1\.25\*\* \(1\.25\)/, 'a 25 % slower A median is marked')
  t.match(md, /Geometric mean over the 2 rows: CPU per query 1\.00, A p50 1\.00\./)
  t.equal(geomean([2, 0.5]), 1)
})
