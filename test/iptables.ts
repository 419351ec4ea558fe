import t from 'tap'
import type { Config } from '../src/config-types.js'
import type { ExecOptions, ExecResult, Runner } from '../src/exec.js'
import { ConfigError, IptablesError } from '../src/errors.js'
import {
  CHAIN,
  RuleManager,
  compareTable,
  filterMatches,
  formatIpv6,
  isMissingMatch,
  isValidInterface,
  jumpComment,
  ownedJumps,
  parseCidr,
  parseSave,
  planRules,
  queuedQtypes,
  renderInstall,
  renderRemove,
  renderRestore,
  splitArgs,
  validateRuleConfig,
  type BackendDecision,
} from '../src/iptables.js'
import { DEFAULTS } from '../src/config.js'
import { buildFilter, bytecodeText } from '../src/policy/bpf.js'

/** The exact-text tests below predate the kernel filter: they pin it off unless a test sets it. */
function cfg(over: Partial<Config> = {}): Config {
  return { ...DEFAULTS, mode: 'fixed', kernelFilter: 'off', ...over }
}

const J_PRE = '-A PREROUTING ! -i lo -m comment --comment "dns-shaper: shape DNS (prerouting)" -j DNS-SHAPER'
const J_PRE_ONLY = '-A PREROUTING -m comment --comment "dns-shaper: shape DNS (prerouting)" -j DNS-SHAPER'
const J_OUT = '-A OUTPUT -m comment --comment "dns-shaper: shape DNS (output)" -j DNS-SHAPER'
const H4 = '# dns-shaper IPv4 rules: apply with iptables-restore --noflush (nft or legacy variant)\n'
const H6 = '# dns-shaper IPv6 rules: apply with ip6tables-restore --noflush (nft or legacy variant)\n'

// ---------------------------------------------------------------------------------------------
t.test('parseCidr normalises as iptables-save prints', async t => {
  t.same(parseCidr('198.51.100.10'), { family: 'ipv4', text: '198.51.100.10/32' })
  t.same(parseCidr('203.0.113.77/24'), { family: 'ipv4', text: '203.0.113.0/24' })
  t.same(parseCidr('192.0.2.255/31'), { family: 'ipv4', text: '192.0.2.254/31' })
  t.same(parseCidr('0.0.0.0/0'), { family: 'ipv4', text: '0.0.0.0/0' })
  t.same(parseCidr('2001:DB8:0:0:0:0:0:53'), { family: 'ipv6', text: '2001:db8::53/128' })
  t.same(parseCidr('2001:db8::1/32'), { family: 'ipv6', text: '2001:db8::/32' })
  t.same(parseCidr('2001:db8:1:2:3:4:5:6/127'), { family: 'ipv6', text: '2001:db8:1:2:3:4:5:6/127' })
  t.same(
    parseCidr('2001:db8:0:1:0:0:1:0'),
    { family: 'ipv6', text: '2001:db8:0:1::1:0/128' },
    'single zero group not compressed',
  )
  t.same(parseCidr('::ffff:192.0.2.1'), { family: 'ipv6', text: '::ffff:192.0.2.1/128' })
  t.same(parseCidr('::/0'), { family: 'ipv6', text: '::/0' })
  t.same(parseCidr('::1'), { family: 'ipv6', text: '::1/128' })
  t.same(parseCidr('fe80::/10'), { family: 'ipv6', text: 'fe80::/10' })
  for (const bad of [
    '',
    '198.51.100.1/33',
    '198.51.100.1/',
    '198.51.100.1/024',
    '198.51.100.1/ 24',
    '198.51.100.1/24/1',
    '198.51.100.256',
    '198.51.100.1;reboot',
    '$(id)',
    '2001:db8::/129',
    'fe80::1%eth0',
    'example.com',
    '1.2.3.4 ',
  ]) {
    t.equal(parseCidr(bad), undefined, JSON.stringify(bad))
  }
})

t.test('formatIpv6 follows inet_ntop', async t => {
  const b = (...words: number[]): number[] => words.flatMap(w => [w >> 8, w & 0xff])
  t.equal(formatIpv6(b(0x2001, 0xdb8, 0, 0, 1, 0, 0, 1)), '2001:db8::1:0:0:1', 'first longest run wins')
  t.equal(formatIpv6(b(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1)), '2001:db8:1::1')
  t.equal(formatIpv6(b(1, 0, 0, 0, 0, 0, 0, 0)), '1::')
  t.equal(formatIpv6(b(0, 0, 0, 0, 0, 0, 0xc000, 0x0201)), '::192.0.2.1')
  t.equal(formatIpv6(b(1, 2, 3, 4, 5, 6, 7, 8)), '1:2:3:4:5:6:7:8')
})

t.test('interface names', async t => {
  for (const ok of [
    'eth0',
    'veth1234567890a',
    'cali+',
    'bond0.100',
    'eth0:1',
    'br-1a2b',
    'wg@x',
    'lo',
    'x+',
    'abcdefghijklmn+',
  ]) {
    t.ok(isValidInterface(ok), ok)
  }
  for (const bad of [
    '',
    '+',
    'a b',
    'eth0;id',
    '$(id)',
    '-i',
    'abcdefghijklmnop',
    'abcdefghijklmno+',
    'a/b',
    '.',
    '..',
    'eth+0',
    'e"th',
    'eth\n0',
    'ä0',
  ]) {
    t.notOk(isValidInterface(bad), JSON.stringify(bad))
  }
})

t.test('validateRuleConfig names the flag and accepted form', async t => {
  const bad: [Partial<Config>, string, RegExp][] = [
    [{ queue: -1 }, '--queue', /an integer 0-65535/],
    [{ queue: 1.5 }, '--queue', /not a queue number/],
    [{ queue: 65536 }, '--queue', /0-65535/],
    [{ queues: 0 }, '--queues', /queue \+ queues - 1 <= 65535/],
    [{ queue: 65535, queues: 2 }, '--queues', /out of range/],
    [{ dnsPort: 0 }, '--dns-port', /1-65535/],
    [{ dnsPort: 70000 }, '--dns-port', /not a port/],
    [
      { dnsIp: ['198.51.100.10', '10.0.0.10 && reboot'] },
      '--dns-ip',
      /"10\.0\.0\.10 && reboot" is not an address or CIDR \(accepted: IPv4 or IPv6/,
    ],
    [
      { interfaces: ['eth0', 'eth1|x'] },
      '--interfaces',
      /"eth1\|x" is not an interface name \(accepted: interface names/,
    ],
    [{ hooks: [] }, '--hooks', /no hook given/],
    [{ hooks: ['input' as never] }, '--hooks', /"input" is not a hook/],
  ]
  for (const [over, flag, msg] of bad) {
    const e = (() => {
      try {
        validateRuleConfig(cfg(over))
      } catch (x) {
        return x
      }
      return undefined
    })()
    t.ok(e instanceof ConfigError, `${JSON.stringify(over)} → ConfigError`)
    t.equal((e as ConfigError).flag, flag)
    t.match((e as ConfigError).message, msg)
    t.ok((e as ConfigError).message.startsWith(flag + ': '))
  }
  t.doesNotThrow(() =>
    validateRuleConfig(cfg({ queue: 65532, queues: 4, dnsIp: ['2001:db8::53'], interfaces: ['eth+'] })),
  )
  t.throws(() => new RuleManager({ config: cfg({ dnsPort: -5 }) }), ConfigError, 'constructor validates')
  t.throws(() => renderRestore(cfg({ interfaces: ['`id`'] }), 'ipv4'), ConfigError)
})

// ---------------------------------------------------------------------------------------------
t.test('renderRestore: exact text', async t => {
  t.test('defaults, both hooks', async t => {
    const want = `*raw
:DNS-SHAPER - [0:0]
-A DNS-SHAPER -p udp -m udp --dport 53 -j NFQUEUE --queue-num 0 --queue-bypass
${J_PRE}
${J_OUT}
COMMIT
`
    t.equal(renderRestore(cfg(), 'ipv4'), H4 + want)
    t.equal(renderRestore(cfg(), 'ipv6'), H6 + want)
  })

  t.test('several queues use --queue-balance (never cpu fanout), output only, other port', async t => {
    const text = renderRestore(cfg({ queue: 4, queues: 4, hooks: ['output'], dnsPort: 5353 }), 'ipv4')
    t.equal(
      text,
      H4 +
        `*raw
:DNS-SHAPER - [0:0]
-A DNS-SHAPER -p udp -m udp --dport 5353 -j NFQUEUE --queue-balance 4:7 --queue-bypass
${J_OUT}
COMMIT
`,
    )
    t.notMatch(text, /fanout/)
  })

  t.test('dns-ip split by family, interfaces per hook, hooks in fixed order, duplicates merged', async t => {
    const c = cfg({
      hooks: ['output', 'prerouting', 'output'],
      dnsIp: ['198.51.100.10', '2001:db8::53', '203.0.113.0/24', '198.51.100.10/32'],
      interfaces: ['cali+', 'eth0', 'cali+'],
      queue: 2,
    })
    t.equal(
      renderRestore(c, 'ipv4'),
      H4 +
        `*raw
:DNS-SHAPER - [0:0]
-A DNS-SHAPER -d 198.51.100.10/32 -i cali+ -p udp -m udp --dport 53 -j NFQUEUE --queue-num 2 --queue-bypass
-A DNS-SHAPER -d 203.0.113.0/24 -i cali+ -p udp -m udp --dport 53 -j NFQUEUE --queue-num 2 --queue-bypass
-A DNS-SHAPER -d 198.51.100.10/32 -i eth0 -p udp -m udp --dport 53 -j NFQUEUE --queue-num 2 --queue-bypass
-A DNS-SHAPER -d 203.0.113.0/24 -i eth0 -p udp -m udp --dport 53 -j NFQUEUE --queue-num 2 --queue-bypass
-A DNS-SHAPER -d 198.51.100.10/32 -o cali+ -p udp -m udp --dport 53 -j NFQUEUE --queue-num 2 --queue-bypass
-A DNS-SHAPER -d 203.0.113.0/24 -o cali+ -p udp -m udp --dport 53 -j NFQUEUE --queue-num 2 --queue-bypass
-A DNS-SHAPER -d 198.51.100.10/32 -o eth0 -p udp -m udp --dport 53 -j NFQUEUE --queue-num 2 --queue-bypass
-A DNS-SHAPER -d 203.0.113.0/24 -o eth0 -p udp -m udp --dport 53 -j NFQUEUE --queue-num 2 --queue-bypass
${J_PRE}
${J_OUT}
COMMIT
`,
    )
    t.equal(
      renderRestore(cfg({ dnsIp: ['198.51.100.10', '2001:DB8::53'], hooks: ['prerouting'] }), 'ipv6'),
      H6 +
        `*raw
:DNS-SHAPER - [0:0]
-A DNS-SHAPER -d 2001:db8::53/128 -p udp -m udp --dport 53 -j NFQUEUE --queue-num 0 --queue-bypass
${J_PRE_ONLY}
COMMIT
`,
    )
  })

  t.test('a family without rules renders only a comment with the reason', async t => {
    t.equal(
      renderRestore(cfg({ dnsIp: ['198.51.100.10'] }), 'ipv6'),
      '# dns-shaper: no IPv6 rules: --dns-ip lists no IPv6 address, so IPv6 DNS is not shaped\n',
    )
    t.equal(
      renderRestore(cfg({ dnsIp: ['2001:db8::53'] }), 'ipv4'),
      '# dns-shaper: no IPv4 rules: --dns-ip lists no IPv4 address, so IPv4 DNS is not shaped\n',
    )
    t.equal(renderRestore(cfg({ ipv6: false }), 'ipv6'), '# dns-shaper: no IPv6 rules: IPv6 is disabled (--ipv6 off)\n')
  })

  t.test('plan is data', async t => {
    const p = planRules(cfg({ hooks: ['prerouting'] }), 'ipv4')
    t.same(p, {
      family: 'ipv4',
      rules: [['-p', 'udp', '-m', 'udp', '--dport', '53', '-j', 'NFQUEUE', '--queue-num', '0', '--queue-bypass']],
      jumps: [{ chain: 'PREROUTING', args: ['-m', 'comment', '--comment', jumpComment('prerouting'), '-j', CHAIN] }],
    })
  })
})

// ---------------------------------------------------------------------------------------------
// Captured from iptables-nft-save -c -t raw on a node with node-local-dns, after a SIGKILL left
// two copies of our PREROUTING jump and an old OUTPUT jump with an earlier comment wording.
const STALE_SAVE = `# Generated by iptables-nft-save v1.8.9 (nf_tables) on Wed Nov 25 08:55:33 2026
*raw
:PREROUTING ACCEPT [1200:90000]
:OUTPUT ACCEPT [800:64000]
:DNS-SHAPER - [0:0]
:NODE-LOCAL - [0:0]
[10:800] -A PREROUTING -d 198.51.100.10/32 -p udp -m udp --dport 53 -j NOTRACK
[5:400] -A PREROUTING -m comment --comment "dns-shaper: shape DNS (prerouting)" -j DNS-SHAPER
[0:0] -A PREROUTING -m comment --comment "node-local: dns-shaper: not ours" -j NODE-LOCAL
[3:240] -A PREROUTING -m comment --comment "dns-shaper: shape DNS (prerouting)" -j DNS-SHAPER
[7:560] -A OUTPUT -m comment --comment "dns-shaper: output v0" -j DNS-SHAPER
[0:0] -A OUTPUT -p tcp -m tcp --dport 53 -m comment --comment "kube \\"quoted\\" comment" -j CT --notrack
[8:640] -A DNS-SHAPER -p udp -m udp --dport 53 -j NFQUEUE --queue-num 0 --queue-bypass
[1:80] -A DNS-SHAPER -p udp -m udp --dport 53 -j NFQUEUE --queue-num 0 --queue-bypass
[0:0] -A NODE-LOCAL -j ACCEPT
COMMIT
# Completed on Wed Nov 25 08:55:33 2026
# Generated by iptables-nft-save v1.8.9 (nf_tables) on Wed Nov 25 08:55:33 2026
*filter
:INPUT ACCEPT [0:0]
-A INPUT -m comment --comment "dns-shaper: in another table" -j ACCEPT
COMMIT
`

t.test('kernel filter in the NFQUEUE rule', async t => {
  const bpf4 = bytecodeText(buildFilter('ipv4', [28]).insns)
  const bpf6 = bytecodeText(buildFilter('ipv6', [28]).insns)
  const target = '-j NFQUEUE --queue-num 0 --queue-bypass'
  t.equal(DEFAULTS.kernelFilter, 'auto')
  t.match(
    renderRestore(cfg({ kernelFilter: 'auto' }), 'ipv4'),
    `-A DNS-SHAPER -p udp -m udp --dport 53 -m bpf --bytecode "${bpf4}" ${target}\n`,
    'auto starts with bpf',
  )
  t.match(
    renderRestore(cfg({ kernelFilter: 'bpf' }), 'ipv6'),
    `-A DNS-SHAPER -p udp -m udp --dport 53 -m bpf --bytecode "${bpf6}" ${target}\n`,
  )
  t.match(
    renderRestore(cfg({ kernelFilter: 'u32' }), 'ipv4'),
    `-A DNS-SHAPER -p udp -m udp --dport 53 -m u32 --u32 "0x0>>0x16&0x3c@0x8&0xf800=0x0&&0x0>>0x16&0x3c@0xc>>0x10=0x1:0xffff" ${target}\n`,
  )
  const v6 = planRules(cfg({ kernelFilter: 'u32', dnsIp: ['2001:db8::53'] }), 'ipv6').rules
  t.same(
    v6,
    [
      [
        '-d',
        '2001:db8::53/128',
        '-p',
        'udp',
        '-m',
        'udp',
        '--dport',
        '53',
        '-m',
        'u32',
        '--u32',
        '0x4&0xff00=0x1100&&0x30&0xf800=0x0&&0x34>>0x10=0x1:0xffff',
        ...target.split(' '),
      ],
      [
        '-d',
        '2001:db8::53/128',
        '-p',
        'udp',
        '-m',
        'udp',
        '--dport',
        '53',
        '-m',
        'u32',
        '!',
        '--u32',
        '0x4&0xff00=0x1100',
        ...target.split(' '),
      ],
    ],
    'IPv6 u32: one rule for UDP right behind the header, one for any extension header',
  )
  t.same(queuedQtypes(cfg({ qtypes: [28, 65] })), [28, 65])
  t.same(queuedQtypes(cfg({ mode: 'pair' })), [1, 28], 'pair mode needs the A in user space')
  t.same(queuedQtypes(cfg({ mode: 'pair', qtypes: [] })), [])
  t.same(filterMatches(cfg({ kernelFilter: 'bpf', qtypes: [] }), 'ipv4', 'bpf'), [[]], 'nothing held: no filter')
  const many = Array.from({ length: 50 }, (_, i) => i + 1)
  t.throws(() => planRules(cfg({ kernelFilter: 'bpf', qtypes: many }), 'ipv4'), ConfigError)
  t.ok(
    planRules(cfg({ kernelFilter: 'auto', qtypes: many }), 'ipv4').rules[0]!.includes('u32'),
    'auto: too many types for bpf → u32',
  )
  // What iptables-save prints back compares equal to the plan (quoting of the bytecode included).
  const plan = planRules(cfg({ kernelFilter: 'bpf' }), 'ipv4')
  const saved = parseSave(renderRestore(cfg({ kernelFilter: 'bpf' }), 'ipv4').replace(/^#.*\n/, '')).get('raw')
  t.equal(compareTable(plan, saved).upToDate, true)
  t.equal(
    compareTable(planRules(cfg({ kernelFilter: 'bpf', qtypes: [28, 65] }), 'ipv4'), saved).upToDate,
    false,
    'another type set is drift',
  )
  t.ok(isMissingMatch("iptables-restore v1.8.9 (nf_tables): Couldn't load match `bpf':No such file or directory"))
  t.ok(isMissingMatch('Warning: Extension u32 revision 0 not supported, missing kernel module?'))
  t.ok(isMissingMatch('iptables-restore: line 3 failed: No chain/target/match by that name.'))
  t.notOk(isMissingMatch('iptables-restore: line 3 failed'))
})

t.test('parseSave and splitArgs', async t => {
  t.same(splitArgs('-A X -m comment --comment "a \\"b\\" \\\\c" -j Y'), [
    '-A',
    'X',
    '-m',
    'comment',
    '--comment',
    'a "b" \\c',
    '-j',
    'Y',
  ])
  t.same(splitArgs('  -A\tX  ""  '), ['-A', 'X', ''])
  const tables = parseSave(STALE_SAVE)
  t.same([...tables.keys()], ['raw', 'filter'])
  const raw = tables.get('raw')!
  t.same(
    [...raw.chains],
    [
      ['PREROUTING', 'ACCEPT'],
      ['OUTPUT', 'ACCEPT'],
      ['DNS-SHAPER', '-'],
      ['NODE-LOCAL', '-'],
    ],
  )
  t.equal(raw.rules.length, 9)
  t.same(raw.rules[1], {
    chain: 'PREROUTING',
    args: ['-m', 'comment', '--comment', 'dns-shaper: shape DNS (prerouting)', '-j', 'DNS-SHAPER'],
    line: J_PRE_ONLY,
    packets: 5,
    bytes: 400,
  })
  t.equal(raw.rules[5]!.args[9], 'kube "quoted" comment')
  // Without counters, junk and rules before any table are ignored.
  const plain = parseSave(
    '-A PREROUTING -j X\n*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j NOTRACK\n-N weird\nCOMMIT\n-A OUTPUT -j Y\n',
  )
  t.same(plain.get('raw')!.rules, [{ chain: 'PREROUTING', args: ['-j', 'NOTRACK'], line: '-A PREROUTING -j NOTRACK' }])
  t.equal(parseSave('').size, 0)
})

t.test('ownedJumps finds our jumps, stale copies included, and nothing foreign', async t => {
  const raw = parseSave(STALE_SAVE).get('raw')
  t.same(
    ownedJumps(raw).map(r => r.line),
    [J_PRE_ONLY, J_PRE_ONLY, '-A OUTPUT -m comment --comment "dns-shaper: output v0" -j DNS-SHAPER'],
  )
  t.same(ownedJumps(undefined), [])
  // A jump to our chain without our comment (hand-made) is ours too: it would block -X DNS-SHAPER.
  const hand = parseSave('*raw\n:DNS-SHAPER - [0:0]\n-A OUTPUT -g DNS-SHAPER\n-A OUTPUT -j ACCEPT\nCOMMIT\n').get('raw')
  t.same(
    ownedJumps(hand).map(r => r.line),
    ['-A OUTPUT -g DNS-SHAPER'],
  )
  const counting = parseSave('*raw\n-A OUTPUT -p udp\n-A OUTPUT -m comment --comment "dns-shaper:x"\nCOMMIT\n').get(
    'raw',
  )
  t.same(
    ownedJumps(counting).map(r => r.line),
    ['-A OUTPUT -m comment --comment "dns-shaper:x"'],
    'target-less rules',
  )
})

t.test('renderInstall: delete every stale jump, refill the chain, one jump per hook', async t => {
  const raw = parseSave(STALE_SAVE).get('raw')
  const want = `# dns-shaper IPv4 install: apply with iptables-restore --noflush (nft or legacy variant)
*raw
:DNS-SHAPER - [0:0]
${J_PRE_ONLY.replace('-A', '-D')}
${J_PRE_ONLY.replace('-A', '-D')}
-D OUTPUT -m comment --comment "dns-shaper: output v0" -j DNS-SHAPER
-A DNS-SHAPER -p udp -m udp --dport 53 -j NFQUEUE --queue-num 0 --queue-bypass
${J_PRE}
${J_OUT}
COMMIT
`
  t.equal(renderInstall(planRules(cfg(), 'ipv4'), raw), want)
  t.notMatch(want, /NOTRACK|NODE-LOCAL|CT --notrack|another table/, 'foreign rules untouched')
  // Nothing installed: the install text is exactly the printed text (apart from the header).
  t.equal(
    renderInstall(planRules(cfg(), 'ipv4'), undefined)!.split('\n').slice(1).join('\n'),
    renderRestore(cfg(), 'ipv4').split('\n').slice(1).join('\n'),
  )
  // A skipped family is cleaned instead.
  t.equal(renderInstall(planRules(cfg({ ipv6: false }), 'ipv6'), undefined), null)
  t.match(renderInstall(planRules(cfg({ ipv6: false }), 'ipv6'), raw)!, /-X DNS-SHAPER/)
})

t.test('renderRemove: only our jumps and chain; nothing installed → null', async t => {
  const raw = parseSave(STALE_SAVE).get('raw')
  t.equal(
    renderRemove(raw),
    `*raw
${J_PRE_ONLY.replace('-A', '-D')}
${J_PRE_ONLY.replace('-A', '-D')}
-D OUTPUT -m comment --comment "dns-shaper: output v0" -j DNS-SHAPER
:DNS-SHAPER - [0:0]
-X DNS-SHAPER
COMMIT
`,
  )
  t.equal(renderRemove(undefined), null)
  t.equal(
    renderRemove(parseSave('*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j NOTRACK\nCOMMIT\n').get('raw')),
    null,
  )
  // A chain left without jumps (crash between two old-style commands) is still removed.
  t.equal(
    renderRemove(parseSave('*raw\n:DNS-SHAPER - [0:0]\nCOMMIT\n').get('raw')),
    '*raw\n:DNS-SHAPER - [0:0]\n-X DNS-SHAPER\nCOMMIT\n',
  )
})

t.test('compareTable', async t => {
  const plan = planRules(cfg(), 'ipv4')
  const stale = compareTable(plan, parseSave(STALE_SAVE).get('raw'))
  t.equal(stale.upToDate, false)
  t.same(stale.jumps, [
    { chain: 'PREROUTING', count: 2, packets: 8 },
    { chain: 'OUTPUT', count: 1, packets: 7 },
  ])
  t.equal(stale.rules.length, 2)
  t.same(stale.rules[0], {
    line: '-A DNS-SHAPER -p udp -m udp --dport 53 -j NFQUEUE --queue-num 0 --queue-bypass',
    packets: 8,
    bytes: 640,
  })

  const good = `*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:DNS-SHAPER - [0:0]\n[1:2] ${J_PRE}\n${J_OUT}\n-A DNS-SHAPER -p udp -m udp --dport 53 -j NFQUEUE --queue-num 0 --queue-bypass\nCOMMIT\n`
  const ok = compareTable(plan, parseSave(good).get('raw'))
  t.equal(ok.upToDate, true)
  t.same(ok.expectedRules, ['-A DNS-SHAPER -p udp -m udp --dport 53 -j NFQUEUE --queue-num 0 --queue-bypass'])
  t.equal(
    compareTable(planRules(cfg({ dnsPort: 54 }), 'ipv4'), parseSave(good).get('raw')).upToDate,
    false,
    'rules differ',
  )
  t.equal(
    compareTable(planRules(cfg({ hooks: ['output'] }), 'ipv4'), parseSave(good).get('raw')).upToDate,
    false,
    'extra jump',
  )
  t.equal(compareTable(plan, undefined).upToDate, false)
  const skipped = planRules(cfg({ ipv6: false }), 'ipv6')
  const s = compareTable(skipped, undefined)
  t.equal(s.upToDate, true)
  t.equal(s.skipped, 'IPv6 is disabled (--ipv6 off)')
  t.equal(compareTable(skipped, parseSave(good).get('raw')).upToDate, false)
})

// ---------------------------------------------------------------------------------------------
// A fake iptables: per "backend family" a save text; restores are recorded and applied by a
// minimal interpreter good enough for our own transactions (declare/flush, -A, -D, -X).

interface Call {
  argv: string[]
  input?: string
}

class FakeTables {
  calls: Call[] = []
  /** key: save binary name, e.g. 'iptables-nft-save' → raw-table text lines */
  state = new Map<string, { chains: string[]; rules: string[] }>()
  fail: ((argv: string[]) => Partial<ExecResult> | Error | undefined) | undefined

  table(save: string): { chains: string[]; rules: string[] } {
    let s = this.state.get(save)
    if (!s) {
      s = { chains: ['PREROUTING', 'OUTPUT'], rules: [] }
      this.state.set(save, s)
    }
    return s
  }

  saveText(save: string): string {
    const s = this.table(save)
    const decl = s.chains.map(c => (c === 'PREROUTING' || c === 'OUTPUT' ? `:${c} ACCEPT [0:0]` : `:${c} - [0:0]`))
    return ['# Generated', '*raw', ...decl, ...s.rules.map(r => `[0:0] ${r}`), 'COMMIT', ''].join('\n')
  }

  restore(save: string, input: string): void {
    const s = this.table(save)
    const next = { chains: [...s.chains], rules: [...s.rules] }
    for (const l of input.split('\n')) {
      if (l === '' || l.startsWith('#') || l === '*raw' || l === 'COMMIT') continue
      if (l.startsWith(':')) {
        const c = l.slice(1).split(' ')[0]!
        if (!next.chains.includes(c)) next.chains.push(c)
        next.rules = next.rules.filter(r => !r.startsWith(`-A ${c} `))
      } else if (l.startsWith('-A ')) next.rules.push(l)
      else if (l.startsWith('-D ')) {
        const i = next.rules.indexOf('-A ' + l.slice(3))
        if (i < 0) throw new Error(`bad -D ${l}`)
        next.rules.splice(i, 1)
      } else if (l.startsWith('-X ')) next.chains = next.chains.filter(c => c !== l.slice(3))
      else throw new Error(`unexpected line ${l}`)
    }
    this.state.set(save, next)
  }

  runner: Runner = async (argv: readonly string[], opts?: ExecOptions): Promise<ExecResult> => {
    const a = [...argv]
    this.calls.push(opts?.input === undefined ? { argv: a } : { argv: a, input: opts.input })
    const ok = (stdout = ''): ExecResult => ({ code: 0, signal: null, stdout, stderr: '', timedOut: false })
    const f = this.fail?.(a)
    if (f instanceof Error) throw f
    if (f) return { code: 1, signal: null, stdout: '', stderr: '', timedOut: false, ...f }
    const i = a.findIndex(x => /^ip6?tables-/.test(x))
    const bin = a[i]!
    if (bin.endsWith('-save')) return ok(this.saveText(bin))
    if (bin.endsWith('-restore')) {
      this.restore(bin.replace(/-restore$/, '-save'), opts?.input ?? '')
      return ok()
    }
    throw new Error(`unexpected ${a.join(' ')}`)
  }
}

const NFT: BackendDecision = { backend: 'nft', reason: 'test', source: 'config' }
const LEGACY: BackendDecision = { backend: 'legacy', reason: 'test', source: 'config' }

t.test('RuleManager install is idempotent and leaves foreign rules alone', async t => {
  const fake = new FakeTables()
  fake.table('iptables-nft-save').rules.push('-A PREROUTING -d 198.51.100.10/32 -p udp -m udp --dport 53 -j NOTRACK')
  const logs: string[] = []
  const log = { info: (m: string) => logs.push(`info ${m}`), debug: (m: string) => logs.push(`debug ${m}`) }
  const m = new RuleManager({ config: cfg(), runner: fake.runner, backend: NFT, log })
  const r1 = await m.install()
  t.equal(r1.backend, NFT)
  t.equal(r1.dryRun, false)
  t.same(
    r1.families.map(f => [f.family, f.changed, f.jumpsRemoved]),
    [
      ['ipv4', true, 0],
      ['ipv6', true, 0],
    ],
  )
  t.same(
    fake.calls.map(c => c.argv.join(' ')),
    [
      'iptables-nft-save -c -t raw',
      'iptables-nft-restore --noflush --wait=5',
      'ip6tables-nft-save -c -t raw',
      'ip6tables-nft-restore --noflush --wait=5',
    ],
  )
  // First install applies exactly the printed text (the header line says "install" instead of "rules").
  t.equal(
    fake.calls[1]!.input!.split('\n').slice(1).join('\n'),
    renderRestore(cfg(), 'ipv4').split('\n').slice(1).join('\n'),
  )
  const after1 = fake.saveText('iptables-nft-save')
  await m.install()
  t.equal(fake.saveText('iptables-nft-save'), after1, 'second install: same state')
  t.equal((await m.install()).families[0]!.jumpsRemoved, 2, 'replaces its two jumps')
  const st = await m.status()
  t.same(
    st.families.map(f => f.upToDate),
    [true, true],
  )
  t.same(fake.table('iptables-nft-save').rules.filter(r => r.includes('NOTRACK')).length, 1)
  t.ok(logs.some(l => l.startsWith('info install ipv4: applied')))

  await m.remove()
  t.same(fake.table('iptables-nft-save'), {
    chains: ['PREROUTING', 'OUTPUT'],
    rules: ['-A PREROUTING -d 198.51.100.10/32 -p udp -m udp --dport 53 -j NOTRACK'],
  })
  t.same(fake.table('ip6tables-nft-save'), { chains: ['PREROUTING', 'OUTPUT'], rules: [] })
  const n = fake.calls.length
  const again = await m.remove()
  t.same(
    again.families.map(f => f.changed),
    [false, false],
    'remove with nothing installed is a no-op',
  )
  t.same(
    fake.calls.slice(n).map(c => c.argv[0]),
    ['iptables-nft-save', 'ip6tables-nft-save'],
    'and only reads',
  )
  t.ok(logs.some(l => l === 'debug remove ipv4: nothing to do'))
})

t.test('RuleManager cleans duplicate stale jumps left by a killed run', async t => {
  const fake = new FakeTables()
  const s = fake.table('iptables-legacy-save')
  s.chains.push('DNS-SHAPER')
  s.rules.push(
    J_PRE,
    J_PRE,
    '-A OUTPUT -j ACCEPT',
    J_OUT,
    '-A DNS-SHAPER -p udp -m udp --dport 53 -j NFQUEUE --queue-num 9 --queue-bypass',
  )
  const m = new RuleManager({ config: cfg({ ipv6: false }), runner: fake.runner, backend: LEGACY })
  const r = await m.install()
  t.equal(r.families[0]!.jumpsRemoved, 3)
  t.same(fake.table('iptables-legacy-save').rules, [
    '-A OUTPUT -j ACCEPT',
    '-A DNS-SHAPER -p udp -m udp --dport 53 -j NFQUEUE --queue-num 0 --queue-bypass',
    J_PRE,
    J_OUT,
  ])
  t.equal(fake.calls[0]!.argv.join(' '), 'iptables-legacy-save -c', 'legacy save without -t (no table creation)')
  t.same(r.families[1], {
    family: 'ipv6',
    changed: false,
    jumpsRemoved: 0,
    input: null,
    skipped: 'IPv6 is disabled (--ipv6 off)',
  })
})

t.test('with IPv6 off, stale ip6tables rules are removed, and ip6tables failures are only logged', async t => {
  const fake = new FakeTables()
  const s6 = fake.table('ip6tables-nft-save')
  s6.chains.push('DNS-SHAPER')
  s6.rules.push(J_OUT, '-A DNS-SHAPER -p udp -m udp --dport 53 -j NFQUEUE --queue-num 0 --queue-bypass')
  const m = new RuleManager({ config: cfg({ ipv6: false }), runner: fake.runner, backend: NFT })
  await m.install()
  t.same(fake.table('ip6tables-nft-save'), { chains: ['PREROUTING', 'OUTPUT'], rules: [] })
  t.same(
    (await m.status()).families.map(f => f.family),
    ['ipv4'],
  )

  const debug: string[] = []
  fake.fail = argv =>
    argv[0]!.startsWith('ip6tables') ? { code: 1, stderr: 'ip6tables: Address family not supported' } : undefined
  const m2 = new RuleManager({
    config: cfg({ ipv6: false }),
    runner: fake.runner,
    backend: NFT,
    log: { debug: x => debug.push(x) },
  })
  const r = await m2.install()
  t.equal(r.families[1]!.changed, false)
  const rr = await m2.remove()
  t.equal(rr.families[1]!.skipped, 'IPv6 is disabled (--ipv6 off)')
  t.ok(debug.some(d => d.includes('ipv6 disabled')))
  // With IPv6 on, the same failure is an error.
  const m3 = new RuleManager({ config: cfg(), runner: fake.runner, backend: NFT })
  await t.rejects(m3.remove(), IptablesError)
})

t.test('a failing family rolls back the families installed by the same call', async t => {
  const fake = new FakeTables()
  fake.fail = argv =>
    argv[0] === 'ip6tables-nft-restore' ? { code: 2, stderr: 'ip6tables-nft-restore: line 4 failed\n' } : undefined
  const warn: string[] = []
  const m = new RuleManager({ config: cfg(), runner: fake.runner, backend: NFT, log: { warn: x => warn.push(x) } })
  const e = await m.install().catch((x: unknown) => x)
  t.ok(e instanceof IptablesError)
  t.equal((e as IptablesError).message, 'ip6tables-nft-restore failed (exit 2): ip6tables-nft-restore: line 4 failed')
  t.match((e as IptablesError).input!, /\*raw/)
  t.same(fake.table('iptables-nft-save'), { chains: ['PREROUTING', 'OUTPUT'], rules: [] }, 'IPv4 rolled back')

  // Rollback that fails too is logged, the original error wins.
  let armed = false
  fake.fail = argv => {
    if (argv[0] === 'ip6tables-nft-restore') {
      armed = true
      return { code: 2, stderr: 'boom' }
    }
    return armed && argv[0] === 'iptables-nft-save' ? { code: 2, stderr: 'boom' } : undefined
  }
  await t.rejects(m.install(), { message: /ip6tables-nft-restore failed/ })
  t.ok(warn.some(w => w.includes('could not roll back ipv4')))
})

t.test('kernel filter auto steps down when a match is missing; explicit modes do not', async t => {
  const missing =
    (what: string) =>
    (fake: FakeTables): Runner =>
    async (argv, opts) => {
      if (opts?.input?.includes(`-m ${what}`)) {
        return {
          code: 2,
          signal: null,
          stdout: '',
          stderr: `Warning: Extension ${what} revision 0 not supported, missing kernel module?\niptables-restore: line 3 failed\n`,
          timedOut: false,
        }
      }
      return fake.runner(argv, opts)
    }
  const fake = new FakeTables()
  const warn: string[] = []
  const m = new RuleManager({
    config: cfg({ kernelFilter: 'auto' }),
    runner: missing('bpf')(fake),
    backend: NFT,
    log: { warn: x => warn.push(x) },
  })
  t.equal(m.filter, 'bpf')
  const r = await m.install()
  t.equal(m.filter, 'u32')
  t.same(
    r.families.map(f => f.family),
    ['ipv4', 'ipv6'],
    'both families, once',
  )
  t.match(fake.table('iptables-nft-save').rules.join('\n'), /-m u32 --u32/)
  t.match(fake.table('ip6tables-nft-save').rules.join('\n'), /-m u32 ! --u32/)
  t.match(warn, [/kernel filter bpf unavailable \(Warning: Extension bpf revision 0 not supported.*\); using u32/])
  t.same(
    (await m.status()).families.map(f => f.upToDate),
    [true, true],
    'status compares against the filter in use',
  )
  t.match(m.render('ipv4'), /-m u32/)

  // Neither bpf nor u32: no filter at all.
  const fake2 = new FakeTables()
  const both: Runner = async (argv, opts) =>
    /-m (bpf|u32)/.test(opts?.input ?? '')
      ? missing('bpf')(fake2)(argv, { ...opts, input: '-m bpf' })
      : fake2.runner(argv, opts)
  const m2 = new RuleManager({ config: cfg({ kernelFilter: 'auto' }), runner: both, backend: NFT })
  await m2.install()
  t.equal(m2.filter, 'off')
  t.notMatch(fake2.table('iptables-nft-save').rules.join('\n'), /-m (bpf|u32)/)

  // Explicit bpf: the error is the operator's to see.
  const m3 = new RuleManager({
    config: cfg({ kernelFilter: 'bpf' }),
    runner: missing('bpf')(new FakeTables()),
    backend: NFT,
  })
  await t.rejects(m3.install(), IptablesError)
  t.equal(m3.filter, 'bpf')
})

t.test('error mapping through the manager', async t => {
  const enoent = Object.assign(new Error('spawn iptables-nft-save ENOENT'), {
    code: 'ENOENT',
    syscall: 'spawn iptables-nft-save',
    path: 'iptables-nft-save',
  })
  let m = new RuleManager({ config: cfg(), runner: async () => Promise.reject(enoent), backend: NFT })
  await t.rejects(m.install(), {
    name: 'IptablesError',
    kind: 'missing',
    message: 'iptables-nft-save not found: install iptables (Debian: apt-get install iptables)',
  })

  const fake = new FakeTables()
  fake.fail = argv =>
    argv[0]!.endsWith('restore')
      ? { code: 4, stderr: 'Another app is currently holding the xtables lock. Stopped waiting after 5s.\n' }
      : undefined
  m = new RuleManager({ config: cfg(), runner: fake.runner, backend: LEGACY })
  const e = (await m.install().catch((x: unknown) => x)) as IptablesError
  t.equal(e.locked, true)
  t.same(e.argv, ['iptables-legacy-restore', '--noflush', '--wait=5'])
  t.match(e.message, /xtables lock and did not release it within 5s/)

  fake.fail = () => ({
    code: 4,
    stderr:
      'iptables-nft-save v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)\n',
  })
  m = new RuleManager({ config: cfg(), runner: fake.runner, backend: NFT })
  await t.rejects(m.status(), {
    kind: 'permission',
    message: 'iptables-nft-save: permission denied: run as root or with CAP_NET_ADMIN and CAP_NET_RAW',
  })

  fake.fail = () => ({ code: null, timedOut: true })
  m = new RuleManager({ config: cfg(), runner: fake.runner, backend: NFT, timeoutMs: 1234 })
  await t.rejects(m.status(), {
    kind: 'timeout',
    message: 'iptables-nft-save -c -t raw'.split(' ')[0] + ' did not finish within 1234 ms and was killed',
  })
})

t.test('old iptables-restore without --wait: retried without it, once', async t => {
  const fake = new FakeTables()
  fake.fail = argv =>
    argv.includes('--wait=2') ? { code: 2, stderr: "iptables-restore: unrecognized option '--wait=2'\n" } : undefined
  const debug: string[] = []
  const m = new RuleManager({
    config: cfg({ hooks: ['output'] }),
    runner: fake.runner,
    backend: LEGACY,
    lockWaitSeconds: 2,
    log: { debug: x => debug.push(x) },
  })
  await m.install()
  t.same(
    fake.calls.filter(c => c.argv[0]!.endsWith('restore')).map(c => c.argv.join(' ')),
    [
      'iptables-legacy-restore --noflush --wait=2',
      'iptables-legacy-restore --noflush',
      'ip6tables-legacy-restore --noflush',
    ],
  )
  t.ok(debug.some(d => d.includes('does not know --wait')))
  t.equal(
    (await m.status()).families.every(f => f.upToDate),
    true,
  )
})

t.test('netns and wrap prefix every command', async t => {
  const fake = new FakeTables()
  await new RuleManager({ config: cfg({ ipv6: false }), runner: fake.runner, backend: NFT, netns: 'dnss-1-x' }).status()
  t.same(fake.calls[0]!.argv, ['ip', 'netns', 'exec', 'dnss-1-x', 'iptables-nft-save', '-c', '-t', 'raw'])
  fake.calls = []
  await new RuleManager({
    config: cfg({ ipv6: false }),
    runner: fake.runner,
    backend: NFT,
    wrap: ['nsenter', '-t', '1', '-n'],
  }).status()
  t.same(fake.calls[0]!.argv, ['nsenter', '-t', '1', '-n', 'iptables-nft-save', '-c', '-t', 'raw'])
  t.throws(() => new RuleManager({ config: cfg(), netns: '--evil' }), TypeError)
})

t.test('dry run reads but never restores', async t => {
  const fake = new FakeTables()
  const info: [string, Record<string, unknown> | undefined][] = []
  const m = new RuleManager({
    config: cfg({ dryRun: true }),
    dryRun: true,
    runner: fake.runner,
    backend: NFT,
    log: { info: (x, f) => info.push([x, f]) },
  })
  const r = await m.install()
  t.equal(r.dryRun, true)
  t.equal(r.families[0]!.changed, true)
  t.match(r.families[0]!.input!, /-A DNS-SHAPER/)
  t.notOk(fake.calls.some(c => c.argv[0]!.endsWith('restore')))
  t.ok(
    info.some(
      ([m, f]) => m === 'install ipv4: would apply iptables-restore transaction' && typeof f?.['input'] === 'string',
    ),
  )
})

t.test("the daemon's --dry-run (classify, hold nothing) still installs the rules", async t => {
  const fake = new FakeTables()
  const m = new RuleManager({ config: cfg({ dryRun: true }), runner: fake.runner, backend: NFT })
  const r = await m.install()
  t.equal(r.dryRun, false)
  t.ok(
    fake.calls.some(c => c.argv[0]!.endsWith('restore')),
    'restore ran',
  )
})

t.test('backend detection is cached; a failed detection is retried', async t => {
  const fake = new FakeTables()
  let detections = 0
  let failNext = true
  const runner: Runner = async (argv, opts) => {
    if (argv[0] === 'iptables-nft-save' && argv[1] === '-t') {
      detections++
      if (failNext) {
        failNext = false
        return { code: 4, signal: null, stdout: '', stderr: 'Permission denied', timedOut: false }
      }
      return {
        code: 0,
        signal: null,
        stdout: '*mangle\n:KUBE-IPTABLES-HINT - [0:0]\nCOMMIT\n',
        stderr: '',
        timedOut: false,
      }
    }
    return fake.runner(argv, opts)
  }
  const info: string[] = []
  const m = new RuleManager({ config: cfg(), runner, log: { info: x => info.push(x), debug: () => {} } })
  await t.rejects(m.detectBackend(), { name: 'IptablesError', kind: 'permission' })
  const d = await m.detectBackend()
  t.equal(d.backend, 'nft')
  t.equal(d.source, 'kubelet-hint')
  await m.install()
  await m.status()
  t.equal(detections, 2)
  t.ok(info.some(l => l.startsWith('iptables backend: nft (kubelet chain KUBE-IPTABLES-HINT')))
  t.equal(m.render('ipv4'), renderRestore(cfg(), 'ipv4'))
  const cfgBackend = new RuleManager({ config: cfg({ iptablesBackend: 'legacy' }), runner: fake.runner })
  t.equal((await cfgBackend.detectBackend()).backend, 'legacy')
})

t.test('concurrent calls are serialised', async t => {
  const fake = new FakeTables()
  let inFlight = 0
  let maxInFlight = 0
  const runner: Runner = async (argv, opts) => {
    inFlight++
    maxInFlight = Math.max(maxInFlight, inFlight)
    await new Promise(r => setTimeout(r, 5))
    inFlight--
    return fake.runner(argv, opts)
  }
  const m = new RuleManager({ config: cfg(), runner, backend: NFT })
  const results = await Promise.allSettled([m.install(), m.install(), m.remove(), m.install(), m.status()])
  t.same(
    results.map(r => r.status),
    ['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled'],
  )
  t.equal(maxInFlight, 1)
  const st = (results[4] as PromiseFulfilledResult<Awaited<ReturnType<RuleManager['status']>>>).value
  t.same(
    st.families.map(f => f.upToDate),
    [true, true],
  )
})
