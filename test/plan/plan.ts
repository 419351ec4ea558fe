// src/plan/plan.ts: settings -> Plan, and the diff a reload acts on. Pure, no addon, no root.
import t from 'tap'
import { loadConfig } from '../../src/config/load.js'
import { compilePlan, diffPlans, reloadPlan } from '../../src/plan/plan.js'

const plan = (...argv: string[]) => compilePlan(loadConfig(argv, { env: {} }))

t.test('one plan: holds, the table compiled from them, queued types, queues, listener', async t => {
  const p = plan('--qtypes', 'AAAA,HTTPS', '--delay', '7', '--mode', 'pair', '--queue', '3', '--queues', '2')
  t.same(p.holds, [
    { qtype: 28, holdMs: 7 },
    { qtype: 65, holdMs: 7 },
  ])
  t.equal(p.policy.table[28], 1)
  t.equal(p.policy.table[65], 1)
  t.equal(p.policy.table[1], 0, 'A is not held')
  t.same(p.policy.holdMs, [0, 7])
  t.equal(p.policy.pair, true)
  t.same(p.queued, [1, 28, 65], 'pair mode queues the A as well')
  t.same(p.queues, [3, 4])
  t.equal(p.metricsListen, p.settings.metricsListen)
  t.same(plan('--mode', 'fixed').queued, [28], 'fixed mode: the held types only')
})

t.test('diff: each changed part, and the settings only a restart applies', async t => {
  const a = plan('--mode', 'fixed')
  t.same(diffPlans(a, plan('--mode', 'fixed')), { policy: false, queued: false, logLevel: false, restart: [] }, 'same')
  t.same(diffPlans(a, plan('--mode', 'fixed', '--delay', '9')), {
    policy: true,
    queued: false,
    logLevel: false,
    restart: [],
  })
  t.same(diffPlans(a, plan('--mode', 'fixed', '--qtypes', 'AAAA,HTTPS')), {
    policy: true,
    queued: true,
    logLevel: false,
    restart: [],
  })
  t.same(diffPlans(a, plan('--mode', 'pair')), { policy: true, queued: true, logLevel: false, restart: [] })
  t.same(diffPlans(a, plan('--mode', 'fixed', '--log-level', 'debug')), {
    policy: false,
    queued: false,
    logLevel: true,
    restart: [],
  })
  for (const [flag, value, key] of [
    ['--queue', '7', 'queue'],
    ['--dns-port', '5353', 'dnsPort'],
    ['--metrics-listen', 'off', 'metricsListen'],
    ['--kernel-filter', 'u32', 'kernelFilter'],
    ['--hooks', 'output', 'hooks'],
  ] as const)
    t.same(diffPlans(a, plan('--mode', 'fixed', flag, value)).restart, [key], `${flag}: restart only`)
})

t.test('reload plan: the next holds and policy over the running start-only settings', async t => {
  const a = plan('--mode', 'fixed', '--queue', '2')
  const next = loadConfig(['--mode', 'pair', '--queue', '9', '--delay', '3'], { env: {} })
  const r = reloadPlan(a, next)
  t.same(r.queues, [2], 'the queue stays until restart')
  t.equal(r.settings.queue, 2)
  t.equal(r.settings.mode, 'pair')
  t.same(r.policy.holdMs, [0, 3])
  t.same(r.queued, [1, 28])
  t.same(diffPlans(a, r).restart, [], 'nothing left that only a restart would apply')
})
