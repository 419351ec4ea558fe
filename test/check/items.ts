// src/check/items.ts: single items straight from probe results (runCheck's composition: test/check/run.ts).
import t from 'tap'
import { dataplaneItems, featureItems, metricsItem, queueItem, queueRange, tcItem } from '../../src/check/items.js'
import { cfg, natOf } from '../helpers/check.js'

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

t.test('dataplaneItems: a row per dataplane with what shaping does and why, and rows for the rest', async t => {
  const none = { iptablesNat: natOf(''), nftTables: '', links: '', ipvs: null, bpf: [] }
  const one = dataplaneItems({ ...none, nftTables: 'table ip kube-proxy\n' })
  t.same(
    one.items.map(i => [i.id, i.status]),
    [['dataplane', 'ok']],
  )
  t.match(one.items[0], { found: 'kube-proxy nftables mode (nft table ip kube-proxy)', action: /^shaping useful: / })
  t.equal(one.report?.shaping, 'useful')

  const empty = dataplaneItems(none)
  t.match(empty.items, [{ status: 'info', found: /^no service dataplane detected/, action: /hostNetwork/ }])

  const both = dataplaneItems({
    ...none,
    iptablesNat: natOf('*nat\n:KUBE-SVC-A - [0:0]\nCOMMIT\n'),
    links: '4: cilium_host@cilium_net: <UP>\n',
    bpf: new Error('bpffs is not mounted at /sys/fs/bpf'),
  })
  t.same(
    both.items.map(i => i.status),
    ['info', 'ok', 'info', 'info'],
    'Cilium (inert), kube-proxy (useful), the combination, what could not be read',
  )
  t.match(both.items[0], {
    found: /^Cilium eBPF service load balancing \(beside kube-proxy\) \(link cilium_host\)/,
    action: /^shaping inert: .*cgroup connect\/sendmsg/,
  })
  t.match(both.items[2], { found: /useful for that traffic only/ })
  t.match(both.items[3], { found: 'could not read: bpffs: bpffs is not mounted at /sys/fs/bpf' })

  const failed = dataplaneItems(new Error('boom'))
  t.same(failed.report, undefined)
  t.match(failed.items, [{ status: 'info', found: 'cannot probe the service dataplane: boom' }])
})
