// src/errors.ts: ConfigError, the exit code of each error class, operator wording of errno failures.
import t from 'tap'
import { PolicyError } from '../src/dataplane/policy.js'
import { ConfigError, describeError, exitCodeFor, isConfigError, isErrnoException } from '../src/errors.js'
import { IptablesError, IPTABLES_INSTALL_HINT, isIptablesError } from '../src/rules/errors.js'

function errno(code: string, extra: Record<string, string> = {}): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code} test`), { code, ...extra })
}

t.test('ConfigError names the flag and the accepted form', async t => {
  const e = new ConfigError('--hooks', '"input" is not a hook', 'prerouting,output')
  t.equal(e.message, '--hooks: "input" is not a hook (accepted: prerouting,output)')
  t.equal(e.flag, '--hooks')
  t.equal(e.accepted, 'prerouting,output')
  t.equal(e.name, 'ConfigError')
  t.ok(e instanceof Error)
  const plain = new ConfigError('--config', 'file is empty', undefined, { cause: errno('EIO') })
  t.equal(plain.message, '--config: file is empty')
  t.equal(plain.accepted, undefined)
  t.equal((plain.cause as Error).message, 'EIO test')
})

t.test('type guards and exit codes', async t => {
  const c = new ConfigError('--queue', 'bad')
  const i = new IptablesError('x', { argv: [], kind: 'failed' })
  t.ok(isConfigError(c))
  t.notOk(isConfigError(i))
  t.ok(isIptablesError(i))
  t.notOk(isIptablesError(new Error('x')))
  t.notOk(isIptablesError('string'))
  t.ok(isErrnoException(errno('ENOENT')))
  t.notOk(isErrnoException(new Error('plain')))
  t.notOk(isErrnoException({ code: 'ENOENT' }), 'not an Error')
  t.notOk(isErrnoException(Object.assign(new Error('x'), { code: 4 })), 'numeric code is not errno')
  t.equal(exitCodeFor(c), 2)
  t.equal(exitCodeFor(i), 1)
  t.equal(exitCodeFor(new Error('x')), 1)
  t.equal(exitCodeFor(undefined), 1)
  // Too many hold classes is a configuration problem: exit 2 like any bad flag.
  t.equal(exitCodeFor(new PolicyError('more than 8 distinct hold durations')), 2)
})

t.test('describeError turns errno failures into operator messages', async t => {
  t.equal(
    describeError(errno('ENOENT', { syscall: 'spawn iptables-nft', path: 'iptables-nft' }), {
      install: IPTABLES_INSTALL_HINT,
    }),
    'iptables-nft not found: install iptables (Debian: apt-get install iptables)',
  )
  t.equal(describeError(errno('ENOENT', { syscall: 'spawn foo' })), 'foo not found in PATH')
  t.equal(
    describeError(errno('ENOENT', { syscall: 'open', path: '/etc/x.yaml' }), { action: 'read config' }),
    'read config: /etc/x.yaml does not exist',
  )
  t.equal(describeError(errno('ENOENT')), 'file does not exist')
  t.match(
    describeError(errno('EPERM')),
    /operation not permitted: run as root or with CAP_NET_ADMIN and CAP_NET_RAW \[EPERM\]/,
  )
  t.match(
    describeError(errno('EACCES', { path: '/run/xtables.lock' })),
    /permission denied.*\(\/run\/xtables\.lock\) \[EACCES\]/,
  )
  t.match(
    describeError(errno('EADDRINUSE'), { action: 'listen 127.0.0.1:9100' }),
    /^listen 127\.0\.0\.1:9100: address already in use/,
  )
  t.match(describeError(errno('EBUSY')), /NFQUEUE/)
  t.equal(describeError(errno('EWEIRD')), 'EWEIRD test')
  t.equal(describeError(new ConfigError('--x', 'bad'), { action: 'load' }), 'load: --x: bad')
  t.equal(describeError(new IptablesError('boom', { argv: [], kind: 'failed' })), 'boom')
  t.equal(describeError(new Error('plain')), 'plain')
  t.equal(describeError('text'), 'text')
})
