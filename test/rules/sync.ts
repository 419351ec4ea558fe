// src/rules/sync.ts: one queue of rule operations, and the health they leave (the daemon tests cover it
// through the daemon; these pin the queue itself).
import t from 'tap'
import { RuleSync, ruleManagerRules, type FamilyState, type Rules } from '../../src/rules/sync.js'
import { RuleManager } from '../../src/rules/manager.js'
import { silentLogger } from '../../src/log.js'
import { compileRulePlan } from '../../src/rules/plan.js'
import { cfg, FakeTables, NFT } from '../helpers/rules.js'

/** The fake below ignores the plan; RuleManager's use of it is pinned in test/rules/manager.ts. */
const plan = compileRulePlan(cfg())

function fake(): Rules & { ops: string[]; fail: Set<string>; states: FamilyState[] } {
  const ops: string[] = []
  const fail = new Set<string>()
  const op = (name: string) => async () => {
    ops.push(`${name} start`)
    await new Promise(r => setTimeout(r, 5))
    ops.push(`${name} end`)
    if (fail.has(name)) throw new Error(`${name} failed`)
  }
  const states: FamilyState[] = [
    { family: 'ipv4', ok: true },
    { family: 'ipv6', ok: true },
  ]
  return {
    ops,
    fail,
    states,
    install: op('install'),
    remove: op('remove'),
    removeHooks: op('hooks'),
    status: async () => {
      ops.push('status')
      return states.map(s => ({ ...s }))
    },
  }
}

t.test('operations run one at a time in the order asked; nothing installs after remove', async t => {
  const r = fake()
  const s = new RuleSync(r, plan, { log: silentLogger })
  const a = s.install()
  await new Promise(r => setTimeout(r, 1)) // the install is running
  const b = s.remove()
  const c = s.install() // a reload racing the stop
  const d = s.reconcile()
  await Promise.all([a, b, c, d])
  t.same(r.ops, ['install start', 'install end', 'remove start', 'remove end'], 'the remove waits for the install')
  t.match(s.health(), { installed: { ipv4: false, ipv6: false }, problem: 'rules removed' })

  // A remove asked for before a queued install began: that install never runs.
  const r2 = fake()
  const s2 = new RuleSync(r2, plan, { log: silentLogger })
  const e = s2.install()
  await s2.remove()
  await e
  t.same(r2.ops, [], 'nothing installed, nothing to remove')
})

t.test('health: failures counted by op; per-family state read back after a failed install', async t => {
  const r = fake()
  let now = 1000_000
  const s = new RuleSync(r, plan, { log: silentLogger, now: () => now })
  t.match(s.health(), { installed: { ipv4: false, ipv6: false }, lastSyncSeconds: undefined })
  await s.install()
  t.same(s.health(), {
    installed: { ipv4: true, ipv6: true },
    errors: { install: 0, reconcile: 0, remove: 0 },
    lastSyncSeconds: 1000,
    problem: undefined,
  })
  r.fail.add('install')
  r.states[1]!.ok = false
  now += 5000
  await t.rejects(s.install(), /install failed/)
  t.match(s.health(), {
    installed: { ipv4: true, ipv6: false },
    errors: { install: 1 },
    lastSyncSeconds: 1000,
    problem: /^rule install failed/,
  })
  t.equal(await s.reconcile(), false)
  t.match(s.health(), { errors: { reconcile: 1 }, problem: /ipv6 are missing or outdated/ })
  r.fail.delete('install')
  let reinstalled = 0
  const s2 = new RuleSync(r, plan, { log: silentLogger, onReinstalled: () => reinstalled++ })
  await s2.install()
  r.states[1]!.ok = false
  t.equal(await s2.reconcile(), true)
  t.equal(reinstalled, 1)
  t.equal(s2.health().problem, undefined)
  r.fail.add('remove')
  await t.rejects(s2.remove())
  t.equal(s2.health().errors.remove, 1)
  r.fail.add('hooks')
  await s2.removeHooks() // never throws
  t.equal(s2.health().errors.remove, 2)
})

t.test('ruleManagerRules: a disabled IPv6 counts as matching its (empty) plan', async t => {
  const tables = new FakeTables()
  const m = new RuleManager({ config: cfg({ ipv6: false }), runner: tables.runner, backend: NFT })
  const rules = ruleManagerRules(m)
  const own = compileRulePlan(cfg({ ipv6: false }))
  t.same(await rules.status(own), [
    { family: 'ipv4', ok: false },
    { family: 'ipv6', ok: true },
  ])
  await rules.install(own)
  t.same(await rules.status(own), [
    { family: 'ipv4', ok: true },
    { family: 'ipv6', ok: true },
  ])
  await rules.remove(own)
  t.same(tables.table('iptables-nft-save').chains, ['PREROUTING', 'OUTPUT'], 'hooks kept by remove()')
  await rules.removeHooks!()
  t.notOk(tables.state.has('iptables-nft-save'), 'and deleted by removeHooks(), with the raw table our install created')
})
