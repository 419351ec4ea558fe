// src/rules/save.ts: iptables-save parsing and which jumps are ours.
import t from 'tap'
import { ownedJumps, parseRuleSpecs, parseSave, parseSaveTable, splitSaveLine } from '../../src/rules/save.js'
import { J_PRE_ONLY, STALE_SAVE, STALE_SPECS } from '../helpers/rules.js'

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

t.test('parseRuleSpecs reads iptables -S -v into what parseSaveTable reads from save', async t => {
  const fromSpecs = parseRuleSpecs(STALE_SPECS)
  t.same(fromSpecs, parseSaveTable(STALE_SAVE, 'raw'), 'same chains, policies, rule lines, arguments and counters')
  t.equal(fromSpecs.rules.length, 9)
  // Counters are found outside quotes only; a rule without a target has them at its end (both as
  // iptables-nft 1.8.9 prints them, 2026-12-07).
  const odd = parseRuleSpecs(
    '-A OUTPUT -m comment --comment "kube \\"q\\" -c 1 2" -c 3 4 -j CT --notrack\n-A NODE-LOCAL -p udp -c 5 6\n',
  )
  t.same(
    odd.rules,
    parseSaveTable(
      '*raw\n[3:4] -A OUTPUT -m comment --comment "kube \\"q\\" -c 1 2" -j CT --notrack\n[5:6] -A NODE-LOCAL -p udp\nCOMMIT\n',
      'raw',
    )!.rules,
  )
  t.equal(odd.rules[0]!.args[3], 'kube "q" -c 1 2')
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
