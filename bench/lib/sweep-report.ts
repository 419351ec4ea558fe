// Renders the scaling sweeps' results: the Markdown page (bench/results/sweeps.md) and the SVG plots
// (depth, flows, queues, memory). Pure: the caller writes the files.

import type { XyPanel } from './plot.js'
import { renderXySvg } from './plot.js'
import type { Machine } from './report.js'
import { mdTable } from './report.js'
import { limits } from '../../src/dataplane/constants.js'
import type { DepthResult, FlowsResult, MemoryResult, QueuesResult, SweepPlan } from './sweep.js'
import { KERNEL_HOLD_LIMIT, PAIR_TABLE_SLOTS, marginalBytesPerHeld } from './sweep.js'

export interface LoadSnapshot {
  /** 1, 5, 15 minute load averages. */
  loadavg: number[]
  /** Busiest processes ("%CPU command"), from ps. */
  top: string[]
}

export interface SweepReport {
  date: string
  machine: Machine
  load: { before: LoadSnapshot; after?: LoadSnapshot }
  plan: SweepPlan
  quick: boolean
  estimateS: number
  depth?: DepthResult
  flows?: FlowsResult
  queues?: QueuesResult
  memory?: MemoryResult
  notes: string[]
  elapsedS: number
}

const f = (v: number | null | undefined, digits = 2): string =>
  v === undefined || v === null || !Number.isFinite(v) ? '–' : v.toFixed(digits)
const x = (v: number | null | undefined): string => (v === undefined || v === null ? '–' : `${v.toFixed(2)}×`)
const pct = (v: number | undefined): string => (v === undefined ? '–' : `${(v * 100).toFixed(1)} %`)
const n = (v: number | undefined): string => (v === undefined ? '–' : String(Math.round(v)))

function depthSection(d: DepthResult): string[] {
  const o: string[] = ['## Held depth', '']
  o.push(
    'Stub clients (one socket per lookup, A and AAAA back to back), after a warm-up of one full hold. ' +
      '"offered" = AAAA/s × hold: the depth if every AAAA is held (pair mode releases them with their A, so its ' +
      'measured depth stays near 0); "held" = packets waiting in the kernel queue when the measured part ended. CPU = all threads of the verdict process, kernel time of its verdict calls ' +
      'included (that is where the kernel walks its queue list). × floor = against nfq_ref hold at the same hold and rate.',
    '',
  )
  o.push(
    mdTable(
      [
        'variant',
        'hold ms',
        'lookups/s',
        'offered depth',
        'held',
        'CPU µs/query',
        '× floor',
        'A p50 µs',
        'A p99 µs',
        '+A p99 µs',
        '× floor',
        'lost A/AAAA',
      ],
      d.rows.map(r =>
        r.error
          ? [
              r.variant,
              String(r.holdMs),
              n(r.rate),
              n(r.expectedDepth),
              `error: ${r.error}`,
              '',
              '',
              '',
              '',
              '',
              '',
              '',
            ]
          : [
              r.variant,
              String(r.holdMs),
              n(r.rate),
              n(r.expectedDepth),
              n(r.depth),
              f(r.cpuUsPerQuery),
              x(r.cpuRatio),
              n(r.a?.p50),
              n(r.a?.p99),
              n(r.addedA?.p99),
              x(r.addedP99Ratio),
              `${r.lostA ?? '–'}/${r.lostAAAA ?? '–'}`,
            ],
      ),
    ),
  )
  o.push(
    '',
    'Baseline (no queue, same client): ' +
      d.baseline.map(b => `${n(b.rate)}/s A p50 ${n(b.a.p50)} p99 ${n(b.a.p99)} µs`).join('; '),
    '',
  )
  o.push('Knees (first offered depth where the value exceeds 2× its value at the lowest depth of the same rate):', '')
  o.push(
    mdTable(
      ['variant', 'lookups/s', 'CPU/query knee at depth', 'A p50 knee at depth'],
      d.knees.map(k => [
        k.variant,
        n(k.rate),
        k.cpuKneeDepth === undefined ? 'none' : n(k.cpuKneeDepth),
        k.latencyKneeDepth === undefined ? 'none' : n(k.latencyKneeDepth),
      ]),
    ),
    '',
  )
  return o
}

function flowsSection(fl: FlowsResult): string[] {
  const o: string[] = ['## Flows per pair window', '']
  o.push(
    `dns-shaper pair at ${fl.options.rate} lookups/s, pair window = hold = W; flows per window = rate × W against the ` +
      `table's ${PAIR_TABLE_SLOTS} slots. "back-to-back": A and AAAA in one sendmmsg (glibc, musl); "half-window": ` +
      "the AAAA W/2 after its A (stress: its A's entry must outlive rate × W/2 newer ones). paired (daemon) = " +
      'pair_released / (pair_released + deadline_released) over the measured part: exact, and what the supported ' +
      'maximum is read from; paired (client) = lookups whose AAAA answer came at most W/2 after their A answer (a ' +
      'deadline release comes W later; on a saturated machine path delays of tens of ms blur it at small W). ' +
      `× floor: CPU per query against nfq_ref accept (every query verdicted at once) at the same rate: ${f(fl.floor?.cpuUsPerQuery)} µs.` +
      (fl.evictionCounter ? '' : ' The daemon exported no eviction counter in this run.'),
    '',
  )
  o.push(
    mdTable(
      [
        'W ms',
        'flows/window',
        'gap',
        'paired (client)',
        'paired (daemon)',
        'evictions',
        'per lookup',
        'AAAA p50 µs',
        'AAAA p99 µs',
        'CPU µs/query',
        '× floor',
        'lost A/AAAA',
      ],
      fl.rows.map(r =>
        r.error
          ? [String(r.windowMs), n(r.flows), r.gap, `error: ${r.error}`, '', '', '', '', '', '', '', '']
          : [
              String(r.windowMs),
              n(r.flows),
              r.gap,
              pct(r.pairedShare),
              pct(r.pairedShareCounters),
              n(r.evictions),
              f(r.evictionsPerLookup, 3),
              n(r.aaaa?.p50),
              n(r.aaaa?.p99),
              f(r.cpuUsPerQuery),
              x(r.cpuRatio),
              `${r.lostA ?? '–'}/${r.lostAAAA ?? '–'}`,
            ],
      ),
    ),
    '',
  )
  o.push(
    'Supported (largest flows per window with ≥ 99 % of AAAA paired): ' +
      fl.supported
        .map(
          s =>
            `${s.gap}: ${s.maxFlowsPaired99 === undefined ? 'none measured' : n(s.maxFlowsPaired99)}${s.firstBelow99 === undefined ? ' (no failure within the sweep)' : `, below 99 % from ${n(s.firstBelow99)}`}`,
        )
        .join('; '),
    '',
  )
  return o
}

function queuesSection(q: QueuesResult): string[] {
  const o: string[] = ['## Queues', '']
  o.push(
    `dnsperf -c 10 (CPU at ${q.options.dnsperfRate} qps) for fixed mode, stub clients (CPU at ${q.options.stubRate} lookups/s = ` +
      `${2 * q.options.stubRate} qps) for pair mode; --queues 2 uses --queue-balance (one flow stays on one queue) and the C ` +
      'floor then runs twice, one nfq_ref per queue (CPU summed). Zero-loss max: bracketing search, ≥ 97 % of the rate ' +
      'achieved and, for the stub client, sends on schedule (otherwise the client is the limit).',
    '',
  )
  o.push(
    mdTable(
      [
        'client',
        'variant',
        'queues',
        'CPU µs/query',
        '× floor',
        'A p99 µs',
        'lost',
        'zero-loss max qps',
        '× floor',
        'note',
      ],
      q.rows.map(r => [
        r.client,
        r.variant,
        String(r.queues),
        f(r.point?.cpuUsPerQuery),
        x(r.cpuRatio),
        n(r.point?.a.p99),
        r.point ? String(r.point.lostA + r.point.lostAAAA) : '–',
        n(r.maxQps),
        x(r.maxRatio),
        r.error
          ? `error: ${r.error}`
          : r.maxRate?.capped
            ? 'cap reached'
            : r.maxRate?.failedQps
              ? `fails at ${n(r.maxRate.failedQps * (r.client === 'stub' ? 2 : 1))}`
              : '',
      ]),
    ),
    '',
  )
  return o
}

function memorySection(m: MemoryResult): string[] {
  const o: string[] = ['## Memory per held packet', '']
  o.push(
    `AAAA only from ${m.options.pool} long-lived sockets, held ${m.options.holdMs} ms, rate = target / hold, targets in rising ` +
      `order in one process; dns-shaper with --max-held ${m.options.maxHeld}. "held" = packets waiting in the kernel queue. RSS ` +
      'of the verdict process; the held packets themselves sit in the kernel (skbs, not in any RSS). "prealloc" = ' +
      `what the data plane allocates at start, per queue: ${limits.heldCapacityFactor} × --max-held held slots (at most ` +
      `${limits.maxHeld}) of ${limits.bytesPerHeldSlot} B, the pair table's slots of ${limits.bytesPerPairSlot} B and ` +
      `${Math.round(limits.bytesPerQueue / 1000)} kB of buffers (src/dataplane/limits.ts preallocatedBytes). No more than ${KERNEL_HOLD_LIMIT} ` +
      'packets were ever held at once on this kernel, by either program, on one queue or two, although both ask for ' +
      'a longer queue (nfq_ref 131,072, dns-shaper above its held capacity): beyond it packets passed at once, unshaped, counted nowhere. A ' +
      'target above it therefore shows the limit, not the memory.',
    '',
  )
  const marginal = marginalBytesPerHeld(m.rows)
  o.push(
    mdTable(
      [
        'variant',
        'queues',
        'target',
        'held (kernel queue)',
        'RSS MiB',
        'at rest MiB',
        'RSS above rest B/held',
        'marginal B/held',
        'prealloc B',
        'prealloc B/held',
        'RSS × floor',
        'not held',
      ],
      m.rows.map(r =>
        r.error
          ? [r.variant, String(r.queues), n(r.target), `error: ${r.error}`, '', '', '', '', '', '', '', '']
          : [
              r.variant,
              String(r.queues),
              n(r.target),
              n(r.held),
              f(r.rssKb === undefined ? undefined : r.rssKb / 1024, 1),
              f(r.rssRestKb === undefined ? undefined : r.rssRestKb / 1024, 1),
              n(r.rssBytesPerHeld),
              f(marginal.get(r), 1),
              n(r.preallocBytes),
              f(r.preallocBytesPerHeld, 1),
              x(r.rssRatio),
              n(r.notHeld),
            ],
      ),
    ),
    '',
    '"marginal" = RSS growth from the previous (smaller) target over the growth in held packets: what one more ' +
      'held packet costs, without the one-off growth at the first hold.',
    '',
  )
  return o
}

export function renderSweepsMarkdown(r: SweepReport, svgs: string[]): string {
  const m = r.machine
  const load = (s: LoadSnapshot | undefined): string =>
    s ? `load ${s.loadavg.map(v => v.toFixed(2)).join(' ')}; busiest: ${s.top.slice(0, 6).join(', ')}` : '–'
  const o: string[] = [
    '# dns-shaper scaling sweeps',
    '',
    `- date: ${r.date} (took ${r.elapsedS.toFixed(0)} s; planned ≈ ${r.estimateS} s)${r.quick ? ' — QUICK smoke run, not a measurement' : ''}`,
    `- machine: ${m.nproc} CPUs, ${m.cpuModel}, kernel ${m.kernel}, node ${m.node}, dnsperf ${m.dnsperf ?? '?'}`,
    `- before: ${load(r.load.before)}`,
    `- after: ${load(r.load.after)}`,
    '',
    'Every figure is also given as a ratio to the C floor (bench/ref/nfq_ref) measured in the same run: ' +
      'absolute numbers move with whatever else shares the CPUs; the ratios are what to compare.',
    '',
  ]
  for (const s of svgs) o.push(`![${s}](${s})`, '')
  if (r.depth) o.push(...depthSection(r.depth))
  if (r.flows) o.push(...flowsSection(r.flows))
  if (r.queues) o.push(...queuesSection(r.queues))
  if (r.memory) o.push(...memorySection(r.memory))
  if (r.notes.length) o.push('## Notes', '', ...r.notes.map(s => `- ${s}`), '')
  return o.join('\n')
}

const label = (variant: string, extra: string): string => `${variant} ${extra}`

export function depthPlot(d: DepthResult, subtitle: string): string {
  const ok = d.rows.filter(r => !r.error)
  const keys = [...new Set(ok.map(r => `${r.variant}|${r.rate}`))]
  const series = (y: (r: (typeof ok)[number]) => number | undefined) =>
    keys.map(k => {
      const [v, rate] = k.split('|') as [string, string]
      return {
        label: label(v, `@${Number(rate) / 1000}k lookups/s`),
        points: ok
          .filter(r => r.variant === v && String(r.rate) === rate)
          .map(r => [r.expectedDepth, y(r) ?? NaN] as [number, number]),
      }
    })
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
  const keys = [...new Set(ok.map(r => `${r.client}|${r.variant}`))]
  const series = (y: (r: (typeof ok)[number]) => number | undefined) =>
    keys.map(k => {
      const [c, v] = k.split('|') as [string, string]
      return {
        label: `${v} (${c})`,
        points: ok.filter(r => r.client === c && r.variant === v).map(r => [r.queues, y(r) ?? NaN] as [number, number]),
      }
    })
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
  const vs = [...new Set(ok.map(r => r.variant))]
  return renderXySvg(
    'memory against held packets',
    [
      {
        title: 'RSS',
        xLabel: 'held packets (log)',
        yLabel: 'MiB',
        xLog: true,
        yLog: false,
        series: vs.map(v => ({
          label: v,
          points: ok
            .filter(r => r.variant === v)
            .map(r => [r.held ?? r.target, (r.rssKb ?? NaN) / 1024] as [number, number]),
        })),
      },
      {
        title: 'RSS above rest per held packet',
        xLabel: 'held packets (log)',
        yLabel: 'bytes (log)',
        xLog: true,
        yLog: true,
        series: vs.map(v => ({
          label: v,
          points: ok
            .filter(r => r.variant === v)
            .map(r => [r.held ?? r.target, r.rssBytesPerHeld ?? NaN] as [number, number]),
        })),
      },
    ],
    subtitle,
  )
}
