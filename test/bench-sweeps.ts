// Unit tests of the scaling sweeps' pure parts: planning and run-time bounds, knee and supported-maximum
// analysis, the zero-loss search (with a fake probe), stub_load's argv and output parsers, counter
// deltas, top parsing, the x-y SVG plots and the sweeps page. Nothing here needs root, a network or a clock.
import t from 'tap'
import { preallocatedBytes } from '../src/dataplane/limits.js'
import {
  addedA,
  countWithin,
  depthKnees,
  depthPlan,
  estimateSeconds,
  fifoPreallocBytes,
  marginalBytesPerHeld,
  findKnee,
  flowsPlan,
  flowsSupported,
  memoryPlan,
  searchMaxRate,
  sweepPlan,
  toFloor,
  warmupS,
} from '../bench/lib/sweep.js'
import type { DepthRow, FlowsRow, ProbeResult } from '../bench/lib/sweep.js'
import { mergeStubResults, parseStubDump, parseStubSummary, stubArgv, stubBoundMs } from '../bench/lib/stub.js'
import { counterDeltas, parseProm } from '../bench/lib/prom.js'
import { parseTopBusiest } from '../bench/lib/proc.js'
import { axisRange, renderXySvg } from '../bench/lib/plot.js'
import { depthPlot, flowsPlot, memoryPlot, queuesPlot, renderSweepsMarkdown } from '../bench/lib/sweep-report.js'
import type { SweepReport } from '../bench/lib/sweep-report.js'
import { queueRuleSpec } from '../bench/lib/queue.js'
import { summarize } from '../bench/lib/stats.js'
import { goals, parseOptions } from '../bench/run.js'
import type { RunResult, VariantResult } from '../bench/lib/report.js'

t.test('plans', async t => {
  t.same(
    depthPlan([200, 5], [10_000, 1000]).map(p => [p.holdMs, p.rate, p.expectedDepth]),
    [
      [5, 1000, 5],
      [5, 10_000, 50],
      [200, 1000, 200],
      [200, 10_000, 2000],
    ],
    'holds then rates ascending; depth = rate x hold',
  )
  const full = sweepPlan(false)
  const depths = depthPlan(full.depth.holdsMs, full.depth.rates).map(p => p.expectedDepth)
  t.ok(Math.min(...depths) <= 50 && Math.max(...depths) >= 10_000, 'the full plan spans ~50 to 10,000 held')
  t.match(full.depth.holdsMs, [5, 50, 200, 1000], 'the holds the issue asks for (and 2 s for 10,000 at 5k/s)')
  t.equal(warmupS(1000), 1.5)
  t.equal(warmupS(1000, 2), 2.5)
  t.equal(warmupS(5), 0.505)
  const fl = flowsPlan(5000, [4000, 50], ['back-to-back', 'half-window'])
  t.same(
    fl.map(p => [p.windowMs, p.gap, p.gapUs, p.flows]),
    [
      [50, 'back-to-back', 0, 250],
      [50, 'half-window', 25_000, 250],
      [4000, 'back-to-back', 0, 20_000],
      [4000, 'half-window', 2_000_000, 20_000],
    ],
  )
  const maxFlows = Math.max(...flowsPlan(full.flows.rate, full.flows.windowsMs, full.flows.gaps).map(p => p.flows))
  t.ok(maxFlows > 4096 * 2, 'the full flows plan goes well past the 4096 slots')
  t.same(
    memoryPlan([100_000, 10, 1000, 58_000], 5000).map(p => [p.target, p.rate, p.queues]),
    [
      [10, 2, 1],
      [1000, 200, 1],
      [58_000, 11_600, 1],
      [100_000, 20_000, 1],
    ],
    'target / hold, one queue',
  )
  t.equal(memoryPlan([1], 5000)[0]!.rate, 1, 'at least one per second')
  t.match(full.memory.targets, [10, 1000], "the issue's targets")
  t.ok(full.memory.targets.includes(100_000))
  t.ok(full.memory.maxHeld >= 100_000, 'room for 100,000 held')
})

t.test('run-time bounds', async t => {
  const full = estimateSeconds(sweepPlan(false))
  const quick = estimateSeconds(sweepPlan(true))
  t.ok(full > 120 && full < 15 * 60, `full sweep planned at ${full} s: bounded under 15 min`)
  t.ok(quick < full / 2, `quick ${quick} s is well under the full run`)
  t.ok(estimateSeconds(sweepPlan(false), ['memory']) < full, 'a subset takes less')
  t.equal(estimateSeconds(sweepPlan(false), []), 0)
})

t.test('fifo preallocation', async t => {
  t.equal(fifoPreallocBytes(10_000), preallocatedBytes(1, 10_000), "the data plane's own per-queue formula")
  t.ok(fifoPreallocBytes(100_000) > fifoPreallocBytes(1_000), 'grows with --max-held')
})

t.test('knees', async t => {
  t.equal(
    findKnee([
      [50, 10],
      [500, 12],
      [2000, 25],
      [10_000, 80],
    ]),
    2000,
  )
  t.equal(
    findKnee(
      [
        [10_000, 80],
        [50, 10],
        [2000, 25],
      ],
      3,
    ),
    10_000,
    'unsorted; factor 3',
  )
  t.equal(
    findKnee([
      [50, 10],
      [500, 19],
    ]),
    undefined,
    'no knee',
  )
  t.equal(findKnee([[50, 10]]), undefined, 'one point is no curve')
  t.equal(
    findKnee([
      [50, 0],
      [500, 5],
    ]),
    undefined,
    'zero base: no ratio',
  )
  t.equal(
    findKnee([
      [50, NaN],
      [100, 10],
      [200, 30],
    ]),
    200,
    'non-finite points ignored',
  )
  const d = (v: string, rate: number, depth: number, cpu: number, p50: number): DepthRow => ({
    variant: v,
    holdMs: (depth * 1000) / rate,
    rate,
    expectedDepth: depth,
    depth,
    cpuUsPerQuery: cpu,
    a: summarize([p50]),
  })
  const knees = depthKnees([
    d('fixed', 10_000, 50, 10, 100),
    d('fixed', 10_000, 2000, 30, 150),
    d('fixed', 10_000, 10_000, 90, 5000),
    d('kf', 10_000, 50, 10, 100),
    d('kf', 10_000, 10_000, 11, 120),
    { variant: 'kf', holdMs: 1, rate: 10_000, expectedDepth: 20_000, error: 'x' },
  ])
  t.same(
    knees.map(k => [k.variant, k.rate, k.cpuKneeDepth, k.latencyKneeDepth, k.maxDepth]),
    [
      ['fixed', 10_000, 2000, 10_000, 10_000],
      ['kf', 10_000, undefined, undefined, 10_000],
    ],
    'error rows ignored',
  )
})

t.test('supported flows', async t => {
  const r = (flows: number, gap: FlowsRow['gap'], share?: number, error?: string): FlowsRow => ({
    variant: 'p',
    windowMs: flows / 5,
    gap,
    gapUs: 0,
    flows,
    pairedShare: share,
    error,
  })
  t.same(
    flowsSupported([
      r(250, 'back-to-back', 1),
      { ...r(20_000, 'back-to-back', 0.5), pairedShareCounters: 0.999 },
      r(250, 'half-window', 1),
      r(2500, 'half-window', 0.995),
      r(5000, 'half-window', 0.9),
      r(10_000, 'half-window', 0.995),
      r(20_000, 'half-window', undefined, 'boom'),
      r(40_000, 'half-window', 0.4),
    ]),
    [
      { gap: 'back-to-back', maxFlowsPaired99: 20_000, firstBelow99: undefined },
      { gap: 'half-window', maxFlowsPaired99: 10_000, firstBelow99: 40_000 },
    ],
    'the daemon counters decide where present; a dip at a smaller window does not hide a later pass',
  )
  t.same(flowsSupported([r(250, 'half-window', 0.5)]), [
    { gap: 'half-window', maxFlowsPaired99: undefined, firstBelow99: 250 },
  ])
})

t.test('zero-loss search', async t => {
  const fake =
    (limit: number, calls: number[]) =>
    (rate: number): Promise<ProbeResult> => {
      calls.push(rate)
      return Promise.resolve({ achievedQps: rate, sent: rate, lost: rate > limit ? 3 : 0, onSchedule: true })
    }
  const calls: number[] = []
  const m = await searchMaxRate(fake(50_000, calls), { knownPass: 10_000, cap: 200_000, steps: 5 })
  t.equal(calls[0], 200_000, 'the cap first')
  t.ok(m.zeroLossQps <= 50_000 && m.zeroLossQps > 40_000, `converges below the limit: ${m.zeroLossQps}`)
  t.ok(m.failedQps! > 50_000)
  t.notOk(m.capped)
  t.equal(m.tests.length, calls.length)
  const capped = await searchMaxRate(fake(1e9, []), { knownPass: 0, cap: 1000, steps: 3 })
  t.same([capped.zeroLossQps, capped.capped, capped.tests.length], [1000, true, 1])
  const late = await searchMaxRate(
    rate => Promise.resolve({ achievedQps: rate, sent: rate, lost: 0, onSchedule: rate < 3000 }),
    { knownPass: 0, cap: 10_000, steps: 6 },
  )
  t.ok(late.zeroLossQps < 3000, 'a client off its schedule fails the probe')
  const short = await searchMaxRate(
    rate => Promise.resolve({ achievedQps: rate * 0.9, sent: rate, lost: 0, onSchedule: true }),
    { knownPass: 0, cap: 1000, steps: 0 },
  )
  t.same([short.zeroLossQps, short.tests[0]!.pass], [0, false], 'under 97 % achieved fails')
})

t.test('marginal bytes per held packet', async t => {
  const m = (variant: string, held: number, rssKb: number, error?: string) => ({
    variant,
    queues: 1,
    target: held,
    rate: 1,
    held,
    rssKb,
    error,
  })
  const rows = [
    m('d', 10, 80_000),
    m('d', 1000, 77_000),
    m('d', 51_000, 77_800),
    m('r', 10, 1700),
    m('r', 50_010, 2700, 'x'),
  ]
  const mb = marginalBytesPerHeld(rows)
  t.equal(
    mb.get(rows[1]!),
    ((77_000 - 80_000) * 1024) / 990,
    "may be negative: the first hold's one-off growth receded",
  )
  t.equal(mb.get(rows[2]!), (800 * 1024) / 50_000)
  t.notOk(mb.has(rows[0]!), 'the smallest target has no predecessor')
  t.notOk(mb.has(rows[3]!) || mb.has(rows[4]!), 'error rows neither get nor give a figure')
})

t.test('ratios and added latency', async t => {
  t.equal(countWithin([10, 2500, 2_500_000, 2500], 2500), 3, 'at or under the threshold')
  t.same(addedA(summarize([100, 200]), summarize([40, 250])), { p50: 60, p99: 0 }, 'faster than base is 0')
  t.equal(toFloor(30, 20), 1.5)
  t.equal(toFloor(3, 1, 5), 0.6, 'reference floored')
  t.equal(toFloor(undefined, 1), null)
})

t.test('stub_load argv and output', async t => {
  t.same(stubArgv('/b/stub_load', { server: '203.0.113.53', rate: 1000, seconds: 2 }), [
    '/b/stub_load',
    '--server',
    '203.0.113.53',
    '--rate',
    '1000',
    '--seconds',
    '2',
  ])
  t.same(
    stubArgv(
      'x',
      {
        server: 's',
        rate: 5,
        seconds: 1,
        warmupS: 1.5,
        timeoutMs: 3000,
        types: 'aaaa',
        gapUs: 250,
        pool: 64,
        names: 10,
        maxOpen: 99,
      },
      '/tmp/d',
    ).slice(7),
    [
      '--warmup',
      '1.5',
      '--timeout-ms',
      '3000',
      '--types',
      'aaaa',
      '--gap-us',
      '250',
      '--pool',
      '64',
      '--names',
      '10',
      '--max-open',
      '99',
      '--dump',
      '/tmp/d',
    ],
  )
  t.equal(stubBoundMs({ server: 's', rate: 1, seconds: 2, warmupS: 1, timeoutMs: 1000, gapUs: 500_000 }), 19_500)
  // Captured from `stub_load --rate 2000 --seconds 2 --warmup 0.5` in the lab.
  const out =
    '{"lookups":5000,"measured":4000,"answers":10000,"lost_a":0,"lost_aaaa":1,"send_errors":0,' +
    '"socket_errors":0,"throttled":0,"stray":0,"late_max_us":5345,"elapsed_s":2.500}\n'
  const s = parseStubSummary(out)
  t.same([s.lookups, s.measured, s.answers, s.lostAAAA, s.lateMaxUs, s.elapsedS], [5000, 4000, 10000, 1, 5345, 2.5])
  t.throws(() => parseStubSummary('stub_load: --server IP ... required\n'), /no summary/)
  t.throws(() => parseStubSummary('{"lookups":1}\n'), /no measured/)
  const d = parseStubDump('54 77\n-1 80\n60 -1\n\n')
  t.same([d.a, d.aaaa, d.lostA, d.lostAAAA, d.lookups], [[54, 60], [77, 80], 1, 1, 3])
  t.same(d.aaaaMinusA, [23], 'AAAA − A only where both came')
  const q = parseStubDump('-1 5000\n-1 -1\n', 'aaaa')
  t.same(
    [q.a, q.aaaa, q.lostA, q.lostAAAA, q.aaaaMinusA],
    [[], [5000], 0, 1, []],
    'AAAA only: A is not asked, not lost',
  )
  const aOnly = parseStubDump('40 -1\n-1 -1\n', 'a')
  t.same([aOnly.a, aOnly.lostA, aOnly.lostAAAA], [[40], 1, 0], 'A only: AAAA is not asked, not lost')
  t.throws(() => parseStubDump('12\n'), /dump line/)
})

t.test('several client processes merge into one result', async t => {
  const one = (late: number, a: number[]) => ({
    ...parseStubDump(a.map(x => `${x} ${x + 1}`).join('\n')),
    summary: {
      ...parseStubSummary(
        `{"lookups":${a.length},"measured":${a.length},"answers":${2 * a.length},"lost_a":0,"lost_aaaa":0,"send_errors":1,` +
          `"socket_errors":0,"throttled":0,"stray":0,"late_max_us":${late},"elapsed_s":2}`,
      ),
    },
  })
  const m = mergeStubResults([one(10, [5, 6]), one(900, [7])])
  t.same([m.a, m.aaaa, m.aaaaMinusA, m.lookups], [[5, 6, 7], [6, 7, 8], [1, 1, 1], 3])
  t.same(
    [m.summary.lookups, m.summary.sendErrors, m.summary.lateMaxUs, m.summary.elapsedS],
    [3, 2, 900, 2],
    'sums, worst lateness',
  )
})

t.test('counter deltas keep "not exported" apart from 0', async t => {
  const before = parseProm(
    'dns_shaper_pair_released_total 10\ndns_shaper_packets_total{action="held",qtype="AAAA"} 5\n',
  )
  const after = parseProm(
    'dns_shaper_pair_released_total 25\ndns_shaper_packets_total{action="held",qtype="AAAA"} 9\n' +
      'dns_shaper_packets_total{action="held",qtype="HTTPS"} 1\ndns_shaper_pair_evictions_total 0\n',
  )
  const c = counterDeltas(after, before)
  t.equal(c['pairReleased'], 15)
  t.equal(c['held'], 5, 'label prefix summed')
  t.equal(c['pairEvictions'], 0, 'exported, none')
  t.notOk('deadlineReleased' in c, 'not exported: left out')
  t.equal(counterDeltas(after, undefined)['pairReleased'], 25, 'no earlier scrape: from zero')
})

t.test('top parsing', async t => {
  const text = `top - 08:50:01 up 23 min,  0 user,  load average: 9.1, 8.0, 6.0
    PID USER      PR  NI    VIRT    RES    SHR S  %CPU  %MEM     TIME+ COMMAND
    787 root      20   0 1443636 170988  44020 R  99.0   0.7   0:02.20 node
top - 08:50:02 up 23 min,  0 user,  load average: 9.1, 8.0, 6.0
Tasks: 300 total
    PID USER      PR  NI    VIRT    RES    SHR S  %CPU  %MEM     TIME+ COMMAND
    787 root      20   0 1443636 170988  44020 R  43.1   0.7   0:02.20 node
    853 root      30  10  101656  83180  25584 R  15.7   0.3   0:00.48 cc1plus
      1 root      20   0   10000   1000    900 S   0.0   0.0   0:01.00 my init
`
  t.same(parseTopBusiest(text), ['43.1% node', '15.7% cc1plus (nice 10)', '0.0% my init'], 'the last block only')
  t.same(parseTopBusiest(text, 1), ['43.1% node'])
  t.same(parseTopBusiest('no header here'), [])
})

t.test('x-y plots', async t => {
  t.same(axisRange([5, 50], true), [5, 50])
  const [lo, hi] = axisRange([20, 20], true)
  t.ok(lo < 20 && hi > 20 && hi / lo >= 9.99, 'a flat log axis still spans a decade')
  t.same(axisRange([3, 7], false), [0, 7], 'linear from 0')
  t.same(axisRange([], false, 0, 100), [0, 100])
  const svg = renderXySvg(
    'T <1>',
    [
      {
        title: 'p',
        xLabel: 'x',
        yLabel: 'y',
        xLog: true,
        yLog: true,
        series: [
          {
            label: 'a & b',
            points: [
              [100, 2],
              [10, 1],
              [0, 5],
              [1000, NaN],
            ],
          },
        ],
        markers: [{ x: 4096, label: '4096 slots' }],
      },
    ],
    'sub',
  )
  t.match(svg, /^<svg /)
  t.match(svg, /T &lt;1&gt;/, 'escaped title')
  t.match(svg, /a &amp; b/, 'escaped label')
  t.equal((svg.match(/<circle /g) ?? []).length, 2, 'x=0 and NaN skipped on log axes')
  t.match(svg, /4096 slots/)
})

const point = (cpu: number): RunResult['a'] => summarize([cpu])

t.test('sweeps page and plots', async t => {
  const lp = {
    client: 'stub' as const,
    queries: 1000,
    lostA: 0,
    lostAAAA: 0,
    a: point(100),
    aaaa: point(200),
  }
  const rep: SweepReport = {
    date: '2026-12-01T10:00:00Z',
    machine: { nproc: 2, cpuModel: 'cpu', kernel: '6.18', node: 'v20', dnsperf: '2.10.0', loadavg: [9, 8, 7] },
    load: { before: { loadavg: [9, 8, 7], top: ['43.1% node'] }, after: { loadavg: [6, 7, 7], top: [] } },
    plan: sweepPlan(true),
    quick: false,
    estimateS: 600,
    depth: {
      options: sweepPlan(true).depth,
      baseline: [{ ...lp, rate: 1000 }],
      rows: [
        { variant: 'nfq-ref-hold', holdMs: 5, rate: 1000, expectedDepth: 5, depth: 5, ...lp, cpuUsPerQuery: 20 },
        {
          variant: 'dns-shaper-fixed',
          holdMs: 5,
          rate: 1000,
          expectedDepth: 5,
          depth: 4,
          ...lp,
          cpuUsPerQuery: 30,
          cpuRatio: 1.5,
        },
        { variant: 'dns-shaper-pair', holdMs: 5, rate: 1000, expectedDepth: 5, error: 'did not start' },
      ],
      knees: [{ variant: 'dns-shaper-fixed', rate: 1000 }],
    },
    flows: {
      options: sweepPlan(true).flows,
      rows: [
        {
          variant: 'dns-shaper-pair',
          windowMs: 50,
          gap: 'back-to-back',
          gapUs: 0,
          flows: 100,
          ...lp,
          rate: 2000,
          pairedShare: 1,
          pairedShareCounters: 0.98,
          evictions: 3,
          evictionsPerLookup: 0.001,
        },
      ],
      supported: [{ gap: 'back-to-back', maxFlowsPaired99: 100 }],
      evictionCounter: true,
    },
    queues: {
      options: sweepPlan(true).queues,
      rows: [
        {
          client: 'stub',
          variant: 'dns-shaper-pair',
          queues: 2,
          point: { ...lp, rate: 2000, cpuUsPerQuery: 12 },
          maxRate: { zeroLossQps: 5000, failedQps: 6000, capped: false, tests: [] },
          maxQps: 10_000,
          cpuRatio: 0.9,
          maxRatio: 1,
        },
      ],
    },
    memory: {
      options: sweepPlan(true).memory,
      rows: [
        {
          variant: 'dns-shaper-fixed',
          queues: 1,
          target: 1000,
          rate: 1000,
          held: 990,
          rssKb: 62_000,
          rssRestKb: 57_000,
          rssBytesPerHeld: 5171,
          preallocBytes: 655_360,
          preallocBytesPerHeld: 662,
          rssRatio: 36,
          notHeld: 0,
        },
      ],
    },
    notes: ['load was high'],
    elapsedS: 590,
  }
  const md = renderSweepsMarkdown(rep, ['sweeps-depth.svg'])
  t.match(md, /load 9\.00 8\.00 7\.00; busiest: 43\.1% node/)
  t.match(md, /!\[sweeps-depth\.svg\]\(sweeps-depth\.svg\)/)
  t.match(md, /\| dns-shaper-fixed \| 5 \| 1000 \| 5 \| 4 \| 30\.00 \| 1\.50× \|/)
  t.match(md, /\| dns-shaper-pair \| 5 \| 1000 \| 5 \| error: did not start \|/)
  t.match(md, /\| dns-shaper-fixed \| 1000 \| none \| none \|/, 'no knee says none')
  t.match(md, /\| 50 \| 100 \| back-to-back \| 100\.0 % \| 98\.0 % \| 3 \| 0\.001 \|/)
  t.match(md, /back-to-back: 100 \(no failure within the sweep\)/)
  t.match(md, /\| stub \| dns-shaper-pair \| 2 \| 12\.00 \| 0\.90× \|.*\| 10000 \| 1\.00× \| fails at 12000 \|/)
  t.match(
    md,
    /\| dns-shaper-fixed \| 1 \| 1000 \| 990 \| 60\.5 \| 55\.7 \| 5171 \| – \| 655360 \| 662\.0 \| 36\.00× \| 0 \|/,
  )
  t.match(md, /- load was high/)
  t.notMatch(md, /QUICK/)
  t.match(renderSweepsMarkdown({ ...rep, quick: true }, []), /QUICK smoke run/)
  for (const svg of [
    depthPlot(rep.depth!, 's'),
    flowsPlot(rep.flows!, 's'),
    queuesPlot(rep.queues!, 's'),
    memoryPlot(rep.memory!, 's'),
  ])
    t.match(svg, /^<svg [\s\S]*<\/svg>\n$/)
  t.match(flowsPlot(rep.flows!, 's'), /4096 slots/)
})

t.test('queue rule with two queues balances flows', async t => {
  t.same(queueRuleSpec(0).slice(-3), ['--queue-num', '0', '--queue-bypass'])
  t.same(queueRuleSpec(4, 2).slice(-3), ['--queue-balance', '4:5', '--queue-bypass'])
})

t.test('--sweeps option', async t => {
  t.same(parseOptions(['--sweeps', 'all']).sweeps, ['depth', 'flows', 'queues', 'memory'])
  t.same(parseOptions(['--sweeps', 'memory,depth,memory']).sweeps, ['memory', 'depth'])
  t.same(parseOptions([]).sweeps, [])
  t.throws(() => parseOptions(['--sweeps', 'depth,bogus']), /--sweeps takes/)
  t.throws(() => parseOptions(['--sweeps', '']), /--sweeps takes/)
  t.equal(parseOptions(['--rerender-sweeps', 'bench/results/sweeps.json']).rerender, 'bench/results/sweeps.json')
})

t.test('pair mode is compared with the C floor on stub clients', async t => {
  const run = (profile: 'c10' | 'pairs', cpu: number): RunResult =>
    ({
      profile,
      rate: 10_000,
      durationS: 1,
      achievedQps: 10_000,
      sent: 1,
      completed: 1,
      lost: 0,
      lostA: 0,
      lostAAAA: 0,
      rcodeErrors: 0,
      a: point(1),
      aaaa: point(1),
      addedA: { p50: 0, p99: 10, p999: 0 },
      cpuUsPerPacket: cpu,
      cdfA: [],
    }) as RunResult
  const vs: VariantResult[] = [
    { id: 'nfq-ref-hold', label: 'r', packets: 1, runs: [run('c10', 10), run('pairs', 8)] },
    { id: 'dns-shaper-pair', label: 'p', packets: 1, runs: [run('c10', 12), run('pairs', 10)] },
  ]
  const g = goals(vs).filter(x => x.goal.startsWith('CPU per packet'))
  t.same(
    g.map(x => [x.goal, x.ratio]),
    [
      ['CPU per packet (µs)', 1.2],
      ['CPU per packet (µs), stub clients', 1.25],
    ],
  )
})
