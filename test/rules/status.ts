// src/rules/status.ts: the live table compared with the plan.
import t from 'tap'
import { planRules } from '../../src/rules/plan.js'
import { compareTable } from '../../src/rules/status.js'
import { parseSave } from '../../src/rules/save.js'
import { cfg, J_PRE, J_OUT, STALE_SAVE } from '../helpers/rules.js'

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
