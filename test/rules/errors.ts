// src/rules/errors.ts: IptablesError and the wording built from a failed iptables command.
import t from 'tap'
import {
  IptablesError,
  classifyIptablesFailure,
  iptablesFailure,
  iptablesSpawnFailure,
} from '../../src/rules/errors.js'

function errno(code: string, extra: Record<string, string> = {}): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code} test`), { code, ...extra })
}

t.test('IptablesError keeps argv, stderr and locked', async t => {
  const argv = ['iptables-legacy-restore', '--noflush']
  const e = new IptablesError('x', { argv, kind: 'locked', exitCode: 4, stderr: 'held', input: '*raw\n' })
  argv.push('mutated')
  t.same(e.argv, ['iptables-legacy-restore', '--noflush'])
  t.equal(e.locked, true)
  t.equal(e.exitCode, 4)
  t.equal(e.stderr, 'held')
  t.equal(e.input, '*raw\n')
  t.equal(e.name, 'IptablesError')
  const f = new IptablesError('y', { argv: [], kind: 'failed' })
  t.equal(f.locked, false)
  t.equal(f.exitCode, null)
  t.equal(f.stderr, '')
  t.equal(f.cause, undefined)
})

t.test('classifyIptablesFailure', async t => {
  t.equal(
    classifyIptablesFailure(
      "Can't lock /run/xtables.lock: Resource temporarily unavailable\nAnother app is currently holding the xtables lock. Stopped waiting after 5s.\n",
      4,
    ),
    'locked',
  )
  t.equal(
    classifyIptablesFailure(
      'Another app is currently holding the xtables lock. Perhaps you want to use the -w option?',
      4,
    ),
    'locked',
  )
  t.equal(
    classifyIptablesFailure(
      'iptables-nft-save v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)\n',
      4,
    ),
    'permission',
  )
  t.equal(
    classifyIptablesFailure("Fatal: can't open lock file /run/xtables.lock: Permission denied\n", 4),
    'permission',
  )
  t.equal(
    classifyIptablesFailure("iptables v1.4.21: can't initialize iptables table `raw': Operation not permitted", 3),
    'permission',
  )
  t.equal(classifyIptablesFailure('exec of "iptables-legacy-save" failed: No such file or directory\n', 1), 'missing')
  t.equal(classifyIptablesFailure('iptables-restore: line 3 failed\n', 1), 'failed')
})

t.test('iptablesFailure builds clear messages', async t => {
  const argv = ['ip', 'netns', 'exec', 'ns1', 'iptables-legacy-restore', '--noflush', '--wait=5']
  const locked = iptablesFailure(
    argv,
    { code: 4, stderr: 'Another app is currently holding the xtables lock. Stopped waiting after 5s.' },
    { input: 'in', waitSeconds: 5 },
  )
  t.equal(locked.locked, true)
  t.equal(locked.kind, 'locked')
  t.same(locked.argv, argv)
  t.equal(locked.input, 'in')
  t.match(
    locked.message,
    /^iptables-legacy-restore: another program holds the xtables lock and did not release it within 5s/,
  )
  const lockedNoWait = iptablesFailure(['iptables-restore'], { code: 4, stderr: 'holding the xtables lock' })
  t.match(lockedNoWait.message, /^iptables-restore: another program holds the xtables lock; retry/)

  const perm = iptablesFailure(['iptables-nft-save'], { code: 4, stderr: 'Permission denied (you must be root)' })
  t.equal(perm.message, 'iptables-nft-save: permission denied: run as root or with CAP_NET_ADMIN and CAP_NET_RAW')
  t.equal(perm.locked, false)

  const missing = iptablesFailure(['ip', 'netns', 'exec', 'x', 'iptables-legacy-save'], {
    code: 1,
    stderr: 'exec of "iptables-legacy-save" failed: No such file or directory',
  })
  t.equal(missing.message, 'iptables-legacy-save not found: install iptables (Debian: apt-get install iptables)')

  const failed = iptablesFailure(['ip6tables-nft-restore', '--noflush'], {
    code: 2,
    stderr:
      "ip6tables-nft-restore v1.8.9 (nf_tables): Chain 'X' does not exist\nError occurred at line: 3\nTry `ip6tables-nft-restore -h' or 'ip6tables-nft-restore --help' for more information.\n",
  })
  t.equal(
    failed.message,
    "ip6tables-nft-restore failed (exit 2): ip6tables-nft-restore v1.8.9 (nf_tables): Chain 'X' does not exist; Error occurred at line: 3",
  )
  t.equal(failed.exitCode, 2)
  t.equal(iptablesFailure(['iptables-save'], { code: null, stderr: '' }).message, 'iptables-save failed (killed)')
  t.equal(iptablesFailure(['iptables-save'], { code: 1, stderr: '' }).message, 'iptables-save failed (exit 1)')
  t.equal(iptablesFailure([], { code: 1, stderr: '' }).message, 'iptables failed (exit 1)')
  t.equal(iptablesFailure(['foo'], { code: 1, stderr: '' }).message, 'foo failed (exit 1)')

  const timeout = iptablesFailure(['iptables-nft-save'], { code: null, stderr: '', timedOut: true }, { timeoutMs: 100 })
  t.equal(timeout.kind, 'timeout')
  t.equal(timeout.message, 'iptables-nft-save did not finish within 100 ms and was killed')
  t.match(iptablesFailure(['x'], { code: null, stderr: '', timedOut: true }).message, /within \? ms/)
})

t.test('iptablesSpawnFailure', async t => {
  const e = iptablesSpawnFailure(
    ['iptables-nft-restore', '--noflush'],
    errno('ENOENT', { path: 'iptables-nft-restore', syscall: 'spawn iptables-nft-restore' }),
    'input',
  )
  t.equal(e.message, 'iptables-nft-restore not found: install iptables (Debian: apt-get install iptables)')
  t.equal(e.kind, 'missing')
  t.equal(e.input, 'input')
  t.equal((e.cause as NodeJS.ErrnoException).code, 'ENOENT')
  const ip = iptablesSpawnFailure(['ip', 'netns', 'exec', 'n', 'iptables-save'], errno('ENOENT', { path: 'ip' }))
  t.equal(ip.message, 'ip not found: install iproute2 (Debian: apt-get install iproute2)')
  t.equal(
    iptablesSpawnFailure(['iptables-save'], errno('ENOENT')).message,
    'iptables-save not found: install iptables (Debian: apt-get install iptables)',
  )
  const acc = iptablesSpawnFailure(['iptables-save'], errno('EACCES'))
  t.equal(acc.kind, 'permission')
  t.match(acc.message, /CAP_NET_ADMIN/)
  t.equal(iptablesSpawnFailure(['iptables-save'], errno('EPERM')).kind, 'permission')
  const other = iptablesSpawnFailure(['iptables-save'], new Error('maxBuffer exceeded'))
  t.equal(other.kind, 'failed')
  t.equal(other.message, 'iptables-save: maxBuffer exceeded')
})
