import t from 'tap'
import { Shaper } from '../../src/dataplane/shaper.js'
import { DEFAULTS } from '../../src/config/load.js'
import { compilePlan } from '../../src/plan/plan.js'
import { FakeQueue } from '../helpers/fake-queue.js'

const make = (over: Partial<typeof DEFAULTS> = {}, failOn?: number) => {
  const queues: FakeQueue[] = []
  const fatal: [number, Error][] = []
  const s = new Shaper({
    plan: compilePlan({ config: { ...DEFAULTS, ...over }, rules: [{ qtype: 28, holdMs: 5 }] }),
    createQueue: (num, onFatal, maxHeld) => {
      const q = new FakeQueue(num, onFatal, maxHeld)
      if (num === failOn) q.failStart = Object.assign(new Error('bind queue (queue 2): busy'), { code: 'EBUSY' })
      queues.push(q)
      return q
    },
    onFatal: (n, e) => fatal.push([n, e]),
  })
  return { s, queues, fatal }
}

t.test('one queue per configured number, each with the compiled policy', async t => {
  const { s, queues } = make({ queue: 4, queues: 3, maxHeld: 100 })
  s.start()
  t.same(
    queues.map(q => q.num),
    [4, 5, 6],
  )
  t.ok(queues.every(q => q.policies[0]?.table[28] === 1 && q.policies[0]?.holdMs[1] === 5))
  t.ok(
    queues.every(q => q.maxHeld >= 100),
    'FIFO capacity at least the cap',
  )
  t.equal(s.running, true)
  t.equal(s.stats().length, 3)
  s.stop()
  s.stop()
  t.equal(s.running, false)
  t.ok(queues.every(q => q.stopped >= 1))
  t.equal(s.stats().length, 3, 'final counters still readable after stop')
})

t.test('a failed bind unbinds the queues already bound and rethrows', async t => {
  const { s, queues } = make({ queue: 0, queues: 3 }, 2)
  t.throws(() => s.start(), /busy/)
  t.equal(queues.length, 3)
  t.equal(queues[0]!.stopped, 1)
  t.equal(queues[1]!.stopped, 1)
})

t.test('reload hands every queue the new table; data-plane death reaches onFatal with the queue', async t => {
  const { s, queues, fatal } = make({ queues: 2 })
  s.start()
  s.reload(
    compilePlan({ config: { ...DEFAULTS, queues: 2, dryRun: true, mode: 'pair' }, rules: [{ qtype: 65, holdMs: 2 }] })
      .policy,
  )
  for (const q of queues) {
    const p = q.policies.at(-1)!
    t.equal(p.table[65], 1)
    t.equal(p.table[28], 0)
    t.equal(p.dryRun, true)
    t.equal(p.pair, true)
  }
  t.equal(s.policy.table[65], 1)
  queues[1]!.onFatal(Object.assign(new Error('recvmmsg'), { code: 'EBADF' }))
  t.same(
    fatal.map(([n]) => n),
    [1],
  )
})
