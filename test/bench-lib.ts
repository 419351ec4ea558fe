// Unit tests of the benchmark's pure parts: dnsperf output parsers (captured dnsperf 2.10.0 -v output),
// /proc readers (captured stat/schedstat/status lines), percentiles, Prometheus parsing, analysis,
// SVG and table rendering, option parsing. Nothing here needs root or a network.
import t from 'tap'
import { spawn } from 'node:child_process'
import { exitWithin } from '../bench/lib/child-exit.js'
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  dnsperfArgv,
  dnsperfBoundMs,
  parseDnsperfOutput,
  parseDnsperfVersion,
  parseSummary,
  parseVerboseLine,
  queryFile,
} from '../bench/lib/dnsperf.js'
import { cpuDeltaUs, parseProcStat, parseProcStatus, parseSchedstat, readCpu, readStatus } from '../bench/lib/proc.js'
import { cdfPoints, countBelow, percentile, ratio, sortedCopy, summarize } from '../harness/stats.js'
import {
  countCertainlyBelow,
  histogram,
  histogramDelta,
  histogramQuantile,
  parseProm,
  sample,
  sumPrefix,
} from '../harness/prom.js'
import { added, cpuPerPacket, holdFromLatency, holdGoal, ratioGoal, shaperHold } from '../bench/lib/analyze.js'
import { esc, renderSvg, tailScale, ticks } from '../bench/lib/plot.js'
import { mdTable, renderMarkdown, renderText, runRow, textTable } from '../bench/lib/report.js'
import type { BenchReport, RunResult, VariantResult } from '../bench/lib/report.js'
import { queueDelta, queueRuleSpec } from '../bench/lib/queue.js'
import { lastJsonLine } from '../harness/process.js'
import { goals } from '../bench/goals.js'
import { parseOptions as parseWith } from '../bench/options.js'

const parseOptions = (argv: string[]): ReturnType<typeof parseWith> => parseWith(argv, '/repo')

// dnsperf 2.10.0, `-c 10 -l 2 -Q 1000 -v` through dns-shaper (AAAA held 5 ms); lines cut from the middle.
const CAPTURED_OK = `DNS Performance Testing Tool
Version 2.10.0

[Status] Command line: dnsperf -s 203.0.113.53 -d q.txt -c 10 -l 2 -Q 1000 -q 1000 -v
[Status] Sending queries (to 203.0.113.53:53)
[Status] Started at: Wed Nov 25 09:22:44 2026
[Status] Stopping after 2.000000 seconds
> NOERROR host1.example.test A 0.000223
> NOERROR host2.example.test A 0.000117
> NOERROR host3.example.test A 0.000028
> NOERROR host4.example.test A 0.000166
> NOERROR host1.example.test AAAA 0.005159
> NOERROR host246.example.test AAAA 0.005074
> NOERROR host250.example.test A 0.000078
> NOERROR host247.example.test AAAA 0.005059
> NOERROR host248.example.test AAAA 0.006964
> NOERROR host249.example.test AAAA 0.005065
> NOERROR host250.example.test AAAA 0.005073
[Status] Testing complete (time limit)

Statistics:

  Queries sent:         2000
  Queries completed:    2000 (100.00%)
  Queries lost:         0 (0.00%)

  Response codes:       NOERROR 2000 (100.00%)
  Average packet size:  request 37, response 59
  Run time (s):         2.004192
  Queries per second:   997.908384

  Average Latency (s):  0.002756 (min 0.000020, max 0.035783)
  Latency StdDev (s):   0.002895

`

// dnsperf 2.10.0 against an address nobody answers: every query times out.
const CAPTURED_LOST = `DNS Performance Testing Tool
Version 2.10.0

[Status] Command line: dnsperf -s 203.0.113.99 -d q.txt -c 10 -v -n 1 -t 1
[Status] Sending queries (to 203.0.113.99:53)
[Status] Started at: Wed Nov 25 09:22:11 2026
[Status] Stopping after 1 run through file
> T host1.example.test A
> T host1.example.test AAAA
> T host2.example.test A
> T host2.example.test AAAA
> T host3.example.test A
> T host3.example.test AAAA
[Status] Testing complete (end of file)

Statistics:

  Queries sent:         6
  Queries completed:    0 (0.00%)
  Queries lost:         6 (100.00%)

  Response codes:       
  Average packet size:  request 36, response 0
  Run time (s):         0.003584
  Queries per second:   0.000000

  Average Latency (s):  0.000000 (min 0.000000, max 0.000000)

`

t.test('dnsperf -v lines', async t => {
  t.same(parseVerboseLine('> NOERROR host1.example.test A 0.000223'), {
    kind: 'answer',
    rcode: 'NOERROR',
    name: 'host1.example.test',
    type: 'A',
    latencyUs: 223,
  })
  t.same(parseVerboseLine('> SERVFAIL x.example.test AAAA 1.5'), {
    kind: 'answer',
    rcode: 'SERVFAIL',
    name: 'x.example.test',
    type: 'AAAA',
    latencyUs: 1_500_000,
  })
  t.same(parseVerboseLine('> T host2.example.test AAAA'), { kind: 'lost', name: 'host2.example.test', type: 'AAAA' })
  t.equal(parseVerboseLine('[Status] Sending queries'), null)
  t.equal(parseVerboseLine('> NOERROR host1.example.test A abc'), null, 'latency must be a number')
  t.equal(parseVerboseLine('> NOERROR host1.example.test A -0.1'), null, 'no negative latency')
  t.equal(parseVerboseLine('> NOERROR host1.example.test'), null, 'too few fields')
  t.equal(parseVerboseLine('  Queries sent:  6'), null)
})

t.test('dnsperf output: answers', async t => {
  const r = parseDnsperfOutput(CAPTURED_OK)
  t.same(r.latencyUs.A, [223, 117, 28, 166, 78])
  t.same(r.latencyUs.AAAA, [5159, 5074, 5059, 6964, 5065, 5073])
  t.same(r.lostByType, { A: 0, AAAA: 0 })
  t.equal(r.errors, 0)
  t.equal(r.otherTypes, 0)
  t.equal(r.sent, 2000)
  t.equal(r.completed, 2000)
  t.equal(r.lost, 0)
  t.equal(r.qps, 997.908384)
  t.equal(r.runTimeS, 2.004192)
  t.same(r.rcodes, { NOERROR: 2000 })
  t.equal(parseDnsperfVersion(CAPTURED_OK), '2.10.0')
  t.equal(parseDnsperfVersion('no banner'), undefined)
})

t.test('dnsperf output: timeouts', async t => {
  const r = parseDnsperfOutput(CAPTURED_LOST)
  t.same(r.lostByType, { A: 3, AAAA: 3 })
  t.same(r.latencyUs, { A: [], AAAA: [] })
  t.equal(r.lost, 6)
  t.equal(r.completed, 0)
  t.same(r.rcodes, {}, 'empty response codes line')
  const mixed = parseDnsperfOutput(
    '> NXDOMAIN a.example.test A 0.000010\n> NOERROR a.example.test MX 0.000010\n' +
      CAPTURED_LOST.slice(CAPTURED_LOST.indexOf('Statistics')),
  )
  t.equal(mixed.errors, 1, 'non-NOERROR answers counted')
  t.equal(mixed.otherTypes, 1)
  t.throws(() => parseSummary('[Status] Command line: dnsperf\n> T a A\n'), /no statistics block/)
  t.throws(() => parseDnsperfOutput(''), /no statistics block/)
})

t.test('dnsperf argv and query file', async t => {
  const argv = dnsperfArgv({ server: '203.0.113.53', dataFile: '/q', rate: 10_000.4, durationS: 8, verbose: true })
  t.same(argv, [
    'dnsperf',
    '-s',
    '203.0.113.53',
    '-d',
    '/q',
    '-c',
    '10',
    '-l',
    '8',
    '-q',
    '10000',
    '-t',
    '2',
    '-b',
    '4096',
    '-Q',
    '10000',
    '-v',
  ])
  t.notOk(dnsperfArgv({ server: 's', dataFile: 'f', durationS: 1, clients: 1 }).includes('-Q'), 'no -Q without a rate')
  t.ok(dnsperfArgv({ server: 's', dataFile: 'f', durationS: 1, clients: 1 }).join(' ').includes('-c 1 '))
  t.equal(dnsperfBoundMs({ server: 's', dataFile: 'f', durationS: 8, timeoutS: 1 }), 24_000)
  t.equal(
    queryFile(2),
    'host1.example.test A\nhost1.example.test AAAA\nhost2.example.test A\nhost2.example.test AAAA\n',
  )
  t.throws(() => queryFile(0))
})

// Captured: a node process (7 threads) and its main thread's schedstat; a process whose comm has
// spaces and parentheses ("x) y (z"), which a split on whitespace or on the first ')' gets wrong.
const STAT_NODE =
  '4227 (node) R 4223 4223 24188 0 -1 4194304 2212 0 0 0 5 0 0 0 20 0 7 0 263110 745730048 10084 18446744073709551615 11988992 39846385 140727876413920 0 0 0 0 16781312 17922 0 0 0 17 0 0 0 0 0 0 90418888 90555584 927387648 140727876422071 140727876422382 140727876422382 140727876423658 0'
const STAT_ODD =
  '4252 (x) y (z) S 1 4248 24188 0 -1 4194304 141 0 0 0 3 2 0 0 20 0 1 0 263348 2990080 403 18446744073709551615 93850205388800 93850205406729 140731040894640 0 0 0 0 6 0 1 0 0 17 0 0 0 0 0 0 93850205420816 93850205422080 93850453307392 140731040901848 140731040901866 140731040901866 140731040903144 0'
const STATUS =
  'Name:\tnode\nState:\tR (running)\nVmPeak:\t  729016 kB\nVmHWM:\t   42472 kB\nVmRSS:\t   42472 kB\nRssAnon:\t    6936 kB\nRssFile:\t   35536 kB\nThreads:\t7\n'

t.test('/proc/PID/stat', async t => {
  t.same(parseProcStat(STAT_NODE), {
    pid: 4227,
    comm: 'node',
    state: 'R',
    utime: 5,
    stime: 0,
    numThreads: 7,
    rssPages: 10084,
  })
  t.same(parseProcStat(STAT_ODD + '\n'), {
    pid: 4252,
    comm: 'x) y (z',
    state: 'S',
    utime: 3,
    stime: 2,
    numThreads: 1,
    rssPages: 403,
  })
  t.throws(() => parseProcStat('garbage'), /not a \/proc\/PID\/stat line/)
  t.throws(() => parseProcStat('12 (x) S 1 2'), /field 14 missing/)
  t.throws(() => parseProcStat('x (y) S ' + '0 '.repeat(30)), /bad pid/)
})

t.test('/proc/PID/status and schedstat', async t => {
  t.same(parseProcStatus(STATUS), {
    vmRssKb: 42472,
    vmHwmKb: 42472,
    rssAnonKb: 6936,
    rssFileKb: 35536,
    threads: 7,
  })
  t.same(
    parseProcStatus('Name:\tkthreadd\nThreads:\t1\n'),
    { vmRssKb: undefined, vmHwmKb: undefined, rssAnonKb: undefined, rssFileKb: undefined, threads: 1 },
    'kernel thread: no Vm lines',
  )
  t.equal(parseSchedstat('65881673 17419644 90\n'), 65881673)
  t.throws(() => parseSchedstat('x y'), /not a schedstat line/)
})

t.test('readCpu sums the threads; cpuDeltaUs falls back to ticks', async t => {
  const root = await mkdtemp(join(tmpdir(), 'dnss-bench-proc-'))
  t.teardown(async () => {
    const { rm } = await import('node:fs/promises')
    await rm(root, { recursive: true, force: true })
  })
  await mkdir(join(root, '4227', 'task', '4227'), { recursive: true })
  await mkdir(join(root, '4227', 'task', '4229'), { recursive: true })
  await writeFile(join(root, '4227', 'stat'), STAT_NODE)
  await writeFile(join(root, '4227', 'status'), STATUS)
  await writeFile(join(root, '4227', 'task', '4227', 'schedstat'), '65881673 17419644 90\n')
  await writeFile(join(root, '4227', 'task', '4229', 'schedstat'), '80993 2086 1\n')
  t.same(readCpu(4227, root), { ticks: 5, runNs: 65881673 + 80993 })
  t.equal(readStatus(4227, root).vmRssKb, 42472)
  await mkdir(join(root, '4228', 'task', '4228', 'schedstat'), { recursive: true }) // a directory: unreadable as a file
  await writeFile(join(root, '4228', 'stat'), STAT_NODE.replace('4227', '4228'))
  t.same(readCpu(4228, root), { ticks: 5, runNs: undefined }, 'schedstat unreadable: ticks only')
  t.throws(() => readCpu(1, root), /ENOENT/, 'a process that is gone throws')

  t.same(cpuDeltaUs({ ticks: 5, runNs: 1_000_000 }, { ticks: 9, runNs: 3_500_000 }, 100), {
    us: 2500,
    source: 'schedstat',
  })
  t.same(
    cpuDeltaUs({ ticks: 5, runNs: 3_000_000 }, { ticks: 9, runNs: 1_000_000 }, 100),
    { us: 40_000, source: 'stat' },
    'a thread exited: schedstat went back',
  )
  t.same(cpuDeltaUs({ ticks: 5 }, { ticks: 6 }, 250), { us: 4000, source: 'stat' })
})

t.test('percentiles and summaries', async t => {
  const s = sortedCopy([5, 1, 10, 3, 2, 4, 9, 8, 7, 6])
  t.same(Array.from(s), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'numeric sort, not lexicographic')
  t.equal(percentile(s, 50), 5)
  t.equal(percentile(s, 90), 9)
  t.equal(percentile(s, 99), 10)
  t.equal(percentile(s, 0), 1)
  t.equal(percentile(s, 100), 10)
  t.ok(Number.isNaN(percentile([], 50)))
  t.throws(() => percentile(s, 101))
  const big = Array.from({ length: 1000 }, (_, i) => i + 1)
  const d = summarize(big.reverse())
  t.same([d.n, d.min, d.p50, d.p90, d.p99, d.p999, d.max, d.mean], [1000, 1, 500, 900, 990, 999, 1000, 500.5])
  t.ok(Number.isNaN(summarize([]).p50))
  const cdf = cdfPoints(sortedCopy(big))
  t.same(cdf[0], [1, 0])
  t.same(cdf.at(-1), [1000, 1])
  t.ok(
    cdf.some(([x, p]) => p === 0.999 && x === 999),
    'tail points present',
  )
  t.ok(
    cdf.every((pt, i) => i === 0 || (pt[0] >= cdf[i - 1]![0] && pt[1] > cdf[i - 1]![1])),
    'monotonic',
  )
  t.same(cdfPoints([]), [])
  t.equal(countBelow([1, 5, 5, 6], 5), 1)
  t.equal(ratio(3, 2), 1.5)
  t.equal(ratio(3, 0), null)
  t.equal(ratio(3, -1, 5), 0.6, 'floor applies to small or negative references')
  t.equal(ratio(undefined, 2), null)
})

// Shape of the daemon's scrape (captured, trimmed): counters with labels and the hold histogram.
const SCRAPE = `# HELP dns_shaper_packets_total Packets by action.
# TYPE dns_shaper_packets_total counter
dns_shaper_packets_total{action="accepted",qtype="A"} 1000
dns_shaper_packets_total{action="held",qtype="AAAA"} 1000
dns_shaper_packets_total{action="bypassed",qtype="A"} 3
dns_shaper_packets_total{action="bypassed",qtype="AAAA"} 4
dns_shaper_hold_seconds_bucket{le="0.004"} 0
dns_shaper_hold_seconds_bucket{le="0.005"} 0
dns_shaper_hold_seconds_bucket{le="0.00525"} 959
dns_shaper_hold_seconds_bucket{le="0.0055"} 965
dns_shaper_hold_seconds_bucket{le="0.006"} 974
dns_shaper_hold_seconds_bucket{le="0.01"} 998
dns_shaper_hold_seconds_bucket{le="0.02"} 1000
dns_shaper_hold_seconds_bucket{le="+Inf"} 1000
dns_shaper_hold_seconds_sum 5.117589845
dns_shaper_hold_seconds_count 1000
dns_shaper_deadline_released_total 1000
process_start_time_seconds 1764062559 1764062560000
bad line here
`

t.test('prometheus text', async t => {
  const s = parseProm(SCRAPE)
  t.equal(sample(s, 'dns_shaper_packets_total{action="held",qtype="AAAA"}'), 1000)
  t.equal(sample(s, 'dns_shaper_pair_released_total'), 0, 'absent is 0')
  t.equal(sample(s, 'process_start_time_seconds'), 1764062559, 'timestamp ignored')
  t.equal(sumPrefix(s, 'dns_shaper_packets_total{action="bypassed"'), 7)
  t.notOk(s.has('bad'), 'malformed line skipped')
  const h = histogram(s, 'dns_shaper_hold_seconds')!
  t.equal(h.count, 1000)
  t.equal(h.buckets.at(-1)!.le, Infinity)
  t.equal(histogram(s, 'nope'), undefined)
  // Median: rank 500 falls in (0.005, 0.00525] with 959 observations.
  t.ok(Math.abs(histogramQuantile(h, 0.5) - (0.005 + (0.00025 * 500) / 959)) < 1e-12)
  t.ok(histogramQuantile(h, 0.99) > 0.006 && histogramQuantile(h, 0.99) <= 0.01)
  t.equal(histogramQuantile(h, 1), 0.02)
  t.equal(countCertainlyBelow(h, 0.005), 0)
  t.equal(countCertainlyBelow(h, 0.0055), 959, 'the (0.00525, 0.0055] bucket straddles nothing below 0.0055')
  const before = parseProm(
    SCRAPE.replace('le="0.00525"} 959', 'le="0.00525"} 900')
      .replace('hold_seconds_count 1000', 'hold_seconds_count 990')
      .replace(
        /le="(0.0055|0.006|0.01|0.02|\+Inf)"\} (\d+)/g,
        (_m, le: string, n: string) => `le="${le}"} ${Number(n) - 90}`,
      ),
  )
  const dlt = histogramDelta(h, histogram(before, 'dns_shaper_hold_seconds'))
  t.equal(dlt.count, 10)
  t.equal(dlt.buckets.find(b => b.le === 0.00525)!.count, 59)
  t.same(histogramDelta(h, undefined), h)
  t.ok(Number.isNaN(histogramQuantile({ buckets: [], count: 0, sum: 0 }, 0.5)))
  t.equal(
    histogramQuantile(
      {
        buckets: [
          { le: 0.001, count: 0 },
          { le: Infinity, count: 5 },
        ],
        count: 5,
        sum: 1,
      },
      0.5,
    ),
    0.001,
    '+Inf: largest finite bound',
  )
  const sh = shaperHold(h, 5)
  t.equal(sh.belowConfigured, 0)
  t.equal(sh.count, 1000)
  t.ok(sh.p50Ms > 5 && sh.p50Ms < 5.25)
})

t.test('hold from client latencies; early releases', async t => {
  // Baseline: median AAAA 40 µs, fastest answer 20 µs. Hold 5 ms.
  const h = holdFromLatency([5040, 5060, 5100, 5019, 4000], 5, 40, 20)
  t.equal(h.early, 2, '5019 and 4000 are below 5 ms + 20 µs: certainly early')
  t.equal(h.n, 5)
  t.equal(h.p50Ms, 5.0)
  t.equal(h.maxMs, 5.06)
  t.equal(holdFromLatency([5020], 5, 40, 20).early, 0, 'exactly hold + fastest path is not early')
  const g = holdGoal('x', holdFromLatency([5400, 5500], 5, 40, 20), 0.5, 1000)
  t.equal(g.pass, true)
  t.equal(holdGoal('x', h, 0.5).pass, false, 'early releases fail the goal')
  t.equal(holdGoal('x', holdFromLatency([6000], 5, 0, 0), 0.5).pass, false, '1 ms over fails')
  t.equal(holdGoal('x', undefined, 0.5).pass, null)
  t.same(added(summarize([10, 20]), summarize([5, 5])), { p50: 5, p99: 15, p999: 15 })
  t.equal(cpuPerPacket(100, 50), 2)
  t.equal(cpuPerPacket(undefined, 50), undefined)
  t.equal(cpuPerPacket(100, 0), undefined)
  const r = ratioGoal('g', 'a', 'b', 13, 10, 1.3, null)
  t.equal(r.pass, true)
  t.equal(ratioGoal('g', 'a', 'b', 14, 10, 1.3, null).pass, false)
  t.equal(ratioGoal('g', 'a', 'b', 7, 10, null, 0.8).pass, false)
  t.equal(ratioGoal('g', 'a', 'b', 8, 10, null, 0.8).pass, true)
  t.equal(ratioGoal('g', 'a', 'b', 8, undefined, null, 0.8).pass, null, 'no reference: n/a')
})

function fakeRun(over: Partial<RunResult> = {}): RunResult {
  const d = summarize([50, 60, 70])
  return {
    profile: 'c10',
    rate: 10_000,
    durationS: 8,
    achievedQps: 9990,
    sent: 80_000,
    completed: 80_000,
    lost: 0,
    lostA: 0,
    lostAAAA: 0,
    rcodeErrors: 0,
    a: d,
    aaaa: d,
    cdfA: [
      [50, 0],
      [70, 1],
    ],
    ...over,
  }
}

t.test('goals against nfq_ref hold', async t => {
  const hold = holdFromLatency([5100, 5200], 5, 40, 20)
  const variants: VariantResult[] = [
    {
      id: 'nfq-ref-hold',
      label: 'ref',
      packets: 1,
      runs: [fakeRun({ addedA: { p50: 5, p99: 40, p999: 50 }, cpuUsPerPacket: 2, hold })],
      maxRate: { zeroLossQps: 100_000, capped: false, tests: [] },
    },
    {
      id: 'dns-shaper-fixed',
      label: 'f',
      packets: 1,
      runs: [fakeRun({ addedA: { p50: 5, p99: 50, p999: 60 }, cpuUsPerPacket: 3.2, hold })],
      maxRate: { zeroLossQps: 70_000, capped: false, tests: [] },
    },
    { id: 'dns-shaper-pair', label: 'p', packets: 1, runs: [fakeRun({ profile: 'pairs' })], skipped: undefined },
  ]
  const g = goals(variants)
  const by = (goal: string, v = 'dns-shaper-fixed') => g.find(x => x.goal.startsWith(goal) && x.variant === v)!
  t.equal(by('added A p99').ratio, 1.25)
  t.equal(by('added A p99').pass, true)
  t.equal(by('CPU per packet').pass, false, '1.6x > 1.5x')
  t.equal(by('zero-loss').ratio, 0.7)
  t.equal(by('zero-loss').pass, false)
  t.equal(by('AAAA hold').pass, true)
  t.notOk(
    g.some(x => x.variant === 'dns-shaper-pair' && x.goal.startsWith('AAAA hold')),
    'no hold goal for pair mode',
  )
  t.notOk(
    g.some(x => x.variant === 'dns-shaper-pair' && x.rate === 10_000),
    'pairs-profile runs are not compared',
  )
  const neg = goals([
    variants[0]!,
    { ...variants[1]!, runs: [fakeRun({ addedA: { p50: -5, p99: -300, p999: 0 }, cpuUsPerPacket: 2, hold })] },
  ])
  t.equal(neg.find(x => x.goal.startsWith('added A p99'))!.ratio, 0, 'faster than baseline counts as nothing added')
  t.same(
    goals(variants.slice(1)).map(x => x.goal),
    ['AAAA hold p99 − configured (ms), early releases'],
    'without nfq_ref only the hold goal',
  )
})

t.test('tables and markdown', async t => {
  t.equal(
    textTable(
      ['a', 'bb'],
      [
        ['xyz', '1'],
        ['q', '22'],
      ],
    ),
    'a    bb\n---  --\nxyz   1\nq    22',
  )
  t.equal(mdTable(['a|b'], [['1']]), '| a\\|b |\n|---|\n| 1 |')
  const v: VariantResult = {
    id: 'dns-shaper-pair',
    label: 'p',
    packets: 1_200_000,
    runs: [],
    rssRestKb: 57_000,
    rssEndKb: 60_000,
  }
  const row = runRow(
    v,
    fakeRun({ profile: 'pairs', hold: holdFromLatency([60, 70], 5, 40, 20), counters: { pairReleased: 2 } }),
  )
  t.equal(row[1], 'stub')
  t.equal(row[13], '2 (paired 2)')
  t.equal(runRow(v, fakeRun())[13], '–', 'no hold: no early column')
  const rep: BenchReport = {
    date: '2026-01-01T00:00:00Z',
    machine: { nproc: 2, cpuModel: 'cpu', kernel: '6.1', node: 'v20', dnsperf: '2.10.0', loadavg: [0.1, 0.2, 0.3] },
    config: { rates: [1000] },
    variants: [v],
    goals: [],
    notes: ['noisy'],
    elapsedS: 12,
  }
  t.match(renderText(rep), /dns-shaper-pair .*55\.7 .*58\.6 .*1\.20M/)
  t.match(renderText({ ...rep, variants: [{ ...v, idleCpuPct: 0.123 }] }), / 0\.12 /)
  t.match(renderText(rep), /note: noisy/)
  const md = renderMarkdown(rep, 'latest.svg')
  t.match(md, /2 CPUs, cpu, kernel 6\.1/)
  t.match(md, /!\[latency CDFs\]\(latest\.svg\)/)
})

t.test('svg', async t => {
  t.equal(esc('<a & "b">'), '&lt;a &amp; &quot;b&quot;&gt;')
  t.same(ticks(10, 1000, true), [10, 20, 50, 100, 200, 500, 1000])
  t.same(ticks(10, 1e6, true), [10, 100, 1000, 10_000, 100_000, 1e6])
  t.same(ticks(3.5, 8, false), [4, 5, 6, 7, 8])
  t.equal(tailScale(0), 0)
  t.equal(tailScale(0.9), 0.4)
  t.ok(Math.abs(tailScale(0.99) - 0.6) < 1e-9)
  t.equal(tailScale(1), 1)
  const ps = [0, 0.3, 0.6, 0.9, 0.95, 0.99, 0.999, 0.9999]
  t.ok(
    ps.every((p, i) => i === 0 || tailScale(p) > tailScale(ps[i - 1]!)),
    'monotonic',
  )
  const svg = renderSvg('T <1>', [
    {
      title: 'A',
      xLabel: 'µs',
      log: true,
      series: [
        {
          label: 'base',
          points: [
            [10, 0.5],
            [20, 1],
          ],
        },
        {
          label: 'shaper',
          points: [
            [15, 0.5],
            [40, 1],
          ],
        },
      ],
    },
    {
      title: 'hold',
      xLabel: 'ms',
      log: false,
      series: [
        {
          label: 'shaper',
          points: [
            [5, 0.5],
            [5.2, 1],
          ],
        },
        { label: 'empty', points: [] },
      ],
      markers: [{ x: 5, label: 'configured' }],
      xMin: 3.5,
      xMax: 8,
    },
  ])
  t.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/)
  t.match(svg, /T &lt;1&gt;/)
  t.equal(svg.match(/<polyline/g)?.length, 3, 'one line per non-empty series')
  t.equal(svg.match(/<title>shaper<\/title>/g)?.length, 2)
  const colors = [...svg.matchAll(/stroke="(#[0-9a-f]{6})" stroke-width="1.6" points="[^"]*"><title>shaper/g)].map(
    m => m[1],
  )
  t.equal(new Set(colors).size, 1, 'same colour for a label in both panels')
  t.match(svg, /configured/)
  t.match(svg, /<\/svg>\n$/)
})

t.test('queue rule and deltas, process helpers', async t => {
  t.same(queueRuleSpec(3).slice(-4), ['NFQUEUE', '--queue-num', '3', '--queue-bypass'])
  const q = {
    queue: 0,
    portid: 9,
    waiting: 0,
    copyMode: 2,
    copyRange: 512,
    dropped: 1,
    userDropped: 2,
    idSequence: 100,
  }
  t.same(queueDelta(q, { ...q, dropped: 4, userDropped: 2, idSequence: 350 }), {
    queued: 250,
    dropped: 3,
    userDropped: 0,
  })
  t.equal(queueDelta(q, { ...q, portid: 10 }), undefined, 'rebound in between: no delta')
  t.equal(queueDelta(undefined, q), undefined)
  t.same(
    lastJsonLine('x\n{"msg":"ready"}\n{"msg":"stopped","held":3}\nnot json {\n', o => o['msg'] === 'stopped'),
    { msg: 'stopped', held: 3 },
  )
  t.same(lastJsonLine('{"packets":1}\n{bad\n'), { packets: 1 })
  t.equal(lastJsonLine('nothing'), undefined)
})

t.test('options', async t => {
  const d = parseOptions([])
  t.same(d.rates, [1000, 10_000, 50_000])
  t.equal(d.durationS, 8)
  t.ok(
    d.variants.includes('dns-shaper-fixed') && d.variants.includes('nfq-ref-hold') && d.variants.includes('baseline'),
  )
  const q = parseOptions(['--quick'])
  t.same([q.rates, q.durationS, q.searchSteps, q.searchCapQps, q.rssPackets], [[5000], 2, 1, 20_000, 0])
  const q2 = parseOptions(['--quick', '--rates', '2000,0', '--duration', '1.5'])
  t.same(
    [q2.rates, q2.durationS, q2.searchCapQps],
    [[2000], 1.5, 8000],
    'explicit flags win over --quick; zero rates dropped',
  )
  t.same(parseOptions(['--variants', 'baseline,dns-shaper-fixed', '--no-pairs']).variants, [
    'baseline',
    'dns-shaper-fixed',
  ])
  t.throws(() => parseOptions(['--variants', 'nope']), /unknown variant/)
  t.throws(() => parseOptions(['--rates', 'x']), /--rates needs/)
  t.throws(() => parseOptions(['--duration', '500']), /--duration/)
  t.throws(() => parseOptions(['--bogus']), /unknown flag --bogus/)
  t.throws(() => parseOptions(['--help']), /usage:/)
})

t.test('the dns-shaper variants take their node flags from the Dockerfile ENTRYPOINT', async t => {
  const { readFileSync } = await import('node:fs')
  const { imageNodeFlags } = await import('../harness/daemon.js')
  const real = imageNodeFlags(readFileSync(new URL('../Dockerfile', import.meta.url), 'utf8'))
  t.ok(
    real.every(f => f.startsWith('--')),
    `the image's flags: ${real.join(' ') || 'none'}`,
  )
  t.same(imageNodeFlags('FROM x\nENTRYPOINT ["/usr/local/bin/node", "--jitless", "/app/dist/cli.js"]\n'), ['--jitless'])
  t.same(imageNodeFlags('ENTRYPOINT ["/usr/bin/node", "/app/dist/cli.js"]'), [])
  t.throws(() => imageNodeFlags('ENTRYPOINT /usr/local/bin/dns-shaper'), /exec-form ENTRYPOINT/)
  t.throws(() => imageNodeFlags('ENTRYPOINT ["/usr/local/bin/dns-shaper"]'), /exec-form ENTRYPOINT/)
  t.equal(parseOptions(['--daemon-node', '/opt/node24/bin/node']).daemonNode, '/opt/node24/bin/node')
  t.equal(parseOptions([]).daemonNode, process.execPath)
  t.equal(parseOptions(['--compare', '/tmp/main']).compare, '/tmp/main')
  t.equal(parseOptions([]).compare, undefined)
})

t.test('exitWithin: the exit code, a bound that kills, a tool that cannot start', async t => {
  const node = (code: string) => spawn(process.execPath, ['-e', code], { stdio: 'ignore' })
  t.equal(await exitWithin(node('process.exit(3)'), 10_000, 'exit', 'node', 'n/a'), 3, 'exit code passed on')
  const slow = node('setTimeout(() => {}, 60_000)')
  await t.rejects(exitWithin(slow, 200, 'close', 'slow-tool', 'n/a'), /slow-tool did not finish within 200 ms/)
  t.not(slow.exitCode ?? slow.signalCode, null, 'the child past its bound was killed')
  await t.rejects(
    exitWithin(spawn('/nonexistent/dnss-tool'), 10_000, 'exit', 'dnss-tool', 'make it'),
    /dnss-tool could not start: .*ENOENT.* \(make it\)/,
  )
})
