// src/config/resolv-conf.ts: `--dns-ip auto` from fixture resolv.conf files (test/fixtures/resolv-conf/).
import t from 'tap'
import { readFileSync } from 'node:fs'
import { nameserversFrom, parseResolvConf } from '../../src/config/resolv-conf.js'
import { isConfigError } from '../../src/errors.js'

const fixture = (name: string): string => new URL(`../fixtures/resolv-conf/${name}`, import.meta.url).pathname
const read = (p: string): string => readFileSync(p, 'utf8')

t.test('what kubelet writes for a ClusterFirstWithHostNet pod', async t => {
  t.same(nameserversFrom(fixture('kubelet-ipv4.conf'), read).cidrs, ['192.0.2.10/32'])
  t.same(nameserversFrom(fixture('kubelet-ipv6.conf'), read).cidrs, ['2001:db8:96::a/128'])
  t.same(
    nameserversFrom(fixture('dual-stack.conf'), read).cidrs,
    ['192.0.2.10/32', '2001:db8:96::a/128'],
    'both families, in file order',
  )
  t.same(
    nameserversFrom(fixture('node-local-dns.conf'), read).cidrs,
    ['169.254.20.10/32'],
    'a node-local cache is still what the file names',
  )
})

t.test('read as glibc and musl read it', async t => {
  const r = parseResolvConf(read(fixture('quirks.conf')))
  t.same(
    r.cidrs,
    ['198.51.100.53/32', 'fe80::1/128'],
    'tab separator, trailing comment, CRLF, zone dropped, repeat once',
  )
  t.same(
    r.ignored.map(i => i.value),
    ['not-an-ip'],
    'an unparsable value is reported; indented, commented and misspelt lines are not nameserver lines',
  )
  t.same(
    parseResolvConf('nameserver 192.0.2.0/24\n').ignored.map(i => i.why),
    ['not an IP address'],
    'no CIDRs in resolv.conf',
  )
})

t.test('missing, empty or stub-only: a config error that says what to fix, never "any"', async t => {
  const fail = (path: string, readFile = read): Error => {
    try {
      nameserversFrom(path, readFile)
    } catch (e) {
      return e as Error
    }
    throw new Error('expected a ConfigError')
  }
  const missing = fail(fixture('does-not-exist.conf'))
  t.ok(isConfigError(missing))
  t.match(missing.message, /^--dns-ip: auto: cannot read .*does-not-exist\.conf \(ENOENT/)
  t.match(missing.message, /ClusterFirstWithHostNet/, 'names the Kubernetes setting that provides the file')
  const empty = fail(fixture('empty.conf'))
  t.ok(isConfigError(empty))
  t.match(empty.message, /names no usable nameserver/)
  const stub = fail(fixture('systemd-stub.conf'))
  t.match(stub.message, /127\.0\.0\.53: loopback/, 'a local stub resolver is named as the reason')
  t.match(fail('/x', () => '').message, /names no usable nameserver/, 'an empty file')
  const denied = fail('/x', () => {
    throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' })
  })
  t.match(denied.message, /cannot read \/x \(EACCES/)
  t.match(nameserversFrom('/x', () => 'nameserver ::1\nnameserver 192.0.2.1\n').ignored[0]?.why, /loopback/)
})

t.test('the flag named in the error is the one the operator used', async t => {
  try {
    nameserversFrom('/x', () => '', 'DNS_SHAPER_DNS_IP')
    t.fail('no error')
  } catch (e) {
    t.match((e as Error).message, /^DNS_SHAPER_DNS_IP: auto:/)
  }
})
