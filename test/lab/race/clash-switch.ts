import t from 'tap'
import { applyClashPlan, LAB_SWITCH_PATH, nativelyPre56, planClashHandling } from '../../../lab/race/clash-switch.js'

t.test('kernel versions and native clash handling', async t => {
  t.equal(nativelyPre56('5.4.0-150-generic'), true, 'Ubuntu 20.04 drops')
  t.equal(nativelyPre56('4.18.0-553.el8_10.x86_64'), true, 'RHEL 8 drops')
  t.equal(nativelyPre56('5.6.0'), false)
  t.equal(nativelyPre56('6.18.44'), false)
  t.equal(nativelyPre56('x'), null)
})

t.test('plans: the switch when present, else the kernel as it is, else skip with a reason', async t => {
  t.same(planClashHandling('pre56', '5.10.262', true), { run: true, write: '1', note: 'lab switch lab_pre56_clash=1' })
  t.same(planClashHandling('stock', '5.10.262', true), {
    run: true,
    write: '0',
    note: 'lab switch lab_pre56_clash=0 (stock)',
  })
  t.same(planClashHandling('pre56', '5.4.0', false), { run: true, write: null, note: 'kernel 5.4.0 as it is' })
  t.same(planClashHandling('stock', '6.18.44', false), { run: true, write: null, note: 'kernel 6.18.44 as it is' })
  const p = planClashHandling('pre56', '6.18.44', false)
  t.equal(p.run, false)
  t.match(!p.run && p.reason, /resolves DNAT clashes \(5\.6\+\) and has no lab switch/)
  t.equal(planClashHandling('stock', '4.18.0', false).run, false)
  t.equal(planClashHandling('stock', '??', false).run, false)
})

t.test('applying a plan writes the switch and checks it took', async t => {
  const files = new Map<string, string>()
  const io = {
    exists: (p: string) => files.has(p),
    read: (p: string) => files.get(p) ?? '',
    // A bool module parameter reads back Y/N.
    write: (p: string, v: string) => void files.set(p, v === '1' ? 'Y\n' : 'N\n'),
  }
  t.equal(applyClashPlan({ run: true, write: '1', note: '' }, io), 'Y')
  t.equal(files.get(LAB_SWITCH_PATH), 'Y\n')
  t.equal(applyClashPlan({ run: true, write: '0', note: '' }, io), 'N')
  t.equal(applyClashPlan({ run: true, write: null, note: '' }, io), null, 'no switch: nothing written')
  const stuck = { ...io, write: () => undefined, read: () => 'N' }
  t.throws(() => applyClashPlan({ run: true, write: '1', note: '' }, stuck), /reads N after writing 1/)
})
