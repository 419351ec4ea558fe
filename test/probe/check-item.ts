// src/probe/check-item.ts: each probe outcome as a check row, with what to do.
import t from 'tap'
import { probeItem } from '../../src/probe/check-item.js'
import { notRun, probeVerdict } from '../../src/probe/verdict.js'
import type { ProbeResult } from '../../src/probe/run.js'
import { ct } from '../helpers/check.js'

const result = (verdict: ProbeResult['verdict']): ProbeResult => ({ verdict, release: '5.10.262', elapsedSeconds: 9.5 })
const phase = (before: number, after: number, failedAfter = 0) => ({
  masquerade: false,
  pairs: 100,
  queries: 200,
  answered: 200 - failedAfter,
  before: ct(before, 0),
  after: ct(after, failedAfter),
  skewNs: [100],
})

t.test('every outcome: status, finding, action', async t => {
  const rows: [string, ProbeResult['verdict'], string, RegExp, RegExp][] = [
    [
      'drops',
      probeVerdict([phase(0, 40, 4)]),
      'warn',
      /drops clashes.*\(kernel 5\.10\.262, 9\.5 s\)$/,
      /run dns-shaper on this node/,
    ],
    ['resolves', probeVerdict([phase(0, 40)]), 'ok', /resolves clashes/, /^$/],
    ['no overlap', probeVerdict([phase(0, 0)]), 'info', /never overlapped/, /more pairs/],
    ['counters missing', probeVerdict([]), 'warn', /could not be read/, /nf_conntrack_netlink/],
    ['no privilege', notRun('no-privilege', 'uid 1000'), 'warn', /needs CAP_SYS_ADMIN/, /CAP_SYS_ADMIN/],
    ['one CPU', notRun('one-cpu', 'CPU 0 only'), 'info', /fewer than two CPUs/, /two CPUs/],
    ['failed', notRun('failed', 'boom'), 'warn', /^probe failed: boom$/, /dns-shaper-netns/],
  ]
  for (const [name, v, status, found, action] of rows) {
    const i = probeItem(result(v))
    t.equal(i.id, 'probe')
    t.equal(i.status, status, name)
    t.match(i.found, found, name)
    t.match(i.action, action, name)
  }
  t.match(probeItem(new Error('spawn failed')), { status: 'warn', found: 'probe failed: spawn failed' })
})
