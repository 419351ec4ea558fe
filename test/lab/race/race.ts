import t from 'tap'
import {
  serviceNatRules,
  mangleQueueRules,
  parseShaperMetrics,
  daemonArgs,
  shaperLabel,
  raceMatrix,
  kernelMatrix,
  rowLabel,
  KERNEL_ROWS,
  RESOLV_OPTIONS,
  conntrackCountersDelta,
  clientArgv,
  SERVICE,
  tableHeader,
} from '../../../lab/race/race.js'

t.test('service NAT rules: kube-proxy shape, probabilities that give each endpoint a third', async t => {
  const r = serviceNatRules(4, ['203.0.113.53', '203.0.113.54', '203.0.113.55'])
  const lines = r.split('\n')
  t.ok(lines.includes(`-A PREROUTING -d ${SERVICE.ipv4}/32 -p udp --dport 53 -j DNSS-SVC`))
  t.match(lines[3], /--probability 0\.33333333333 -p udp -j DNAT --to-destination 203\.0\.113\.53:53$/)
  t.match(lines[4], /--probability 0\.50000000000 -p udp -j DNAT --to-destination 203\.0\.113\.54:53$/)
  t.equal(lines[5], '-A DNSS-SVC -p udp -j DNAT --to-destination 203.0.113.55:53', 'the last takes the rest')
  t.notMatch(r, /MASQUERADE/)
  const v6 = serviceNatRules(6, ['2001:db8:2::53'], { snat: true, serverIface: 'br-s' })
  t.match(v6, /--to-destination \[2001:db8:2::53\]:53/)
  t.match(v6, /-A POSTROUTING -o br-s -d 2001:db8:2::53 -p udp --dport 53 -j MASQUERADE/)
  t.match(
    mangleQueueRules(2),
    /^\*mangle\n-A PREROUTING -p udp --dport 53 -j NFQUEUE --queue-num 2 --queue-bypass\nCOMMIT/,
  )
})

t.test('daemon arguments per scenario', async t => {
  t.same(daemonArgs({ kind: 'raw', delayMs: 5, mode: 'pair' }, '198.51.100.1'), [
    'run',
    '--hooks',
    'prerouting',
    '--delay',
    '5',
    '--metrics-listen',
    '198.51.100.1:9363',
    '--mode',
    'pair',
  ])
  const mangle = daemonArgs({ kind: 'mangle', delayMs: 5 }, 'h')
  t.ok(mangle.includes('--rules') && mangle.includes('none'), 'mangle rows install their own rule')
  t.equal(mangle[mangle.indexOf('--mode') + 1], 'fixed', 'and hold for the delay, whatever the default mode')
  t.equal(
    shaperLabel({ kind: 'raw', delayMs: 0, mode: 'fixed', args: ['--kernel-filter', 'off'] }),
    'raw fixed 0 ms --kernel-filter off',
  )
  t.equal(shaperLabel({ kind: 'none' }), 'no shaper')
})

t.test('shaper counters from an exposition', async t => {
  const text = [
    'dns_shaper_packets_total{action="held",qtype="AAAA"} 7',
    'dns_shaper_packets_total{action="accepted",qtype="A"} 5',
    'dns_shaper_packets_total{action="accepted",qtype="none"} 1',
    'dns_shaper_packets_total{action="bypassed",qtype="none"} 2',
    'dns_shaper_pair_released_total 6',
    'dns_shaper_deadline_released_total 1',
    '# HELP dns_shaper_pair_evictions_total x',
    'dns_shaper_pair_evictions_total 0',
  ].join('\n')
  t.same(parseShaperMetrics(text), {
    held: 7,
    accepted: 6,
    pairReleased: 6,
    deadlineReleased: 1,
    pairEvictions: 0,
    bypassed: 2,
  })
})

t.test('matrix and clients', async t => {
  const quick = raceMatrix({ quick: true })
  t.ok(
    quick.every(r => r.client === 'split'),
    'quick: split client only',
  )
  t.ok(quick.some(r => r.shaper.kind === 'none') && quick.some(r => r.shaper.kind === 'mangle'), 'control rows present')
  const full = raceMatrix()
  for (const c of ['pair', 'gai-glibc', 'gai-musl'] as const) {
    t.ok(
      full.some(r => r.client === c && r.shaper.kind === 'raw' && r.shaper.mode === 'pair'),
      `pair mode shown on ${c}`,
    )
  }
  t.same(
    conntrackCountersDelta(
      { clashResolve: 10, insertFailed: 1, drop: 0 },
      { clashResolve: 15, insertFailed: 1, drop: 2 },
    ),
    { clashResolve: 5, insertFailed: 0, drop: 2 },
  )
  const argv = clientArgv('/bin/split', { client: 'split', family: 6, lookups: 10, threads: 1, maxSeconds: 5 })
  t.equal(argv[argv.indexOf('--server') + 1], SERVICE.ipv6)
  t.equal(argv[argv.indexOf('--count') + 1], '10')
})

t.test(
  'matrix: kube-proxy mode rows (no shaper, fixed, pair; split, glibc, musl; with and without masquerade)',
  async t => {
    const full = raceMatrix()
    const iptablesOnly = raceMatrix({ services: ['iptables'] })
    t.same(
      full.filter(r => (r.service ?? 'iptables') === 'iptables'),
      iptablesOnly,
      'the iptables rows are unchanged',
    )
    for (const service of ['nftables', 'ipvs'] as const) {
      const rows = full.filter(r => r.service === service)
      t.equal(rows.length, 18, `${service}: 3 shapers x 3 clients x masquerade on/off`)
      for (const client of ['split', 'gai-glibc', 'gai-musl'] as const)
        for (const snat of [false, true])
          for (const kind of ['none', 'fixed', 'pair'] as const)
            t.ok(
              rows.some(
                r =>
                  r.client === client &&
                  r.snat === snat &&
                  (kind === 'none' ? r.shaper.kind === 'none' : r.shaper.kind === 'raw' && r.shaper.mode === kind),
              ),
              `${service} ${client} snat=${snat} ${kind}`,
            )
    }
    t.ok(
      full.every(r => r.clash === undefined),
      'mode rows leave the clash handling as the kernel has it by default',
    )
    const pre = raceMatrix({ services: ['ipvs'], clash: 'pre56' })
    t.equal(pre.length, 18)
    t.ok(
      pre.every(r => r.service === 'ipvs' && r.clash === 'pre56'),
      '--clash pre56 asks the lab switch for every mode row',
    )
    t.equal(rowLabel(pre[0]!), 'no shaper, pre-5.6', 'an unlettered row names pre-5.6 handling')
    const quick = raceMatrix({ quick: true, services: ['nftables-map'] })
    t.equal(quick.length, 6, 'quick, one mode: split client only, 3 shapers x masquerade on/off')
    t.ok(quick.every(r => r.service === 'nftables-map' && r.client === 'split'))
  },
)

t.test('table: the service column', async t => {
  t.match(tableHeader(), /^shaper\s+client\s+service\s+fam/)
})

t.test('kernel matrix: rows a-f x (glibc, musl, split) x MASQUERADE off/on, IPv4, bounded', async t => {
  const m = kernelMatrix()
  t.equal(m.length, 6 * 3 * 2)
  t.same([...new Set(m.map(r => r.id))], ['a', 'b', 'c', 'd', 'e', 'f'])
  t.same(
    m.filter(r => r.id === 'a').map(r => `${r.client}/${r.snat}`),
    ['gai-glibc/false', 'gai-musl/false', 'split/false', 'gai-glibc/true', 'gai-musl/true', 'split/true'],
  )
  t.ok(
    m.every(r => r.family === 4 && r.maxSeconds === 12),
    'every row bounded in time as well as count',
  )
  t.same(
    m.filter(r => r.clash === 'stock').map(r => r.id),
    Array(6).fill('f'),
    'only (f) asks for stock clash handling',
  )
  t.same(KERNEL_ROWS.find(r => r.id === 'b')?.shaper, { kind: 'netem', placement: 'node-egress' })
  const q = kernelMatrix({ quick: true, splitLookups: 50, maxSeconds: 3 })
  t.equal(q.length, 12)
  t.ok(q.every(r => r.client === 'split' && r.lookups === 50 && r.maxSeconds === 3))
  t.equal(rowLabel({ id: 'f', shaper: { kind: 'none' }, clash: 'stock' }), '(f) no shaper, stock')
  t.equal(
    rowLabel({ id: 'b', shaper: { kind: 'netem', placement: 'node-egress' }, clash: 'pre56' }),
    '(b) netem node egress',
  )
  t.equal(
    rowLabel({ shaper: { kind: 'raw', delayMs: 5, mode: 'pair' } }),
    'raw pair (max 5 ms)',
    'plain matrix: no prefix',
  )
  const extra = kernelMatrix({ rows: ['a', 'g', 'h'] })
  t.same([...new Set(extra.map(r => r.id))], ['a', 'g', 'h'], 'extra rows only when named')
  t.same(extra.find(r => r.id === 'g')?.shaper, {
    kind: 'raw',
    delayMs: 5,
    mode: 'fixed',
    args: ['--kernel-filter', 'off'],
  })
  t.same([...RESOLV_OPTIONS], ['attempts:1', 'timeout:1'], 'a dropped query shows as a lookup over 1 s')
})
