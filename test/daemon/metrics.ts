// Metrics: the exposition the daemon serves, rendered from injected native stats and /proc readers.
// Asserts exact sample lines (names, labels, values), not just presence.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Metrics, type MetricsSources } from '../../src/daemon/metrics.js'
import { constants } from '../../src/dataplane/constants.js'
import type { QueueStats } from '../../src/dataplane/nfqueue.js'
import type { ConntrackStats, NfqueueStats } from '../../src/kernel/procfs.js'
import { emptyStats } from '../helpers/fake-queue.js'
import { statsFromNetlink } from '../../src/kernel/conntrack-stats.js'

const pkgVersion = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version

const PROC = (name: string): string => fileURLToPath(new URL(`../fixtures/proc/${name}`, import.meta.url))

function nfq(queue: number, over: Partial<NfqueueStats> = {}): NfqueueStats {
  return {
    queue,
    portid: 100 + queue,
    waiting: 0,
    copyMode: 2,
    copyRange: 512,
    dropped: 0,
    userDropped: 0,
    idSequence: 0,
    ...over,
  }
}

function conntrack(over: Partial<ConntrackStats> = {}): ConntrackStats {
  return { columns: [], cpus: [], totals: {}, entries: 10, insertFailed: 7, drop: 9, clashResolve: 42, ...over }
}

/** ctnetlink as on a kernel without nf_conntrack_netlink: the tests below decide each source. */
const noNetlink = async (): Promise<ConntrackStats> => {
  throw new Error('conntrack statistics over ctnetlink: ctnetlink: No such file or directory')
}

function metrics(over: Partial<MetricsSources> & { stats?: { queue: number; stats: QueueStats }[] } = {}): Metrics {
  return new Metrics({
    constants,
    queueStats: () => over.stats ?? [],
    queues: () => [0],
    readNfqueue: async () => [],
    readConntrack: async () => undefined,
    readConntrackNetlink: noNetlink,
    readConntrackCount: async () => 10,
    ...over,
  })
}

/** Sample lines (no comments) of one metric family: the name itself, or name_bucket/_sum/_count. */
function samples(text: string, family: string): string[] {
  return text
    .split('\n')
    .filter(
      l =>
        !l.startsWith('#') &&
        (l.startsWith(`${family} `) ||
          l.startsWith(`${family}{`) ||
          /^(\w+)_(bucket|sum|count)[ {]/.exec(l)?.[1] === family),
    )
}

function value(text: string, sample: string): number | undefined {
  const line = text.split('\n').find(l => l.startsWith(sample + ' '))
  return line === undefined ? undefined : Number(line.slice(sample.length + 1))
}

t.test('packet, parse-failure and plain counters are summed over queues', async t => {
  const q0 = emptyStats()
  const q1 = emptyStats()
  q0.packets.held!.AAAA = 3
  q1.packets.held!.AAAA = 4
  q0.packets.accepted!.A = 10
  q1.packets.accepted!.other = 2
  q1.packets.malformed!.none = 1
  q0.parseFailures.not_udp = 5
  q1.parseFailures.not_udp = 1
  q1.parseFailures.fragment = 2
  q0.counters.deadline_released = 6
  q1.counters.deadline_released = 1
  q1.counters.enobufs = 8
  q0.heldNow = 2
  q1.heldNow = 5
  q0.heldMax = 9
  q1.heldMax = 1
  q0.running = true
  const text = await metrics({
    stats: [
      { queue: 0, stats: q0 },
      { queue: 1, stats: q1 },
    ],
    queues: () => [0, 1],
  }).render()

  const packets = samples(text, 'dns_shaper_packets_total')
  const qtypes = [...constants.qtypeLabels.map(l => l.name), 'other', 'none']
  t.equal(packets.length, constants.actions.length * qtypes.length, 'every action x qtype pre-created')
  t.ok(packets.includes('dns_shaper_packets_total{action="held",qtype="AAAA"} 7'))
  t.ok(packets.includes('dns_shaper_packets_total{action="accepted",qtype="A"} 10'))
  t.ok(packets.includes('dns_shaper_packets_total{action="accepted",qtype="other"} 2'))
  t.ok(packets.includes('dns_shaper_packets_total{action="malformed",qtype="none"} 1'))
  t.equal(packets.filter(l => !l.endsWith(' 0')).length, 4, 'nothing else is non-zero')

  const reasons = samples(text, 'dns_shaper_parse_failures_total')
  t.equal(reasons.length, constants.parseReasons.length)
  t.ok(reasons.includes('dns_shaper_parse_failures_total{reason="not_udp"} 6'))
  t.ok(reasons.includes('dns_shaper_parse_failures_total{reason="fragment"} 2'))

  for (const name of constants.counters) {
    const want = name === 'deadline_released' ? 7 : name === 'enobufs' ? 8 : 0
    t.same(samples(text, `dns_shaper_${name}_total`), [`dns_shaper_${name}_total ${want}`], `dns_shaper_${name}_total`)
  }
  t.same(samples(text, 'dns_shaper_held_packets'), ['dns_shaper_held_packets 7'])
  t.same(samples(text, 'dns_shaper_held_packets_peak'), ['dns_shaper_held_packets_peak 10'])
  t.same(samples(text, 'dns_shaper_dataplane_running'), [
    'dns_shaper_dataplane_running{queue="0"} 1',
    'dns_shaper_dataplane_running{queue="1"} 0',
  ])
  t.match(text, /^# TYPE dns_shaper_packets_total counter$/m)
  t.match(text, /^# TYPE dns_shaper_held_packets gauge$/m)
  t.match(text, /^# HELP dns_shaper_held_overflow_total Packets of a held type accepted at once/m)
})

t.test('histograms: _count equals the +Inf bucket even when a snapshot tore (count read after buckets)', async t => {
  const q = emptyStats()
  q.hold.buckets[0] = 2
  q.hold.buckets[3] = 1
  // A verdict observed between the bucket reads and the count read: count is one ahead.
  q.hold = { ...q.hold, sum: 0.004, count: 4 }
  const text = await metrics({ stats: [{ queue: 0, stats: q }] }).render()
  const inf = samples(text, 'dns_shaper_hold_seconds').find(l => l.includes('le="+Inf"'))
  t.equal(inf, 'dns_shaper_hold_seconds_bucket{le="+Inf"} 3')
  t.ok(samples(text, 'dns_shaper_hold_seconds').includes('dns_shaper_hold_seconds_count 3'), '_count = +Inf bucket')
})

t.test('histograms: per-queue bucket counts become cumulative buckets summed over queues', async t => {
  const bounds = constants.holdBucketsSeconds
  const q0 = emptyStats()
  const q1 = emptyStats()
  // queue 0: 2 in the 3 ms bucket, 1 in the 5 ms bucket; queue 1: 4 in the 5 ms bucket, 1 above 1 s.
  const i3 = bounds.indexOf(0.003)
  const i5 = bounds.indexOf(0.005)
  t.ok(i3 >= 0 && i5 > i3, 'fixture bounds exist')
  q0.hold.buckets[i3] = 2
  q0.hold.buckets[i5] = 1
  q0.hold = { ...q0.hold, sum: 0.011, count: 3 }
  q1.hold.buckets[i5] = 4
  q1.hold.buckets[bounds.length] = 1
  q1.hold = { ...q1.hold, sum: 2.02, count: 5 }
  q1.latency.buckets[0] = 6
  q1.latency = { ...q1.latency, sum: 0.00001, count: 6 }
  const text = await metrics({
    stats: [
      { queue: 0, stats: q0 },
      { queue: 1, stats: q1 },
    ],
  }).render()

  const want = bounds.map((le, i) => `dns_shaper_hold_seconds_bucket{le="${le}"} ${i < i3 ? 0 : i < i5 ? 2 : 7}`)
  want.push(
    'dns_shaper_hold_seconds_bucket{le="+Inf"} 8',
    'dns_shaper_hold_seconds_sum 2.031',
    'dns_shaper_hold_seconds_count 8',
  )
  t.same(samples(text, 'dns_shaper_hold_seconds'), want)
  t.match(text, /^# TYPE dns_shaper_hold_seconds histogram$/m)

  const lat = samples(text, 'dns_shaper_verdict_latency_seconds')
  t.equal(lat.length, constants.latencyBucketsSeconds.length + 3)
  t.ok(
    lat.every(l => !l.includes('_bucket') || l.endsWith(' 6')),
    'every latency bucket holds the 6 (all in the first)',
  )
  t.equal(value(text, 'dns_shaper_verdict_latency_seconds_count'), 6)
  t.equal(value(text, 'dns_shaper_verdict_latency_seconds_sum'), 0.00001)
})

t.test('no queue yet (before start): empty histograms and zero counters, still valid', async t => {
  const text = await metrics().render()
  t.equal(value(text, 'dns_shaper_hold_seconds_bucket{le="+Inf"}'), 0)
  t.equal(value(text, 'dns_shaper_hold_seconds_count'), 0)
  t.equal(value(text, 'dns_shaper_held_packets'), 0)
  t.same(samples(text, 'dns_shaper_dataplane_running'), [])
})

t.test('queue metrics: only the queues this shaper binds', async t => {
  const m = metrics({
    queues: () => [1, 2],
    readNfqueue: async () => [
      nfq(0, { waiting: 99, dropped: 99, userDropped: 99 }),
      nfq(1, { waiting: 3, dropped: 1, userDropped: 2 }),
      nfq(2, { userDropped: 5 }),
      nfq(7),
    ],
  })
  const text = await m.render()
  t.same(samples(text, 'dns_shaper_queue_dropped_total'), [
    'dns_shaper_queue_dropped_total{queue="1"} 1',
    'dns_shaper_queue_dropped_total{queue="2"} 0',
  ])
  t.same(samples(text, 'dns_shaper_queue_user_dropped_total'), [
    'dns_shaper_queue_user_dropped_total{queue="1"} 2',
    'dns_shaper_queue_user_dropped_total{queue="2"} 5',
  ])
  t.same(samples(text, 'dns_shaper_queue_waiting'), [
    'dns_shaper_queue_waiting{queue="1"} 3',
    'dns_shaper_queue_waiting{queue="2"} 0',
  ])
  t.match(text, /^# TYPE dns_shaper_queue_waiting gauge$/m)
})

t.test('queue metrics: an unreadable nfnetlink_queue leaves them out, the rest still renders', async t => {
  const text = await metrics({
    readNfqueue: async () => {
      throw new Error('EACCES')
    },
    readConntrack: async () => conntrack(),
  }).render()
  t.same(samples(text, 'dns_shaper_queue_user_dropped_total'), [])
  t.equal(value(text, 'dns_shaper_conntrack_insert_failed_total'), 7)
})

t.test('conntrack: all three counters when the kernel has them', async t => {
  const text = await metrics({ readConntrack: async () => conntrack() }).render()
  t.same(samples(text, 'dns_shaper_conntrack_insert_failed_total'), ['dns_shaper_conntrack_insert_failed_total 7'])
  t.same(samples(text, 'dns_shaper_conntrack_drop_total'), ['dns_shaper_conntrack_drop_total 9'])
  t.same(samples(text, 'dns_shaper_conntrack_clash_resolve_total'), ['dns_shaper_conntrack_clash_resolve_total 42'])
  t.match(
    text,
    /^# HELP dns_shaper_conntrack_insert_failed_total .*before 5\.10 resolved clashes were counted here too/m,
    'help says what insert_failed counts on either side of 5.10',
  )
})

t.test('conntrack: a column the kernel lacks is omitted, not reported as 0', async t => {
  const old = await metrics({ readConntrack: async () => conntrack({ clashResolve: undefined }) }).render()
  t.same(samples(old, 'dns_shaper_conntrack_clash_resolve_total'), [], 'no clash_resolve sample before 5.10')
  t.equal(value(old, 'dns_shaper_conntrack_insert_failed_total'), 7)
  const none = await metrics({
    readConntrack: async () => undefined,
    readConntrackCount: async () => undefined,
  }).render()
  for (const n of ['insert_failed', 'drop', 'clash_resolve'])
    t.same(samples(none, `dns_shaper_conntrack_${n}_total`), [], `no ${n} without conntrack`)
  t.equal(value(none, 'dns_shaper_conntrack_loaded'), 0, 'and the loaded gauge says why')
  const failing = await metrics({
    readConntrack: async () => {
      throw new Error('parse error')
    },
  }).render()
  t.same(samples(failing, 'dns_shaper_conntrack_drop_total'), [], 'read error: omitted')
  t.equal(value(failing, 'dns_shaper_held_packets'), 0, 'and the rest renders')
})

t.test('conntrack and queues from /proc fixtures through the real readers', async t => {
  // One scrape of a /proc fixture through the real readers, with no queues of its own.
  const fromFixture = (dir: string, readConntrackNetlink = noNetlink): Promise<string> =>
    new Metrics({
      constants,
      queueStats: () => [],
      queues: () => [0],
      procRoot: PROC(dir),
      readConntrackNetlink,
    }).render()
  // kernel-5.10: clashres 0x3d+0x3a, insert_failed 0+1, drop 0+1 (summed over the two CPU rows).
  const k510 = await fromFixture('kernel-5.10')
  t.equal(value(k510, 'dns_shaper_conntrack_clash_resolve_total'), 0x3d + 0x3a, 'clashres column read as clash_resolve')
  t.equal(value(k510, 'dns_shaper_conntrack_insert_failed_total'), 1)
  t.equal(value(k510, 'dns_shaper_conntrack_drop_total'), 1)
  t.same(samples(k510, 'dns_shaper_queue_waiting'), [], 'no nfnetlink_queue file: no queue samples')
  // kernel-4.19: no clash counter at all.
  const k419 = await fromFixture('kernel-4.19')
  t.equal(value(k419, 'dns_shaper_conntrack_insert_failed_total'), 3 + 5)
  t.equal(value(k419, 'dns_shaper_conntrack_drop_total'), 3 + 4)
  t.same(samples(k419, 'dns_shaper_conntrack_clash_resolve_total'), [])
  const empty = await fromFixture('empty')
  t.same(samples(empty, 'dns_shaper_conntrack_insert_failed_total'), [], 'conntrack not loaded: omitted')
  t.equal(value(empty, 'dns_shaper_conntrack_loaded'), 0)
  // A kernel without CONFIG_NF_CONNTRACK_PROCFS: loaded (nf_conntrack_count), counters from netlink.
  const noStat = await fromFixture('no-stat-file', async () =>
    statsFromNetlink([{ cpu: 0, counters: { insert_failed: 3, drop: 3 } }]),
  )
  t.equal(value(noStat, 'dns_shaper_conntrack_loaded'), 1)
  t.equal(value(noStat, 'dns_shaper_conntrack_insert_failed_total'), 3)
  t.equal(value(noStat, 'dns_shaper_conntrack_source{source="netlink"}'), 1)
  t.equal(value(noStat, 'dns_shaper_scrape_source_success{source="conntrack_procfs"}'), 0)
})

t.test("conntrack source: netlink preferred, procfs fallback, each source's success always present", async t => {
  const proc = async (): Promise<ConntrackStats> => conntrack({ insertFailed: 7 })
  const both = await metrics({
    readConntrack: proc,
    readConntrackNetlink: async () => statsFromNetlink([{ cpu: 0, counters: { insert_failed: 8, drop: 1 } }]),
  }).render()
  t.equal(value(both, 'dns_shaper_conntrack_insert_failed_total'), 8, 'from netlink')
  t.same(samples(both, 'dns_shaper_conntrack_source'), [
    'dns_shaper_conntrack_source{source="netlink"} 1',
    'dns_shaper_conntrack_source{source="procfs"} 0',
    'dns_shaper_conntrack_source{source="none"} 0',
  ])
  t.same(samples(both, 'dns_shaper_scrape_source_success'), [
    'dns_shaper_scrape_source_success{source="conntrack_netlink"} 1',
    'dns_shaper_scrape_source_success{source="conntrack_procfs"} 1',
    'dns_shaper_scrape_source_success{source="nfnetlink_queue"} 1',
  ])
  const fallback = await metrics({ readConntrack: proc }).render()
  t.equal(value(fallback, 'dns_shaper_conntrack_insert_failed_total'), 7, 'from procfs')
  t.equal(value(fallback, 'dns_shaper_conntrack_source{source="procfs"}'), 1)
  t.equal(value(fallback, 'dns_shaper_scrape_source_success{source="conntrack_netlink"}'), 0)
  const neither = await metrics({
    readConntrack: async () => undefined,
    readNfqueue: async () => {
      throw new Error('EACCES')
    },
  }).render()
  t.equal(value(neither, 'dns_shaper_conntrack_source{source="none"}'), 1)
  t.equal(value(neither, 'dns_shaper_conntrack_loaded'), 1, 'loaded, yet no counters: visible, not vanished')
  t.same(
    samples(neither, 'dns_shaper_scrape_source_success').map(l => l.split(' ')[1]),
    ['0', '0', '0'],
    'all three sources failing show as 0',
  )
})

t.test('conntrack source failures are reported once each while conntrack is loaded', async t => {
  const errors: string[] = []
  const m = metrics({ onReadError: source => errors.push(source) })
  await m.render()
  await m.render()
  t.same(errors, ['conntrack_netlink', 'conntrack_procfs'])
})

t.test('build info: version from package.json, the commit the build recorded, Node.js version', async t => {
  const { COMMIT } = await import('../../src/version.js')
  const text = await metrics().render()
  t.same(samples(text, 'dns_shaper_build_info'), [
    `dns_shaper_build_info{version="${pkgVersion}",commit="${COMMIT}",node_version="${process.versions.node}"} 1`,
  ])
})

t.test('reloads and rule reinstalls are pre-created at 0 and count', async t => {
  const m = metrics()
  const before = await m.render()
  t.same(samples(before, 'dns_shaper_config_reloads_total'), [
    'dns_shaper_config_reloads_total{result="ok"} 0',
    'dns_shaper_config_reloads_total{result="error"} 0',
  ])
  t.same(samples(before, 'dns_shaper_rules_reinstalled_total'), ['dns_shaper_rules_reinstalled_total 0'])
  t.same(samples(before, 'dns_shaper_config_last_reload_successful'), ['dns_shaper_config_last_reload_successful 1'])
  m.recordReload(false)
  t.equal(value(await m.render(), 'dns_shaper_config_last_reload_successful'), 0, 'a failed reload shows')
  m.rulesReinstalled.inc()
  m.rulesReinstalled.inc()
  const after = await m.render()
  t.equal(value(after, 'dns_shaper_config_reloads_total{result="error"}'), 1)
  t.equal(value(after, 'dns_shaper_config_reloads_total{result="ok"}'), 0)
  t.equal(value(after, 'dns_shaper_rules_reinstalled_total'), 2)
})

t.test('process metrics present; gauges misnamed *_total removed', async t => {
  const m = metrics()
  const text = await m.render()
  t.match(text, /^process_cpu_seconds_total \d/m)
  t.match(text, /^process_resident_memory_bytes \d/m)
  t.notMatch(text, /nodejs_active_(handles|requests|resources)_total/)
  t.match(m.contentType, /^text\/plain; version=0\.0\.4/)
})

t.test('each registry is its own: two instances do not share samples', async t => {
  const a = emptyStats()
  a.packets.held!.AAAA = 1
  const one = await metrics({ stats: [{ queue: 0, stats: a }] }).render()
  const two = await metrics().render()
  t.equal(value(one, 'dns_shaper_packets_total{action="held",qtype="AAAA"}'), 1)
  t.equal(value(two, 'dns_shaper_packets_total{action="held",qtype="AAAA"}'), 0)
})

t.test('rendering reads the sources once per scrape and never changes them', async t => {
  const s = emptyStats()
  s.packets.held!.AAAA = 5
  const frozen = structuredClone(s)
  let reads = 0
  const m = metrics({
    queueStats: () => {
      reads++
      return [{ queue: 0, stats: s }]
    },
  })
  await m.render()
  await m.render()
  t.equal(reads, 2)
  t.same(s, frozen)
})

const noPromtool = spawnSync('promtool', ['--version']).error
  ? 'promtool not installed (Debian package prometheus)'
  : false
t.test('promtool accepts the exposition (lint clean)', { skip: noPromtool }, async t => {
  const s = emptyStats()
  s.hold.buckets[3] = 1
  s.hold = { ...s.hold, sum: 0.003, count: 1 }
  const text = await metrics({
    stats: [{ queue: 0, stats: s }],
    readNfqueue: async () => [nfq(0)],
    readConntrack: async () => conntrack(),
  }).render()
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 10000 })
  t.equal(r.status, 0, `promtool exit 0 (stderr: ${r.stderr})`)
  t.equal(`${r.stdout}${r.stderr}`.trim(), '', 'no lint warnings')
})

t.test('sparse native stats and an unknown counter name still render (zeros, name as help)', async t => {
  const sparse: QueueStats = { ...emptyStats(), packets: {}, parseFailures: {}, counters: {} }
  const m = new Metrics({
    constants: { ...constants, counters: [...constants.counters, 'future_thing'] },
    queueStats: () => [{ queue: 0, stats: sparse }],
    queues: () => [0],
    readNfqueue: async () => [],
    readConntrack: async () => undefined,
    readConntrackNetlink: noNetlink,
  })
  const text = await m.render()
  t.equal(value(text, 'dns_shaper_packets_total{action="held",qtype="AAAA"}'), 0)
  t.equal(value(text, 'dns_shaper_parse_failures_total{reason="not_udp"}'), 0)
  t.equal(value(text, 'dns_shaper_future_thing_total'), 0)
  t.match(text, /^# HELP dns_shaper_future_thing_total future_thing$/m)
  // registry.resetMetrics() must not break the snapshot metrics (they have nothing to reset).
  m.registry.resetMetrics()
  t.match(await m.render(), /^dns_shaper_future_thing_total 0$/m)
})

t.test('an unreadable /proc source is reported once and its series left out', async t => {
  const errors: string[] = []
  const m = new Metrics({
    constants,
    queueStats: () => [],
    queues: () => [0],
    readNfqueue: async () => {
      throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' })
    },
    readConntrack: async () => undefined,
    readConntrackNetlink: noNetlink,
    readConntrackCount: async () => undefined,
    onReadError: source => errors.push(source),
  })
  const text = await m.render()
  await m.render()
  t.same(errors, ['nfnetlink_queue'], 'once, naming the source')
  t.notMatch(text, /^dns_shaper_queue_dropped_total\{/m)
})

t.test('user_dropped is not described as counting fail-open passes (the kernel does not count them)', async t => {
  const m = new Metrics({ constants, queueStats: () => [], queues: () => [] })
  const text = await m.render()
  const help = /# HELP dns_shaper_queue_user_dropped_total (.*)/.exec(text)?.[1] ?? ''
  t.match(help, /only without fail-open/, 'metric help')
  const root = new URL('../../', import.meta.url)
  for (const f of ['docs/metrics.md', 'deploy/grafana/dns-shaper.json']) {
    const doc = readFileSync(new URL(f, root), 'utf8')
    t.notMatch(doc, /thanks to fail-open|With fail-open they passed/, `${f}: no claim that user_dropped counts them`)
  }
})
