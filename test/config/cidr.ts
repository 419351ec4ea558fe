// src/config/cidr.ts: the one CIDR parser, canonical as iptables-save prints it.
import t from 'tap'
import { cidrFlag, formatIpv6, parseCidr } from '../../src/config/cidr.js'

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

t.test('cidrFlag: the canonical text or a ConfigError naming the flag', async t => {
  t.equal(cidrFlag('2001:db8::/32', '--x'), '2001:db8::/32')
  t.equal(cidrFlag('192.0.2.1', '--x'), '192.0.2.1/32')
  t.throws(() => cidrFlag('192.0.2.1/8/1', '--x'))
})
