// src/probe/verdict.ts: the race probe's figures and outcome from the router's counter deltas.
import t from 'tap'
import { notRun, phaseFigures, probeVerdict, type PhaseInput } from '../../src/probe/verdict.js'
import { parseConntrackStats, type ConntrackStats } from '../../src/kernel/procfs.js'
import { ct } from '../helpers/check.js'

// A 5.0-5.9 kernel's stat file: no clashres column, insert_failed counts every clash.
const OLD_HEADER =
  'entries  searched found new invalid ignore delete delete_list insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart'
const oldCt = (failed: number): ConntrackStats =>
  parseConntrackStats(
    `${OLD_HEADER}\n${[5, 0, 0, 0, 0, 0, 0, 0, 100, failed, 0, 0, 0, 0, 0, 0, 0].map(n => n.toString(16).padStart(8, '0')).join(' ')}\n`,
  )

const phase = (over: Partial<PhaseInput>): PhaseInput => ({
  masquerade: false,
  pairs: 150,
  queries: 300,
  answered: 300,
  before: ct(10, 0),
  after: ct(10, 0),
  skewNs: [100, 200, 300],
  ...over,
})

t.test('5.10+ counters: insert_failed are the drops, clashres the resolved ones', async t => {
  const v = probeVerdict([
    phase({ before: ct(10, 2), after: ct(30, 7), answered: 295 }),
    phase({ masquerade: true, before: ct(30, 7), after: ct(40, 9), answered: 298 }),
  ])
  t.equal(v.outcome, 'drops')
  t.same(v.figures, { pairs: 300, queries: 600, answered: 593, lost: 7, clashes: 37, dropped: 7, resolved: 30 })
  t.equal(v.phases?.[0]?.counter, 'clash_resolve')
  t.match(v.text, /^this kernel drops clashes: 7 of 37 clashes dropped in 300 split-CPU/)
})

t.test('resolves: clashes counted in clashres, none dropped', async t => {
  const v = probeVerdict([
    phase({ after: ct(150, 0) }),
    phase({ masquerade: true, before: ct(150, 0), after: ct(270, 0) }),
  ])
  t.equal(v.outcome, 'resolves')
  t.equal(v.reason, undefined)
  t.same(v.figures, { pairs: 300, queries: 600, answered: 600, lost: 0, clashes: 260, dropped: 0, resolved: 260 })
  t.match(v.text, /resolves clashes: 260 clashes resolved, none dropped/)
})

t.test('no clash at all: inconclusive, the CPUs never overlapped, with the median skew', async t => {
  const v = probeVerdict([phase({ skewNs: [5000, 7000, 900000] }), phase({ masquerade: true, skewNs: [7000] })])
  t.equal(v.outcome, 'inconclusive')
  t.equal(v.reason, 'no-overlap')
  t.equal(v.figures?.clashes, 0)
  t.match(v.text, /never overlapped \(sends 7 µs apart at the median\)/)
})

t.test('counters missing: inconclusive, whatever the answers say', async t => {
  for (const p of [
    phase({ before: undefined, answered: 200 }),
    phase({ after: undefined }),
    // A stat file without insert_failed: nothing to decide by.
    phase({ before: parseConntrackStats('entries found\n00000001 00000002\n') }),
  ]) {
    const v = probeVerdict([p])
    t.equal(v.outcome, 'inconclusive')
    t.equal(v.reason, 'counters-missing')
    t.equal(v.figures, undefined)
    t.match(v.text, /could not be read/)
  }
  t.equal(probeVerdict([]).reason, 'counters-missing', 'no phase ran')
})

t.test('before 5.10: insert_failed counts every clash, the unanswered queries are the drops', async t => {
  const f = phaseFigures(phase({ before: oldCt(3), after: oldCt(23), answered: 296 }))
  t.same(f && { clashes: f.clashes, dropped: f.dropped, resolved: f.resolved, lost: f.lost, counter: f.counter }, {
    clashes: 20,
    dropped: 4,
    resolved: 16,
    lost: 4,
    counter: 'insert_failed',
  })
  // Lost answers beyond the clashes (a slow server) are not drops of the kernel.
  const g = phaseFigures(phase({ before: oldCt(0), after: oldCt(2), answered: 290 }))
  t.equal(g?.dropped, 2)
  t.equal(g?.resolved, 0)
  t.equal(probeVerdict([phase({ before: oldCt(0), after: oldCt(9) })]).outcome, 'resolves', 'all answered: resolved')
})

t.test('32-bit per-CPU counters that wrap between the reads', async t => {
  const before = ct(0xffffffff, 0)
  const after = ct(4, 0)
  t.equal(phaseFigures(phase({ before, after }))?.resolved, 5)
})

t.test('not run: says why, changes nothing', async t => {
  const np = notRun('no-privilege', 'uid 65534 without CAP_SYS_ADMIN')
  t.same([np.outcome, np.reason, np.figures], ['inconclusive', 'no-privilege', undefined])
  t.match(np.text, /needs CAP_SYS_ADMIN.*nothing was changed/)
  t.match(notRun('one-cpu', 'CPU 0 only').text, /fewer than two CPUs to send from \(CPU 0 only\)/)
  t.match(notRun('failed', 'unshare: not found').text, /^probe failed: unshare: not found$/)
})
