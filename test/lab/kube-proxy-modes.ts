import t from 'tap'
import {
  deleteKubeProxyNftRules,
  ipvsAdmArgv,
  kubeProxyNftRules,
  type ServiceSpec,
} from '../../lab/src/kube-proxy-modes.js'

const v4: ServiceSpec = {
  family: 4,
  service: '192.0.2.10',
  endpoints: ['203.0.113.53', '203.0.113.54', '203.0.113.55'],
  snat: false,
}
const v6: ServiceSpec = {
  family: 6,
  service: '2001:db8:ffff::10',
  endpoints: ['2001:db8:2::53', '2001:db8:2::54'],
  snat: true,
}

t.test('nftables mode, kube-proxy style: dstnat chain, service map, numgen vmap to endpoint chains', async t => {
  const r = kubeProxyNftRules(v4)
  t.match(r, /^add table ip kube-proxy\ndelete table ip kube-proxy\ntable ip kube-proxy \{\n/, 'replaces the table')
  t.match(
    r,
    /chain nat-prerouting \{\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\tjump services\n/,
  )
  t.match(r, /type nat hook output priority -100;/)
  t.match(r, /type nat hook postrouting priority srcnat;/)
  t.match(r, /elements = \{ 192\.0\.2\.10 \. udp \. 53 : goto service-\S+ \}/)
  t.match(r, /\t\tip daddr \. meta l4proto \. th dport vmap @service-ips\n/)
  t.match(r, /numgen random mod 3 vmap \{ 0 : goto (endpoint-\S+), 1 : goto endpoint-\S+, 2 : goto endpoint-\S+ \}/)
  for (const a of v4.endpoints) t.match(r, new RegExp(`meta l4proto udp dnat to ${a.replace(/\./g, '\\.')}:53\n`))
  t.notMatch(r, /daddr 192\.0\.2\.10 udp dport 53 jump mark-for-masquerade/, 'no masquerade mark without snat')
  t.equal(r.match(/ip saddr \S+ jump mark-for-masquerade/g)?.length, 3, 'hairpin mark per endpoint, as kube-proxy')
})

t.test('nftables mode, numgen map style, IPv6 with masquerade', async t => {
  const r = kubeProxyNftRules(v6, 'numgen-map')
  t.match(r, /^add table ip6 kube-proxy\n/)
  t.match(r, /type ipv6_addr \. inet_proto \. inet_service : verdict/)
  t.match(r, /\t\tip6 daddr 2001:db8:ffff::10 udp dport 53 jump mark-for-masquerade\n/, 'masquerade-all mark')
  t.match(r, /meta l4proto udp dnat to numgen random mod 2 map \{ 0 : 2001:db8:2::53, 1 : 2001:db8:2::54 \}\n/)
  t.notMatch(r, /chain endpoint-/, 'no endpoint chains in the one-statement form')
  t.match(r, /masquerade fully-random/)
})

t.test('delete is idempotent (add first)', async t => {
  t.equal(deleteKubeProxyNftRules(6), 'add table ip6 kube-proxy\ndelete table ip6 kube-proxy\n')
})

t.test('IPVS: one UDP virtual service, round robin, NAT forwarding per endpoint', async t => {
  t.same(ipvsAdmArgv(v4), [
    ['ipvsadm', '-A', '-u', '192.0.2.10:53', '-s', 'rr'],
    ['ipvsadm', '-a', '-u', '192.0.2.10:53', '-r', '203.0.113.53:53', '-m', '-w', '1'],
    ['ipvsadm', '-a', '-u', '192.0.2.10:53', '-r', '203.0.113.54:53', '-m', '-w', '1'],
    ['ipvsadm', '-a', '-u', '192.0.2.10:53', '-r', '203.0.113.55:53', '-m', '-w', '1'],
  ])
  t.same(ipvsAdmArgv(v6)[1], [
    'ipvsadm',
    '-a',
    '-u',
    '[2001:db8:ffff::10]:53',
    '-r',
    '[2001:db8:2::53]:53',
    '-m',
    '-w',
    '1',
  ])
})
