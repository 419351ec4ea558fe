// src/rules/plan.ts: the kernel filter in the NFQUEUE rule (its inputs are checked at load: test/config/load.ts).
import t from 'tap'
import type { Config } from '../../src/config/types.js'
import { ConfigError } from '../../src/errors.js'
import { filterMatches, isMissingMatch, planRules } from '../../src/rules/plan.js'
import { queuedQtypes } from '../../src/dataplane/qtypes.js'
import { compareTable } from '../../src/rules/status.js'
import { parseSave } from '../../src/rules/save.js'
import { renderRestore } from '../../src/rules/restore.js'
import { DEFAULTS } from '../../src/config/load.js'
import { buildFilter, bytecodeText } from '../../src/dataplane/bpf.js'
import { cfg } from '../helpers/rules.js'

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
  // Both IPv6 u32 rules start alike: the DNS address, UDP port 53, then the u32 match.
  const v6Match = ['-d', '2001:db8::53/128', '-p', 'udp', '-m', 'udp', '--dport', '53', '-m', 'u32']
  t.same(
    v6,
    [
      [...v6Match, '--u32', '0x4&0xff00=0x1100&&0x30&0xf800=0x0&&0x34>>0x10=0x1:0xffff', ...target.split(' ')],
      [...v6Match, '!', '--u32', '0x4&0xff00=0x1100', ...target.split(' ')],
    ],
    'IPv6 u32: one rule for UDP right behind the header, one for any extension header',
  )
  // The rules ask the one function the kernel filter asks (dataplane/qtypes.ts), from the settings.
  const queued = (c: Config): number[] => queuedQtypes(c.qtypes, c.mode === 'pair')
  t.same(queued(cfg({ qtypes: [28, 65] })), [28, 65])
  t.same(queued(cfg({ mode: 'pair' })), [1, 28], 'pair mode needs the A in user space')
  t.same(queued(cfg({ mode: 'pair', qtypes: [] })), [])
  t.match(
    planRules(cfg({ kernelFilter: 'bpf', mode: 'pair', qtypes: [28] }), 'ipv4').rules.join('\n'),
    bytecodeText(buildFilter('ipv4', [1, 28]).insns),
    'and the rule carries exactly those types',
  )
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
