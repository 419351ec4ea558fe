// The constant lists the addon exports (metric label sets) match what Queue#stats() returns, so TS
// can pre-create every label set from them. Needs no root: stats() works on an unbound queue.
import t from 'tap'
import { constants, Queue } from '../../src/nfqueue.js'

const stats = new Queue({ queue: 65000 }).stats()

t.test('actions x qtype labels', async t => {
  t.same(constants.actions, ['accepted', 'held', 'bypassed', 'malformed'])
  t.same(Object.keys(stats.packets), constants.actions, 'one row per action, in order')
  const labels = [...constants.qtypeLabels.map(l => l.name), 'other', 'none']
  for (const a of constants.actions)
    t.same(Object.keys(stats.packets[a]!), labels, `${a}: every qtype label, then other and none`)
  t.same(
    constants.qtypeLabels.find(l => l.name === 'AAAA'),
    { qtype: 28, name: 'AAAA' },
  )
  t.same(
    constants.qtypeLabels.find(l => l.name === 'HTTPS'),
    { qtype: 65, name: 'HTTPS' },
  )
  t.same(
    constants.qtypeLabels.find(l => l.name === 'SVCB'),
    { qtype: 64, name: 'SVCB' },
  )
  t.same(
    constants.qtypeLabels.find(l => l.name === 'A'),
    { qtype: 1, name: 'A' },
  )
  const nums = constants.qtypeLabels.map(l => l.qtype)
  t.equal(new Set(nums).size, nums.length, 'qtype numbers unique')
  t.equal(new Set(labels).size, labels.length, 'label names unique')
  for (const n of nums) t.ok(Number.isInteger(n) && n > 0 && n < 65536, `qtype ${n} in range`)
})

t.test('parse reasons', async t => {
  t.same(Object.keys(stats.parseFailures), constants.parseReasons, 'stats keys = exported reasons, in order')
  t.notOk(constants.parseReasons.includes('none'), '"none" is not a failure')
  for (const r of [
    'ip_header',
    'ipv6_ext_header',
    'not_udp',
    'fragment',
    'udp_header',
    'dns_header',
    'label',
    'name_too_long',
    'pointer',
    'question',
  ])
    t.ok(constants.parseReasons.includes(r), r)
  for (const r of constants.parseReasons) t.match(r, /^[a-z0-9_]+$/, `${r} is a metric-safe label value`)
})

t.test('counters', async t => {
  t.same(Object.keys(stats.counters), constants.counters, 'stats keys = exported counters, in order')
  t.equal(new Set(constants.counters).size, constants.counters.length, 'unique')
  for (const c of constants.counters) {
    t.match(c, /^[a-z][a-z0-9_]*$/, `${c}: snake_case`)
    t.notMatch(c, /_total$/, `${c}: TS adds the _total suffix`)
  }
})

t.test('histogram bounds', async t => {
  for (const [name, bounds, snap] of [
    ['hold', constants.holdBucketsSeconds, stats.hold],
    ['latency', constants.latencyBucketsSeconds, stats.latency],
  ] as const) {
    t.ok(bounds.length > 0, `${name}: has buckets`)
    for (let i = 1; i < bounds.length; i++)
      t.ok(bounds[i]! > bounds[i - 1]!, `${name}: ${bounds[i - 1]} < ${bounds[i]}`, { diagnostic: false })
    t.ok(
      bounds.every(b => Number.isFinite(b) && b > 0),
      `${name}: finite positive seconds`,
    )
    t.equal(snap.buckets.length, bounds.length + 1, `${name}: stats has one bucket per bound plus +Inf`)
  }
  t.ok(constants.holdBucketsSeconds.includes(0.005), 'hold buckets resolve the 5 ms default hold')
  t.ok(constants.holdBucketsSeconds.includes(0.02), 'hold buckets resolve 20 ms')
  t.equal(constants.maxHoldClasses, 8)
})
