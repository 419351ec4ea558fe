// src/rules/restore.ts: the exact iptables-restore text for install, print and remove.
import t from 'tap'
import { CHAIN, jumpComment, planRules } from '../../src/rules/plan.js'
import { parseSave } from '../../src/rules/save.js'
import { renderInstall, renderRemove, renderRestore } from '../../src/rules/restore.js'
import { cfg, J_PRE, J_PRE_ONLY, J_OUT, H4, H6, STALE_SAVE } from '../helpers/rules.js'

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
