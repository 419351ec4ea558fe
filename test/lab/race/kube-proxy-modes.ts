import t from 'tap'
import {
  applyServiceMode,
  ipvsAvailable,
  deleteKubeProxyNftRules,
  ipvsAdmArgv,
  ipvsNatRules,
  kubeProxyNftRules,
  type LabService,
  type ServiceSpec,
} from '../../../lab/race/kube-proxy-modes.js'
import type { Netns } from '../../../harness/netns.js'

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

t.test('IPVS mode nat table: masquerade only, never a DNAT', async t => {
  t.equal(ipvsNatRules(['203.0.113.53'], { snat: false, serverIface: 'br-s' }), '*nat\nCOMMIT\n')
  t.equal(
    ipvsNatRules(['203.0.113.53'], { snat: true, serverIface: 'br-s' }),
    '*nat\n-A POSTROUTING -o br-s -d 203.0.113.53 -p udp --dport 53 -j MASQUERADE\nCOMMIT\n',
  )
})

/** A router that records what would run in it; every command succeeds. */
function fakeRouter(): { router: Netns; log: string[] } {
  const log: string[] = []
  const ok = async (argv: readonly string[], opts: { input?: string } = {}) => {
    log.push(argv.join(' ') + (opts.input ? ` <<${opts.input}` : ''))
    return { argv: [...argv], stdout: '', stderr: '', code: 0, signal: null, timedOut: false }
  }
  const router = {
    exec: ok,
    execOk: ok,
    sysctl: async (k: string, v: string | number) => void log.push(`sysctl ${k}=${v}`),
  } as unknown as Netns
  return { router, log }
}

t.test('switching modes: exactly one place translates the service', async t => {
  const { router, log } = fakeRouter()
  const lab: LabService = {
    router,
    service: { ipv4: '192.0.2.10', ipv6: '2001:db8:ffff::10' },
    endpoints: { ipv4: ['203.0.113.53', '203.0.113.54'], ipv6: ['2001:db8:2::53', '2001:db8:2::54'] },
    serverIface: 'br-s',
  }
  const step = async (from: Parameters<typeof applyServiceMode>[1], to: Parameters<typeof applyServiceMode>[2]) => {
    log.length = 0
    await applyServiceMode(lab, from, to, false)
    return log.join('\n')
  }
  let l = await step(undefined, 'iptables')
  t.match(l, /iptables-restore <<\*nat\n:DNSS-SVC/, 'iptables mode: DNAT in the nat table')
  t.match(l, /delete table ip kube-proxy/, 'a first apply clears any kube-proxy table')
  t.notMatch(l, /ipvsadm/, 'IPVS untouched when it was not in use (ipvsadm would load ip_vs)')
  l = await step('iptables', 'nftables')
  t.match(l, /iptables-restore <<\*nat\nCOMMIT/, 'nftables mode: iptables nat emptied')
  t.match(l, /nft -f - <<add table ip kube-proxy\n.*numgen random mod 2 vmap/s)
  t.match(l, /table ip6 kube-proxy \{/)
  l = await step('nftables', 'nftables-map')
  t.match(l, /dnat to numgen random mod 2 map/)
  l = await step('nftables-map', 'ipvs')
  t.match(
    l,
    /nft -f - <<add table ip kube-proxy\ndelete table ip kube-proxy\nadd table ip6 kube-proxy\ndelete table ip6 kube-proxy\n$/m,
  )
  t.match(l, /sysctl net\.ipv4\.vs\.conntrack=1/)
  t.match(l, /ipvsadm -A -u 192\.0\.2\.10:53 -s rr/)
  t.match(l, /ipvsadm -A -u \[2001:db8:ffff::10\]:53 -s rr/)
  t.notMatch(l, /DNAT/, 'no iptables DNAT in IPVS mode')
  l = await step('ipvs', 'iptables')
  t.match(l, /ipvsadm -C/, 'leaving IPVS clears it')
  t.match(l, /:DNSS-SVC/)
})

t.test('ipvsAvailable: a kernel without ip_vs is told apart from a missing ipvsadm', async t => {
  const answer = (code: number, stderr: string) =>
    ({
      exec: async () => ({ argv: [], stdout: '', stderr, code, signal: null, timedOut: false }),
    }) as unknown as Netns
  // What this host prints: ipvsadm runs modprobe itself, and modprobe says "not found".
  const noKernel = await ipvsAvailable(
    answer(
      2,
      "modprobe: FATAL: Module ip_vs not found in directory /lib/modules/6.18.44\nCan't initialize ipvs: Protocol not available\nAre you sure that IP Virtual Server is built in the kernel or as module?\n",
    ),
  )
  t.equal(
    noKernel,
    "this kernel has no IPVS (`modprobe ip_vs` fails and it is not built in): Can't initialize ipvs: Protocol not available",
  )
  t.equal(
    await ipvsAvailable(answer(255, 'exec of "ipvsadm" failed: No such file or directory\n')),
    'ipvsadm is not installed (apt-get install ipvsadm)',
  )
  t.equal(await ipvsAvailable(answer(0, '')), true)
})
