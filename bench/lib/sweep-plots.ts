// The scaling sweeps' SVG plots (depth, flows, queues, memory), x-y panels through plot.ts. Pure: the
// caller writes the files.
import type { XyPanel } from './plot.js'
import { renderXySvg } from './plot.js'
import type { DepthResult, FlowsResult, MemoryResult, QueuesResult } from './sweep-results.js'
import { PAIR_TABLE_SLOTS } from './sweep.js'

const label = (variant: string, extra: string): string => `${variant} ${extra}`

/**
 * One series per distinct key of the rows, in the order keys first appear, named from its first row;
 * returns the series of y (NaN where a row has none) over x.
 */
function seriesBy<R>(rows: readonly R[], key: (r: R) => string, name: (r: R) => string, x: (r: R) => number) {
  const groups = new Map<string, R[]>()
  for (const r of rows) groups.set(key(r), [...(groups.get(key(r)) ?? []), r])
  return (y: (r: R) => number | undefined) =>
    [...groups.values()].map(g => ({
      label: name(g[0]!),
      points: g.map(r => [x(r), y(r) ?? NaN] as [number, number]),
    }))
}

export function depthPlot(d: DepthResult, subtitle: string): string {
  const ok = d.rows.filter(r => !r.error)
  const series = seriesBy(
    ok,
    r => `${r.variant}|${r.rate}`,
    r => label(r.variant, `@${Number(r.rate) / 1000}k lookups/s`),
    r => r.expectedDepth,
  )
  const panels: XyPanel[] = [
    {
      title: 'CPU per query vs held depth',
      xLabel: 'offered held depth (AAAA/s × hold, log)',
      yLabel: 'µs CPU per query (log)',
      xLog: true,
      yLog: true,
      series: series(r => r.cpuUsPerQuery),
    },
    {
      title: 'A latency p99 vs held depth',
      xLabel: 'offered held depth (AAAA/s × hold, log)',
      yLabel: 'A p99 µs (log)',
      xLog: true,
      yLog: true,
      series: series(r => r.a?.p99),
    },
    {
      title: 'CPU per query, × C floor',
      xLabel: 'offered held depth (log)',
      yLabel: '× nfq_ref hold',
      xLog: true,
      yLog: false,
      series: series(r => r.cpuRatio ?? undefined),
    },
    {
      title: 'A latency p50 vs held depth',
      xLabel: 'offered held depth (log)',
      yLabel: 'A p50 µs (log)',
      xLog: true,
      yLog: true,
      series: series(r => r.a?.p50),
    },
  ]
  return renderXySvg('dns-shaper: cost against held depth', panels, subtitle)
}

export function flowsPlot(fl: FlowsResult, subtitle: string): string {
  const ok = fl.rows.filter(r => !r.error)
  const gaps = [...new Set(ok.map(r => r.gap))]
  const mk = [{ x: PAIR_TABLE_SLOTS, label: `${PAIR_TABLE_SLOTS} slots` }]
  const panels: XyPanel[] = [
    {
      title: 'AAAA released with their A',
      xLabel: 'flows per pair window (log)',
      yLabel: '% of AAAA',
      xLog: true,
      yLog: false,
      yMin: 0,
      yMax: 100,
      markers: mk,
      series: gaps.flatMap(g => [
        {
          label: `${g}: with their A (daemon)`,
          points: ok
            .filter(r => r.gap === g)
            .map(r => [r.flows, (r.pairedShareCounters ?? NaN) * 100] as [number, number]),
        },
        {
          label: `${g}: at the deadline (daemon)`,
          points: ok
            .filter(r => r.gap === g)
            .map(r => [r.flows, (1 - (r.pairedShareCounters ?? NaN)) * 100] as [number, number]),
        },
      ]),
    },
    {
      title: 'Pair-table evictions per lookup',
      xLabel: 'flows per pair window (log)',
      yLabel: 'evictions per lookup',
      xLog: true,
      yLog: false,
      markers: mk,
      series: gaps.map(g => ({
        label: `${g}: evictions`,
        points: ok.filter(r => r.gap === g).map(r => [r.flows, r.evictionsPerLookup ?? NaN] as [number, number]),
      })),
    },
  ]
  return renderXySvg('dns-shaper pair mode: flows per window past the pair table', panels, subtitle)
}

export function queuesPlot(q: QueuesResult, subtitle: string): string {
  const ok = q.rows.filter(r => !r.error)
  const series = seriesBy(
    ok,
    r => `${r.client}|${r.variant}`,
    r => `${r.variant} (${r.client})`,
    r => r.queues,
  )
  return renderXySvg(
    'dns-shaper: one queue against two',
    [
      {
        title: 'zero-loss max rate',
        xLabel: 'queues',
        yLabel: 'qps',
        xLog: false,
        yLog: false,
        series: series(r => r.maxQps),
      },
      {
        title: 'CPU per query',
        xLabel: 'queues',
        yLabel: 'µs CPU per query',
        xLog: false,
        yLog: false,
        series: series(r => r.point?.cpuUsPerQuery),
      },
    ],
    subtitle,
  )
}

export function memoryPlot(m: MemoryResult, subtitle: string): string {
  const ok = m.rows.filter(r => !r.error)
  const series = seriesBy(
    ok,
    r => r.variant,
    r => r.variant,
    r => r.held ?? r.target,
  )
  return renderXySvg(
    'memory against held packets',
    [
      {
        title: 'RSS',
        xLabel: 'held packets (log)',
        yLabel: 'MiB',
        xLog: true,
        yLog: false,
        series: series(r => (r.rssKb ?? NaN) / 1024),
      },
      {
        title: 'RSS above rest per held packet',
        xLabel: 'held packets (log)',
        yLabel: 'bytes (log)',
        xLog: true,
        yLog: true,
        series: series(r => r.rssBytesPerHeld),
      },
    ],
    subtitle,
  )
}
