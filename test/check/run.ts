// src/check/run.ts (and the items it composes, src/check/items.ts): runCheck over fake probes.
import t from 'tap'
import { runCheck } from '../../src/check/run.js'
import { parseConntrackStats } from '../../src/kernel/procfs.js'
import { cfg, ct, fakes, byId, natOf } from '../helpers/check.js'
import { configWith } from '../helpers/config.js'
import type { ProbeResult } from '../../src/probe/run.js'

t.test('runCheck: ready node, modern kernel', async t => {
  const p = fakes()
  const r = await runCheck(cfg, p, { sampleSeconds: 2 })
  t.same(p.slept, [2000])
  t.equal(r.exitCode, 0)
  t.equal(r.ready, true)
  t.equal(r.verdict.need, 'optional')
  t.equal(r.verdict.line, 'optional: the kernel resolves clashes (10/s seen)')
  t.same(
    r.items.map(i => i.id),
    [
      'privileges',
      'kernel',
      'iptables',
      'nfqueue',
      'xt_bpf',
      'queue',
      'metrics',
      'conntrack',
      'dns-tracking',
      'shaper-rules',
      'tc',
      'dataplane',
    ],
  )
  t.ok(
    r.items.every(i => i.status === 'ok' || i.status === 'info'),
    'nothing to warn about',
  )
  t.match(
    byId(r, 'conntrack').found,
    /insert_failed 0\/s, drop 0\/s, clash_resolve 10\/s over 2 s \(this netns, from \/proc\/net\/stat\/nf_conntrack\), entries 16/,
  )
  t.match(r.kernel, { major: 6, minor: 18, patch: 44, clash: 'all' })
  t.match(r.conntrack, {
    loaded: true,
    entries: 16,
    sampleSeconds: 2,
    ratesPerSecond: { clashres: 10, clash_resolve: 10, insert_failed: 0 },
  })
  t.equal(byId(r, 'queue').found, 'queue 0 free')
})

t.test('runCheck: old kernel with drops, not sampled', async t => {
  const old = parseConntrackStats(
    'entries  searched found new invalid ignore delete delete_list insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart\n00000010  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000005 00000005 00000000 00000000  00000000 00000000 00000000 00000000\n',
  )
  const p = fakes({ kernelRelease: async () => '4.14.336', samples: [old] })
  const r = await runCheck(cfg, p, { sampleSeconds: 0 })
  t.same(p.slept, [])
  t.equal(r.verdict.need, 'recommended')
  t.match(r.verdict.line, /kernel 4\.14\.336 drops/)
  t.match(byId(r, 'conntrack'), {
    status: 'info',
    found:
      /insert_failed 5, drop 5, no clash counter \(totals of this netns, from \/proc\/net\/stat\/nf_conntrack; not sampled\)/,
  })
  t.equal(r.conntrack.loaded && r.conntrack.ratesPerSecond, undefined)
})

t.test('runCheck: insert_failed rising on 5.10+ is a warning and recommends shaping', async t => {
  const r = await runCheck(cfg, fakes({ samples: [ct(0, 0), ct(0, 4)] }), { sampleSeconds: 2 })
  t.match(byId(r, 'conntrack'), { status: 'warn', action: /5 s resolver timeouts/ })
  t.match(r.verdict.line, /^shaping recommended: insert_failed rising \(2\/s\)/)
  t.equal(r.exitCode, 0, 'a warning is not a failure')
})

t.test('runCheck: blockers', async t => {
  const p = fakes({
    selfStatus: async () => 'Uid:\t1000\t1000\t1000\t1000\nCapEff:\t0000000000000000\n',
    iptables: async () => new Error('no iptables binary found'),
    features: async () => ({ nfqueue: new Error('EPERM binding a queue'), xtBpf: new Error('xt_bpf: unknown match') }),
    nfqueueStats: async () => [
      { queue: 0, portid: 4242, waiting: 0, copyMode: 2, copyRange: 512, dropped: 0, userDropped: 0, idSequence: 9 },
    ],
    listen: async () =>
      Object.assign(new Error('listen EADDRINUSE: address already in use 127.0.0.1:9464'), { code: 'EADDRINUSE' }),
  })
  const r = await runCheck(cfg, p, { sampleSeconds: 1 })
  t.equal(r.exitCode, 1)
  t.equal(r.ready, false)
  t.same(
    r.items.filter(i => i.status === 'fail').map(i => i.id),
    ['privileges', 'iptables', 'nfqueue', 'queue', 'metrics'],
  )
  t.match(byId(r, 'privileges'), { found: 'uid 1000, no CAP_NET_ADMIN, no CAP_NET_RAW', action: /NET_ADMIN/ })
  t.match(byId(r, 'queue'), { found: 'bound: queue 0 by portid 4242', action: /PID/ })
  t.equal(byId(r, 'xt_bpf').status, 'warn')
  t.match(
    r.verdict.line,
    /^cannot run: privileges: .*; iptables: no iptables binary found; .*queue: bound: queue 0 by portid 4242; metrics: .*EADDRINUSE.* — optional/,
  )
})

t.test('runCheck: CAP_NET_RAW matters only for iptables-legacy with managed rules', async t => {
  const status = async () => 'Uid:\t0\t0\t0\t0\nCapEff:\t0000000000001000\n'
  const nft = await runCheck(cfg, fakes({ selfStatus: status }), { sampleSeconds: 0 })
  t.equal(byId(nft, 'privileges').status, 'warn')
  const legacy = await runCheck(
    cfg,
    fakes({ selfStatus: status, iptables: async () => ({ backend: 'legacy', reason: 'legacy tables in use' }) }),
    { sampleSeconds: 0 },
  )
  t.equal(byId(legacy, 'privileges').status, 'fail')
  t.equal(legacy.exitCode, 1)
  t.equal(byId(legacy, 'iptables').found, 'legacy backend (legacy tables in use)')
})

t.test('runCheck: --rules none tolerates missing iptables', async t => {
  const r = await runCheck(
    { ...cfg, rules: 'none', metricsListen: '' },
    fakes({ iptables: async () => new Error('not found') }),
    { sampleSeconds: 0 },
  )
  t.match(byId(r, 'iptables'), { status: 'info', action: /rules print/ })
  t.match(byId(r, 'metrics'), { status: 'info', found: /disabled/ })
  t.equal(r.exitCode, 0)
})

t.test('runCheck: probes that throw become items, not crashes', async t => {
  const boom = (m: string) => async (): Promise<never> => {
    throw new Error(m)
  }
  const r = await runCheck(
    configWith({ queues: 3 }, cfg),
    fakes({
      selfStatus: boom('ENOENT /proc/self/status'),
      kernelRelease: boom('uname failed'),
      features: boom('netns probe failed'),
      nfqueueStats: boom('EACCES'),
      conntrack: async () => {
        throw 'not an Error'
      },
      rawRules: async () => new Error('iptables-save: permission denied'),
      tcQdiscs: async () => new Error('tc: not found'),
    }),
    { sampleSeconds: 1 },
  )
  t.match(byId(r, 'privileges'), { status: 'warn', found: /ENOENT/ })
  t.match(byId(r, 'kernel'), { status: 'warn', found: /uname failed/ })
  t.match(byId(r, 'nfqueue'), { status: 'fail', found: /netns probe failed/ })
  t.match(byId(r, 'queue'), { status: 'warn', found: /EACCES/ })
  t.match(byId(r, 'conntrack'), { status: 'warn', found: /not an Error/ })
  t.match(byId(r, 'dns-tracking'), { status: 'info', found: /permission denied/ })
  t.equal(byId(r, 'shaper-rules'), undefined, 'no raw table: no statement about shaper rules')
  t.match(byId(r, 'tc'), { status: 'info', found: /not found/ })
  t.same(r.kernel, { release: 'unknown' })
  t.equal(r.verdict.need, 'unknown')
  t.equal(r.exitCode, 1)
})

t.test('runCheck: unrecognised release, conntrack absent, second sample missing', async t => {
  const r = await runCheck(cfg, fakes({ kernelRelease: async () => 'custom', samples: [undefined] }), {
    sampleSeconds: 1,
  })
  t.match(byId(r, 'kernel'), { status: 'warn', found: /unrecognised kernel release "custom"/ })
  t.match(byId(r, 'conntrack'), { status: 'info', found: /not loaded/ })
  t.match(r.verdict.line, /conntrack is not loaded/)
  t.match(r.conntrack, { loaded: false, source: 'none', sources: { netlink: { ok: false } } })
  const r2 = await runCheck(cfg, fakes({ samples: [ct(1, 1), undefined] }), { sampleSeconds: 1 })
  t.match(byId(r2, 'conntrack').found, /not sampled/, 'conntrack unloaded mid-sample: totals only')
})

t.test('runCheck: NOTRACK, live and stale shaper rules, tc', async t => {
  const raw = async () => `*raw
-A PREROUTING -d 169.254.20.10/32 -p udp -m udp --dport 53 -j NOTRACK
-A PREROUTING -p udp -m udp --dport 53 -m comment --comment "dns-shaper: prerouting" -j NFQUEUE --queue-num 0 --queue-bypass
COMMIT
`
  const bound = async () => [
    { queue: 0, portid: 77, waiting: 1, copyMode: 2, copyRange: 512, dropped: 0, userDropped: 0, idSequence: 5 },
  ]
  const live = await runCheck(
    cfg,
    fakes({ rawRules: raw, nfqueueStats: bound, tcQdiscs: async () => 'qdisc prio 1: dev eth0 root refcnt 2\n' }),
    { sampleSeconds: 0 },
  )
  t.match(byId(live, 'queue'), { status: 'fail', found: /dns-shaper seems to run already/ })
  t.match(byId(live, 'shaper-rules'), {
    status: 'info',
    found: '1 dns-shaper rule for queue 0, bound: a dns-shaper is running',
  })
  t.match(byId(live, 'dns-tracking'), {
    status: 'info',
    found: 'udp/53 exempt from conntrack to 169.254.20.10/32 (1 NOTRACK rule)',
  })
  t.match(byId(live, 'tc'), { status: 'info', found: /prio qdisc on eth0/ })
  t.match(live.verdict.line, /— not needed: DNS is not tracked \(to 169\.254\.20\.10\/32\)$/)

  const stale = await runCheck(
    configWith({ queue: 5, queues: 2 }, cfg),
    fakes({
      rawRules: raw,
      tcQdiscs: async () => 'qdisc prio 1: dev eth0 root\nqdisc netem 30: dev eth0 parent 1:3 delay 4ms\n',
    }),
    { sampleSeconds: 0 },
  )
  t.match(byId(stale, 'shaper-rules'), {
    status: 'warn',
    found: /stale .*queue-bypass/,
    action: /replaces them at start/,
  })
  t.equal(byId(stale, 'queue').found, 'queues 5-6 free')
  t.match(byId(stale, 'tc'), { status: 'warn', found: 'netem on eth0, prio on eth0' })
  const stale2 = await runCheck(
    { ...cfg, rules: 'none' },
    fakes({
      rawRules: async () =>
        '-A OUTPUT -p udp -m comment --comment "dns-shaper: a" -j NFQUEUE --queue-num 1\n-A OUTPUT -p udp -m comment --comment "dns-shaper: b" -j NFQUEUE --queue-num 2\n',
      tcQdiscs: async () => 'qdisc netem 1: dev veth0 root delay 1ms\n',
    }),
    { sampleSeconds: 0 },
  )
  t.match(byId(stale2, 'shaper-rules'), { found: /2 stale dns-shaper rules for queues 1-2/, action: /rules remove/ })
  t.equal(byId(stale2, 'tc').found, 'netem on veth0')
})

t.test('dns-service: says when the shaped address is a node-local cache (not tracked)', async t => {
  const auto = { resolvConf: '/etc/resolv.conf', ignored: [] }
  // Nothing configured: any destination, no item.
  t.notOk(byId(await runCheck(cfg, fakes(), { sampleSeconds: 0 }), 'dns-service'))

  // The kube-dns ClusterIP, tracked: fine.
  const tracked = await runCheck({ ...configWith({ dnsIp: ['192.0.2.10/32'] }, cfg), dnsIpAuto: auto }, fakes(), {
    sampleSeconds: 0,
  })
  t.match(byId(tracked, 'dns-service'), {
    status: 'ok',
    found: 'shaping DNS to 192.0.2.10/32 (auto, from /etc/resolv.conf): tracked, not a node-local cache',
  })

  // node-local-dns in IPVS mode: resolv.conf names 169.254.20.10, bound on nodelocaldns, NOTRACKed.
  const nodeLocal = fakes({
    localAddresses: async () => [
      { address: '127.0.0.1', ifname: 'lo' },
      { address: '169.254.20.10', ifname: 'nodelocaldns' },
    ],
    rawRules: async () =>
      '*raw\n-A PREROUTING -d 169.254.20.10/32 -p udp -m udp --dport 53 -j NOTRACK\n-A OUTPUT -d 169.254.20.10/32 -p udp -m udp --dport 53 -j NOTRACK\nCOMMIT\n',
  })
  const nl = await runCheck({ ...configWith({ dnsIp: ['169.254.20.10/32'] }, cfg), dnsIpAuto: auto }, nodeLocal, {
    sampleSeconds: 0,
  })
  const item = byId(nl, 'dns-service')
  t.equal(item.status, 'warn', 'every shaped address is a node-local cache')
  t.match(item.found, /169\.254\.20\.10 \(link-local, bound on nodelocaldns, NOTRACK: not tracked by conntrack\)/)
  t.match(item.found, /auto, from \/etc\/resolv\.conf/)
  t.match(item.action, /deploy\/variants\/node-local-dns/)

  // node-local-dns in iptables mode: the ClusterIP itself bound on nodelocaldns (no NOTRACK seen, e.g.
  // raw table unreadable) is still recognised by the local address.
  const clusterIpLocal = fakes({
    localAddresses: async () => [{ address: '192.0.2.10', ifname: 'nodelocaldns' }],
    rawRules: async () => {
      throw new Error('iptables-save: permission denied')
    },
  })
  const mixed = await runCheck(
    { ...configWith({ dnsIp: ['192.0.2.10/32', '2001:db8::a/128'] }, cfg) },
    clusterIpLocal,
    {
      sampleSeconds: 0,
    },
  )
  t.match(byId(mixed, 'dns-service'), {
    status: 'info',
    found: /node-local cache: 192\.0\.2\.10 \(bound on nodelocaldns\)$/,
  })
  t.notMatch(byId(mixed, 'dns-service').found, /auto/, 'explicit dns-ip: not said to come from resolv.conf')

  // A link-local IPv6 resolver; and a NOTRACK rule for any destination covers every address.
  const v6 = await runCheck(
    { ...configWith({ dnsIp: ['fe80::53/128'] }, cfg) },
    fakes({
      localAddresses: async () => {
        throw new Error('no interfaces')
      },
    }),
    { sampleSeconds: 0 },
  )
  t.match(byId(v6, 'dns-service').found, /fe80::53 \(link-local\)/)
  const anyNotrack = await runCheck(
    { ...configWith({ dnsIp: ['192.0.2.10/32'] }, cfg) },
    fakes({ rawRules: async () => '*raw\n-A PREROUTING -p udp -m udp --dport 53 -j NOTRACK\nCOMMIT\n' }),
    { sampleSeconds: 0 },
  )
  t.match(byId(anyNotrack, 'dns-service'), { status: 'warn', found: /192\.0\.2\.10 \(NOTRACK/ })
})
t.test(
  'runCheck: an eBPF-only service dataplane makes shaping not needed, with kube-proxy beside it shaping stays',
  async t => {
    const cilium = {
      iptablesNat: natOf('*nat\n:CILIUM_PRE_nat - [0:0]\nCOMMIT\n'),
      nftTables: '',
      links: '3: cilium_net@cilium_host: <UP>\n4: cilium_host@cilium_net: <UP>\n',
      ipvs: null,
      bpf: ['tc', 'tc/globals', 'tc/globals/cilium_lb4_services_v2', 'tc/globals/cilium_lb4_reverse_sk'],
    }
    const r = await runCheck(cfg, fakes({ dataplane: async () => cilium }), { sampleSeconds: 0 })
    t.equal(r.verdict.need, 'not-needed')
    t.match(r.verdict.line, /^not needed: Cilium kube-proxy replacement translates services in eBPF before netfilter: /)
    t.match(r.dataplanes, { shaping: 'inert', found: [{ kind: 'cilium', shaping: 'inert' }] })
    t.equal(r.exitCode, 0, 'inert is not a problem')

    const beside = await runCheck(
      cfg,
      fakes({ dataplane: async () => ({ ...cilium, iptablesNat: natOf('*nat\n:KUBE-SVC-A - [0:0]\nCOMMIT\n') }) }),
      { sampleSeconds: 0 },
    )
    t.equal(beside.verdict.need, 'optional', 'kube-proxy still DNATs some traffic: the kernel decides again')
    t.same(
      beside.dataplanes?.found.map(d => d.kind),
      ['cilium', 'kube-proxy-iptables'],
    )

    const failing = await runCheck(
      cfg,
      fakes({
        dataplane: async () => {
          throw new Error('boom')
        },
      }),
      { sampleSeconds: 0 },
    )
    t.equal(failing.dataplanes, undefined)
    t.match(byId(failing, 'dataplane'), { status: 'info', found: /boom/ })
  },
)

/** /proc/self/status of a process with only the DaemonSet's capabilities (NET_ADMIN 12, NET_RAW 13). */
const POD_STATUS = `Uid:\t0\t0\t0\t0\nCapEff:\t${((1n << 12n) | (1n << 13n)).toString(16).padStart(16, '0')}\n`
/** What `dns-shaper rules print` installs: the jump tagged, the NFQUEUE rule in the chain untagged. */
const RULES_LIVE =
  '*raw\n:DNS-SHAPER - [0:0]\n' +
  '-A DNS-SHAPER -d 203.0.113.53/32 -p udp -m udp --dport 53 -m bpf --bytecode "4,40 0 0 6,6 0 0 65535" -j NFQUEUE --queue-num 0 --queue-bypass\n' +
  '-A PREROUTING -m comment --comment "dns-shaper: shape DNS (prerouting)" -j DNS-SHAPER\nCOMMIT\n'
const DAEMON_ARGV = [
  '/usr/local/bin/node',
  '/usr/local/bin/dns-shaper',
  'run',
  '--metrics-listen',
  '[198.51.100.7]:9363',
]

/** The pod's view: the daemon (pid 1) holds queue 0 and the metrics port; no CAP_SYS_ADMIN. */
function inPod(over: Parameters<typeof fakes>[0] = {}) {
  const asked: string[] = []
  const p = fakes({
    selfStatus: async () => POD_STATUS,
    features: async () => {
      const { NotProbed } = await import('../../src/check/probes.js')
      const e = new NotProbed(
        'not probed: creating the throwaway network namespace the probe uses needs CAP_SYS_ADMIN, which this process lacks',
      )
      return { nfqueue: e, xtBpf: e }
    },
    nfqueueStats: async () => [
      { queue: 0, portid: 1, waiting: 0, copyMode: 2, copyRange: 512, dropped: 0, userDropped: 0, idSequence: 9 },
    ],
    rawRules: async () => RULES_LIVE,
    listen: async () => Object.assign(new Error('listen EADDRINUSE: address already in use'), { code: 'EADDRINUSE' }),
    daemons: async () => [{ pid: 1, argv: DAEMON_ARGV }],
    httpGet: async (hostPort, path) => {
      asked.push(`${hostPort}${path}`)
      return { status: 200, body: 'ok: data plane running, queue 0 bound' }
    },
    ...over,
  })
  return { p, asked }
}

t.test(
  'runCheck inside the running pod: ready, the daemon own items in use by it, the unprobed said plainly',
  async t => {
    const { p, asked } = inPod()
    const r = await runCheck({ ...cfg, metricsListen: '127.0.0.1:9363' }, p, { sampleSeconds: 0 })
    t.equal(r.exitCode, 0, r.verdict.line)
    t.notMatch(r.verdict.line, /cannot run/)
    t.same(asked, ['[198.51.100.7]:9363/healthz'], "the daemon's own listen address, from its argv")
    t.match(byId(r, 'queue'), {
      status: 'ok',
      found: /^queue 0 in use by the running dns-shaper \(its pid 1 is the queue's owner\)$/,
    })
    t.match(byId(r, 'metrics'), {
      status: 'ok',
      found: /^\[198\.51\.100\.7\]:9363 in use by the running dns-shaper \(pid 1, \/healthz 200/,
    })
    t.match(byId(r, 'nfqueue'), { status: 'ok', found: /^in use by the running dns-shaper .*needs CAP_SYS_ADMIN/ })
    t.match(byId(r, 'xt_bpf'), {
      status: 'info',
      found: /not probed: .*CAP_SYS_ADMIN/,
      action: /kubectl debug node\/NODE --profile=sysadmin/,
    })
    t.notMatch(JSON.stringify(r.items), /modprobe/, 'no advice to load modules that are not missing')
    t.match(byId(r, 'shaper-rules'), {
      status: 'info',
      found: /^2 dns-shaper rules for queue 0, bound: a dns-shaper is running$/,
    })
    t.match(r.daemon, { pid: 1, listen: '[198.51.100.7]:9363', healthz: { status: 200 } })
  },
)

t.test('runCheck in a pod without a healthy daemon: the busy queue still fails, the unprobed warns', async t => {
  // Another program (kindnet's dnscache, say) holds queue 0; no dns-shaper runs.
  const other = inPod({ daemons: async () => [] })
  const r = await runCheck(cfg, other.p, { sampleSeconds: 0 })
  t.equal(r.exitCode, 1)
  t.match(byId(r, 'queue'), { status: 'fail', found: /bound: queue 0 by portid 1/ })
  t.match(byId(r, 'nfqueue'), { status: 'warn', found: /not probed/, action: /as root/ })
  t.equal(r.daemon, null)
  // A dns-shaper process that does not answer and does not own the queue is not taken on trust.
  const stuck = inPod({
    daemons: async () => [{ pid: 4242, argv: DAEMON_ARGV }],
    httpGet: async () => {
      throw new Error('connect ECONNREFUSED')
    },
  })
  const s = await runCheck(cfg, stuck.p, { sampleSeconds: 0 })
  t.match(byId(s, 'queue'), { status: 'fail' })
  t.match(byId(s, 'nfqueue'), { status: 'warn' })
  t.match(s.daemon, { pid: 4242, listen: null, healthz: null })
})

t.test('runCheck beside a daemon that answers 503: its port, not a busy one; a warning, not a blocker', async t => {
  const { p } = inPod({ httpGet: async () => ({ status: 503, body: 'not ok: data-plane thread died' }) })
  const r = await runCheck(cfg, p, { sampleSeconds: 0 })
  t.match(byId(r, 'metrics'), {
    status: 'warn',
    found: /in use by the running dns-shaper \(pid 1, \/healthz 503: not ok: data-plane thread died\)/,
    action: /log/,
  })
  t.match(byId(r, 'queue'), { status: 'ok', found: /its pid 1 is the queue's owner/ }, 'it still owns the queue')
  t.match(
    byId(r, 'nfqueue'),
    { status: 'warn', found: /not probed/ },
    'an unhealthy daemon is no evidence NFQUEUE works',
  )
})

t.test('runCheck --probe: the probe item, its figures in the report, and the verdict follows it', async t => {
  let runs = 0
  const measured: ProbeResult = {
    release: '6.18.44-fc-v769',
    elapsedSeconds: 2.5,
    rules: 'iptables',
    cpus: [0, 1],
    verdict: {
      outcome: 'drops',
      figures: { pairs: 300, queries: 600, answered: 590, lost: 10, clashes: 200, dropped: 10, resolved: 190 },
      text: 'this kernel drops clashes: 10 of 200 clashes dropped',
    },
  }
  const p = fakes({
    raceProbe: async () => {
      runs++
      return measured
    },
  })
  const without = await runCheck(cfg, p, { sampleSeconds: 0 })
  t.equal(runs, 0, 'no probe unless asked for')
  t.equal(without.probe, undefined)
  t.notOk(byId(without, 'probe'))

  const r = await runCheck(cfg, p, { sampleSeconds: 0, probe: true })
  t.equal(runs, 1)
  t.same(r.items.map(i => i.id).slice(0, 3), ['privileges', 'kernel', 'probe'])
  t.match(byId(r, 'probe'), { status: 'warn', found: /drops clashes.*\(kernel 6\.18\.44-fc-v769, 2\.5 s\)/ })
  t.match(byId(r, 'probe')?.action, /run dns-shaper on this node/)
  t.same((r.probe as ProbeResult).verdict.figures, measured.verdict.figures)
  t.equal(r.verdict.need, 'recommended', '6.18 reads as "resolves", the probe says drops')
  t.equal(r.exitCode, 0, 'a node that needs shaping can still run it')

  const failing = await runCheck(cfg, fakes({ raceProbe: () => Promise.reject(new Error('unshare: not found')) }), {
    sampleSeconds: 0,
    probe: true,
  })
  t.match(byId(failing, 'probe'), { status: 'warn', found: 'probe failed: unshare: not found' })
  t.same(failing.probe, { error: 'unshare: not found' })
  t.equal(failing.verdict.need, 'optional', 'no probe figures: the version table decides')
})
