import t from 'tap'
import { compilePolicy, describePolicy, PolicyError, MAX_HOLD_CLASSES } from '../../src/dataplane/policy.js'

const base = { dryRun: false, mode: 'fixed' as const, pairWindowMs: 5, maxHeld: 100 }

t.test('one class per distinct hold; everything else accepted', async t => {
  const p = compilePolicy({
    ...base,
    rules: [
      { qtype: 28, holdMs: 5 },
      { qtype: 65, holdMs: 2 },
      { qtype: 64, holdMs: 5 },
    ],
  })
  t.equal(p.table.length, 65536)
  t.equal(p.table[28], 1)
  t.equal(p.table[64], 1, 'same hold shares a class')
  t.equal(p.table[65], 2)
  t.equal(p.table[1], 0, 'A accepted')
  t.same(p.holdMs, [0, 5, 2])
  t.equal(
    p.table.reduce((a, b) => a + (b ? 1 : 0), 0),
    3,
  )
  t.same(describePolicy(p), [
    { qtype: 28, holdMs: 5 },
    { qtype: 64, holdMs: 5 },
    { qtype: 65, holdMs: 2 },
  ])
  t.equal(p.pair, false)
  t.equal(compilePolicy({ ...base, mode: 'pair', rules: [] }).pair, true)
})

t.test('limits', async t => {
  const many = Array.from({ length: MAX_HOLD_CLASSES + 1 }, (_, i) => ({ qtype: 100 + i, holdMs: i + 1 }))
  t.throws(() => compilePolicy({ ...base, rules: many }), PolicyError)
  t.doesNotThrow(() => compilePolicy({ ...base, rules: many.slice(0, MAX_HOLD_CLASSES) }))
  t.throws(() => compilePolicy({ ...base, rules: [{ qtype: 0, holdMs: 1 }] }), /QTYPE 0 is out of range/)
  t.throws(() => compilePolicy({ ...base, rules: [{ qtype: 28, holdMs: -1 }] }), /out of range 0\.\.10000/)
})
