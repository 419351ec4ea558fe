// src/check/items.ts: single items straight from probe results (runCheck's composition: test/check/run.ts).
import t from 'tap'
import { featureItems, metricsItem, queueItem, queueRange, tcItem } from '../../src/check/items.js'
import { cfg } from '../helpers/check.js'

t.test('queueRange and queueItem', async t => {
  t.same(queueRange(3, 2), [3, 4])
  t.same(queueRange(3, 0), [3], 'at least one queue')
  t.match(queueItem([], new Set(), cfg), { id: 'queue', status: 'ok', found: 'queue 0 free' })
  const bound = [{ queue: 0, portid: 4242 }] as never
  t.match(queueItem(bound, new Set([0]), cfg), { status: 'fail', found: /portid 4242 \(a dns-shaper seems to run/ })
  t.match(queueItem(new Error('EACCES'), new Set(), cfg), { status: 'warn', found: /EACCES/ })
})

t.test('metricsItem, featureItems, tcItem', async t => {
  t.match(metricsItem(undefined, cfg), { status: 'info' })
  t.match(metricsItem(true, cfg), { status: 'ok', found: `${cfg.metricsListen} free` })
  t.match(metricsItem(new Error('EADDRINUSE'), cfg), { status: 'fail', found: /EADDRINUSE/ })
  t.same(
    featureItems(new Error('no netns')).map(i => [i.id, i.status]),
    [['nfqueue', 'fail']],
  )
  t.same(
    featureItems({ nfqueue: true, xtBpf: new Error('no xt_bpf') }).map(i => [i.id, i.status]),
    [
      ['nfqueue', 'ok'],
      ['xt_bpf', 'warn'],
    ],
  )
  t.match(tcItem('qdisc netem 1: dev eth0 root\nqdisc prio 2: dev eth1 root\n'), {
    status: 'warn',
    found: 'netem on eth0, prio on eth1',
  })
  t.match(tcItem(new Error('no tc')), { status: 'info', found: 'cannot list qdiscs: no tc' })
})
