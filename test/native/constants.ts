// The constant lists the addon exports (metric label sets) match what Queue#stats() returns, so TS
// can pre-create every label set from them; the tables the build emits (src/dataplane/constants.ts)
// equal what the loaded addon reports. Needs no root: stats() works on an unbound queue.
import t from 'tap'
import { addonConstants as constants, addonLimits as limits, Queue } from '../../src/dataplane/nfqueue.js'
import * as built from '../../src/dataplane/constants.js'
import * as L from '../../src/dataplane/limits.js'
import { loadConfig } from '../../src/config/load.js'
import { compilePolicy } from '../../src/dataplane/policy.js'
import { checkHolds } from '../../src/config/holds.js'
import { ConfigError } from '../../src/errors.js'
import { holds } from '../helpers/config.js'

const stats = new Queue({ queue: 65000 }).stats()

t.test('actions x qtype labels', async t => {
  t.same(constants.actions, ['accepted', 'held', 'bypassed', 'malformed'])
  t.same(Object.keys(stats.packets), constants.actions, 'one row per action, in order')
  const labels = [...constants.qtypeLabels.map(l => l.name), 'other', 'none']
  for (const a of constants.actions)
    t.same(Object.keys(stats.packets[a]!), labels, `${a}: every qtype label, then other and none`)
  for (const [name, qtype] of [
    ['AAAA', 28],
    ['HTTPS', 65],
    ['SVCB', 64],
    ['A', 1],
  ] as const)
    t.same(
      constants.qtypeLabels.find(l => l.name === name),
      { qtype, name },
      `${name} label is qtype ${qtype}`,
    )
  const nums = constants.qtypeLabels.map(l => l.qtype)
  t.equal(new Set(nums).size, nums.length, 'qtype numbers unique')
  t.equal(new Set(labels).size, labels.length, 'label names unique')
  for (const n of nums) t.ok(Number.isInteger(n) && n > 0 && n < 65536, `qtype ${n} in range`)
})

t.test('the tables emitted at build time are exactly what the loaded addon reports', async t => {
  t.strictSame(built.constants, constants, 'constants: counters, labels, help text, buckets')
  t.strictSame(built.limits, limits, 'limits')
  t.same(Object.keys(built.constants.help).sort(), Object.keys(constants.help).sort(), 'same help keys, none extra')
  t.same(Object.keys(built.limits).sort(), Object.keys(limits).sort(), 'same limit names, none extra')
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

t.test('help text and label table come from native, once', async t => {
  for (const c of constants.counters) t.match(constants.help[c], /^[A-Z].+\.$/, `${c}: has a help sentence`)
  for (const s of ['packets', 'parse_failures', 'hold', 'latency', 'held_now', 'held_max', 'running'])
    t.match(constants.help[s], /^[A-Z].+\.$/, `${s}: has a help sentence`)
  t.same(constants.packetLabels, [...constants.qtypeLabels.map(l => l.name), 'other', 'none'], 'labels + other, none')
  t.same(Object.keys(stats.packets.accepted!), constants.packetLabels, 'stats rows use the exported label table')
})

t.test(
  'limits: one source, native/limits.h, re-exported by src/dataplane/limits.ts and used by config and policy',
  async t => {
    t.equal(constants.maxHoldClasses, limits.maxHoldClasses, 'constants and limits agree')
    t.equal(L.MAX_HOLD_CLASSES, limits.maxHoldClasses)
    t.equal(L.MAX_HOLD_MS, limits.maxHoldMs)
    t.equal(L.MAX_PAIR_WINDOW_MS, limits.maxPairWindowMs)
    t.equal(L.MAX_HELD, limits.maxHeld)
    t.equal(L.DEFAULT_MAX_HELD, limits.defaultMaxHeld)
    t.equal(L.DEFAULT_PAIR_SLOTS, limits.defaultPairSlots)
    t.equal(L.MEMORY_BUDGET_BYTES, limits.memoryBudgetBytes)
    t.equal(limits.maxHoldClasses, 8)
    t.equal(limits.maxHoldMs, 10000)
    t.equal(limits.maxPairWindowMs, 10000)
    t.equal(limits.defaultPairSlots, 4096)
    t.ok(limits.maxCopyRange < 8192 && limits.maxCopyRange >= 1500, 'copy range fits one receive slot, a full MTU too')
    t.ok(limits.maxQueueMaxLen > limits.maxHeld, 'the queue can always be longer than what is held')
    for (const v of Object.values(limits)) t.ok(Number.isInteger(v) && v > 0, `${v}: positive integer`)
    // Config and policy enforce exactly these bounds.
    t.equal(loadConfig(['--delay', String(limits.maxHoldMs)]).config.delayMs, limits.maxHoldMs)
    t.throws(() => loadConfig(['--delay', String(limits.maxHoldMs + 1)]), /--delay/)
    t.equal(loadConfig(['--pair-window', String(limits.maxPairWindowMs)]).config.pairWindowMs, limits.maxPairWindowMs)
    t.throws(() => loadConfig(['--pair-window', String(limits.maxPairWindowMs + 1)]), /--pair-window/)
    t.equal(loadConfig(['--max-held', String(limits.maxHeld)]).config.maxHeld, limits.maxHeld)
    t.throws(() => loadConfig(['--max-held', String(limits.maxHeld + 1)]), /--max-held/)
    t.equal(loadConfig([]).config.maxHeld, limits.defaultMaxHeld)
    const base = { dryRun: false, mode: 'fixed' as const, pairWindowMs: 0, maxHeld: 10 }
    const rules = (n: number): { qtype: number; holdMs: number }[] =>
      Array.from({ length: n }, (_, i) => ({ qtype: 100 + i, holdMs: i + 1 }))
    t.doesNotThrow(() => compilePolicy({ ...base, rules: holds(rules(limits.maxHoldClasses)) }))
    t.throws(() => checkHolds(rules(limits.maxHoldClasses + 1), '--delay'), ConfigError)
    t.throws(() => checkHolds([{ qtype: 28, holdMs: limits.maxHoldMs + 1 }], '--delay'), ConfigError)
    // ... and the native side rejects the same values in a policy.
    const q = new Queue({ queue: 65003 })
    const p = compilePolicy({ ...base, rules: holds(rules(limits.maxHoldClasses)) })
    t.throws(() => q.start({ ...p, holdMs: [0, limits.maxHoldMs + 1] }), /holdMs entries must be 0\.\.10000/)
    t.throws(() => q.start({ ...p, pairWindowMs: limits.maxPairWindowMs + 1 }), /pairWindowMs must be 0\.\.10000/)
    q.stop()
  },
)
