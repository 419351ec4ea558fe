// src/rules/save.ts: iptables-save parsing and which jumps are ours.
import t from 'tap'
import { ownedJumps, parseRuleSpecs, parseSave, parseSaveTable, splitSaveLine } from '../../src/rules/save.js'
import { J_PRE_ONLY, STALE_SAVE } from '../helpers/rules.js'

t.test('parseSave and splitArgs', async t => {
  t.same(splitSaveLine('-A X -m comment --comment "a \\"b\\" \\\\c" -j Y'), [
    '-A',
    'X',
    '-m',
    'comment',
    '--comment',
    'a "b" \\c',
    '-j',
    'Y',
  ])
  t.same(splitSaveLine('  -A\tX  ""  '), ['-A', 'X', ''])
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

t.test('parseSaveTable keeps one table and skips the others line by line', async t => {
  const text = `*nat\n:KUBE-SVC-A - [0:0]\n-A KUBE-SVC-A -s 10.0.0.1/32 -j MARK --set-xmark 0x4000/0x4000\nCOMMIT\n*raw\n:PREROUTING ACCEPT [0:0]\n[1:2] -A PREROUTING -j ACCEPT\nCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\nCOMMIT`
  const raw = parseSaveTable(text, 'raw')
  t.same([...(raw?.chains ?? [])], [['PREROUTING', 'ACCEPT']])
  t.same(
    raw?.rules.map(r => [r.chain, r.line, r.packets]),
    [['PREROUTING', '-A PREROUTING -j ACCEPT', 1]],
  )
  t.same([...parseSave(text, 'raw').keys()], ['raw'], 'the other tables are not even created')
  t.equal(parseSaveTable(text, 'mangle'), undefined)
  t.same([...parseSave(text).keys()], ['nat', 'raw', 'filter'], 'without a table named: all of them')
})

// Captured 2026-12-07 from one table (iptables 1.8.9, nf_tables), restored with counters, printed by
// iptables-nft-save -c -t raw and by iptables-nft -t raw -S -v; a comment holds a fake `-c 1 2`.
const CAPTURED_SAVE = `*raw
:PREROUTING ACCEPT [1200:90000]
:OUTPUT ACCEPT [800:64000]
:DNS-SHAPER - [0:0]
:NODE-LOCAL - [0:0]
[10:800] -A PREROUTING -d 198.51.100.10/32 -p udp -m udp --dport 53 -j NOTRACK
[5:400] -A PREROUTING -m comment --comment "dns-shaper: shape DNS (prerouting)" -j DNS-SHAPER
[0:0] -A PREROUTING -m comment --comment "node-local: dns-shaper: not ours" -j NODE-LOCAL
[3:240] -A PREROUTING -m comment --comment "dns-shaper: shape DNS (prerouting)" -j DNS-SHAPER
[7:560] -A OUTPUT -m comment --comment "dns-shaper: output v0" -j DNS-SHAPER
[0:0] -A OUTPUT -p tcp -m tcp --dport 53 -m comment --comment "kube \\"quoted\\" -c 1 2 comment" -j CT --notrack
[8:640] -A DNS-SHAPER -p udp -m udp --dport 53 -j NFQUEUE --queue-num 0 --queue-bypass
[1:80] -A DNS-SHAPER -p udp -m udp --dport 53 -j NFQUEUE --queue-num 0 --queue-bypass
[0:0] -A NODE-LOCAL -j ACCEPT
[0:0] -A NODE-LOCAL -p udp
COMMIT
`
const CAPTURED_SPECS = `-P PREROUTING ACCEPT -c 1200 90000
-P OUTPUT ACCEPT -c 800 64000
-N DNS-SHAPER
-N NODE-LOCAL
-A PREROUTING -d 198.51.100.10/32 -p udp -m udp --dport 53 -c 10 800 -j NOTRACK
-A PREROUTING -m comment --comment "dns-shaper: shape DNS (prerouting)" -c 5 400 -j DNS-SHAPER
-A PREROUTING -m comment --comment "node-local: dns-shaper: not ours" -c 0 0 -j NODE-LOCAL
-A PREROUTING -m comment --comment "dns-shaper: shape DNS (prerouting)" -c 3 240 -j DNS-SHAPER
-A OUTPUT -m comment --comment "dns-shaper: output v0" -c 7 560 -j DNS-SHAPER
-A OUTPUT -p tcp -m tcp --dport 53 -m comment --comment "kube \\"quoted\\" -c 1 2 comment" -c 0 0 -j CT --notrack
-A DNS-SHAPER -p udp -m udp --dport 53 -c 8 640 -j NFQUEUE --queue-num 0 --queue-bypass
-A DNS-SHAPER -p udp -m udp --dport 53 -c 1 80 -j NFQUEUE --queue-num 0 --queue-bypass
-A NODE-LOCAL -c 0 0 -j ACCEPT
-A NODE-LOCAL -p udp -c 0 0
`

t.test('parseRuleSpecs reads iptables -S -v into what parseSaveTable reads from save', async t => {
  const fromSave = parseSaveTable(CAPTURED_SAVE, 'raw')!
  const fromSpecs = parseRuleSpecs(CAPTURED_SPECS)
  t.same(fromSpecs, fromSave, 'same chains, policies, rule lines, arguments and counters')
  t.equal(fromSpecs.rules.length, 10)
  t.same(fromSpecs.rules[5]!.args.slice(-3), ['-j', 'CT', '--notrack'], 'the quoted -c 1 2 stays in the comment')
  t.equal(fromSpecs.rules[5]!.args[9], 'kube "quoted" -c 1 2 comment')
  t.same(fromSpecs.rules[9], {
    chain: 'NODE-LOCAL',
    args: ['-p', 'udp'],
    line: '-A NODE-LOCAL -p udp',
    packets: 0,
    bytes: 0,
  })
  // Without -v: no counters, as save without -c.
  const plain = parseRuleSpecs('-P PREROUTING DROP\n-N X\n-A X -j ACCEPT\n')
  t.same(
    [...plain.chains],
    [
      ['PREROUTING', 'DROP'],
      ['X', '-'],
    ],
  )
  t.same(plain.rules, [{ chain: 'X', args: ['-j', 'ACCEPT'], line: '-A X -j ACCEPT' }])
  // A missing nft raw table prints its built-in chains, as save does: both read the same.
  t.same(
    parseRuleSpecs('-P PREROUTING ACCEPT -c 0 0\n-P OUTPUT ACCEPT -c 0 0\n'),
    parseSaveTable('*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n', 'raw'),
  )
  t.same(parseRuleSpecs(''), { chains: new Map(), rules: [] })
})
