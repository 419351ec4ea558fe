// src/rules/manager.ts: install/remove/status against a fake iptables.
import t from 'tap'
import type { Runner } from '../../src/kernel/exec.js'
import { IptablesError } from '../../src/rules/errors.js'
import { ConfigError } from '../../src/errors.js'
import { RuleManager } from '../../src/rules/manager.js'
import { renderRestore } from '../../src/rules/restore.js'
import { compileRulePlan } from '../../src/rules/plan.js'
import { cfg, J_PRE, J_OUT, FakeTables, NFT, LEGACY } from '../helpers/rules.js'
import { streamingFake } from '../helpers/exec.js'

// A manager on the fake nft tables whose debug lines the test reads.
function debugLogged(fake: FakeTables, config: ReturnType<typeof cfg>): { m: RuleManager; debug: string[] } {
  const debug: string[] = []
  return {
    m: new RuleManager({ config, runner: fake.runner, backend: NFT, log: { debug: x => debug.push(x) } }),
    debug,
  }
}

// One field of each family's result, in family order (IPv4 then IPv6).
const perFamily = <F, K extends keyof F>(r: { families: F[] }, key: K): F[K][] => r.families.map(f => f[key])

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
      'iptables-nft -t raw -S -v',
      'nft list sets table ip raw',
      'iptables-nft-restore --noflush --wait=5',
      'ip6tables-nft -t raw -S -v',
      'nft list sets table ip6 raw',
      'ip6tables-nft-restore --noflush --wait=5',
    ],
    'nft: whether the raw table was there is noted at the first install',
  )
  // First install applies exactly the printed text (the header line says "install" instead of "rules").
  t.equal(
    fake.calls[2]!.input!.split('\n').slice(1).join('\n'),
    renderRestore(cfg(), 'ipv4').split('\n').slice(1).join('\n'),
  )
  const after1 = fake.saveText('iptables-nft-save')
  await m.install()
  t.equal(fake.saveText('iptables-nft-save'), after1, 'second install: same state')
  t.equal((await m.install()).families[0]!.jumpsRemoved, 2, 'replaces its two jumps')
  const st = await m.status()
  t.same(perFamily(st, 'upToDate'), [true, true])
  t.same(fake.table('iptables-nft-save').rules.filter(r => r.includes('NOTRACK')).length, 1)
  t.ok(logs.some(l => l.startsWith('info install ipv4: applied')))

  await m.remove()
  // nft: a base chain that only our jump used is deleted (iptables-nft created it for that jump);
  // PREROUTING holds a foreign rule and stays.
  t.same(fake.table('iptables-nft-save'), {
    chains: ['PREROUTING'],
    rules: ['-A PREROUTING -d 198.51.100.10/32 -p udp -m udp --dport 53 -j NOTRACK'],
  })
  t.notOk(fake.state.has('ip6tables-nft-save'), 'IPv6: the raw table our install created is deleted too')

  const n = fake.calls.length
  const again = await m.remove()
  t.same(perFamily(again, 'changed'), [false, false], 'remove with nothing installed is a no-op')
  t.same(
    fake.calls.slice(n).map(c => c.argv[0]),
    ['iptables-nft', 'ip6tables-nft'],
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
  t.same(
    fake.calls.slice(0, 2).map(c => c.argv.join(' ')),
    ['cat /proc/net/ip_tables_names', 'iptables-legacy-save -c -t raw'],
    'legacy: the raw table alone, read once it is known to exist',
  )
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

  fake.fail = argv =>
    argv[0]!.startsWith('ip6tables') ? { code: 1, stderr: 'ip6tables: Address family not supported' } : undefined
  const { m: m2, debug } = debugLogged(fake, cfg({ ipv6: false }))
  const r = await m2.install()
  t.equal(r.families[1]!.changed, false)
  const rr = await m2.remove()
  t.equal(rr.families[1]!.skipped, 'IPv6 is disabled (--ipv6 off)')
  t.ok(debug.some(d => d.includes('ipv6 disabled')))
  // With IPv6 on, the same failure is an error.
  const m3 = new RuleManager({ config: cfg(), runner: fake.runner, backend: NFT })
  await t.rejects(m3.remove(), IptablesError)
})

t.test('a failing family keeps what it had; the other family keeps what this call installed', async t => {
  const fake = new FakeTables()
  fake.fail = argv =>
    argv[0] === 'ip6tables-nft-restore' ? { code: 2, stderr: 'ip6tables-nft-restore: line 4 failed\n' } : undefined
  const warn: { msg: string; fields?: Record<string, unknown> }[] = []
  const m = new RuleManager({
    config: cfg(),
    runner: fake.runner,
    backend: NFT,
    log: { warn: (msg, fields) => warn.push(fields ? { msg, fields } : { msg }) },
  })
  const e = await m.install().catch((x: unknown) => x)
  t.ok(e instanceof IptablesError)
  t.equal((e as IptablesError).message, 'ip6tables-nft-restore failed (exit 2): ip6tables-nft-restore: line 4 failed')
  t.match((e as IptablesError).input!, /\*raw/)
  t.same(
    fake.table('iptables-nft-save').rules,
    ['-A DNS-SHAPER -p udp -m udp --dport 53 -j NFQUEUE --queue-num 0 --queue-bypass', J_PRE, J_OUT],
    'IPv4 keeps its working rules',
  )
  t.notOk(
    fake.calls.some(c => c.argv[0] === 'iptables-nft-restore' && c.input?.includes('-X DNS-SHAPER')),
    'no IPv4 removal was run',
  )
  t.same(fake.table('ip6tables-nft-save'), { chains: ['PREROUTING', 'OUTPUT'], rules: [] }, 'IPv6 as it was')
  t.match(warn.at(-1), {
    msg: 'rule install failed for ipv6; each family is left as logged',
    fields: { families: { ipv4: 'rules installed', ipv6: 'no rules of ours: its DNS passes unshaped' } },
  })

  // IPv6 had older rules: they stay, and the log says so. IPv4 failing does not stop IPv6.
  fake.fail = undefined
  await new RuleManager({ config: cfg({ queue: 3 }), runner: fake.runner, backend: NFT }).install()
  fake.fail = argv =>
    argv[0] === 'iptables-nft-restore' ? { code: 2, stderr: 'iptables-nft-restore: line 2 failed\n' } : undefined
  await t.rejects(m.install(), { message: /^iptables-nft-restore failed/ })
  t.match(fake.table('ip6tables-nft-save').rules, ['-A DNS-SHAPER -p udp -m udp --dport 53 -j NFQUEUE --queue-num 0 '])
  t.match(fake.table('iptables-nft-save').rules, [/--queue-num 3 /], 'IPv4 kept its previous rules')
  t.match(warn.at(-1), {
    fields: {
      families: {
        ipv4: 'kept its previous rules (they may queue an older set of query types)',
        ipv6: 'rules installed',
      },
    },
  })
})

t.test('remove on nft deletes the built-in chains our jumps created, and only those', async t => {
  const fake = new FakeTables()
  // A chain that held a foreign rule before we installed keeps existing even if it is empty at removal.
  const s6 = fake.table('ip6tables-nft-save')
  s6.rules.push('-A OUTPUT -d 2001:db8::1/128 -j ACCEPT')
  const m = new RuleManager({ config: cfg(), runner: fake.runner, backend: NFT })
  await m.install()
  fake.table('ip6tables-nft-save').rules.splice(0, 1) // the foreign rule goes away meanwhile
  await m.remove()
  t.notOk(fake.state.has('iptables-nft-save'), 'IPv4: no table left: the one our install created is deleted (nft)')
  t.same(fake.table('ip6tables-nft-save'), { chains: ['OUTPUT'], rules: [] }, 'IPv6: OUTPUT was in use before')
  const removal = fake.calls.find(c => c.argv[0] === 'iptables-nft-restore' && c.input?.includes('-X DNS-SHAPER'))
  t.match(removal?.input, /-X DNS-SHAPER\n-X PREROUTING\n-X OUTPUT\nCOMMIT\n$/)

  // A fresh process (`dns-shaper rules remove`) knows nothing of before: chains holding only our jump go.
  await m.install()
  fake.table('ip6tables-nft-save').rules.unshift('-A PREROUTING -j ACCEPT')
  await new RuleManager({ config: cfg(), runner: fake.runner, backend: NFT }).remove()
  t.same(fake.table('ip6tables-nft-save'), { chains: ['PREROUTING'], rules: ['-A PREROUTING -j ACCEPT'] })

  // The kernel refuses (a rule landed in the chain meanwhile, or an old iptables-nft): ours go anyway.
  await m.install()
  fake.fail = argv =>
    argv[0] === 'iptables-nft-restore' && !fake.calls.at(-1)!.input!.includes('-X PREROUTING')
      ? undefined
      : argv[0] === 'iptables-nft-restore'
        ? { code: 1, stderr: 'iptables-nft-restore: line 6 failed: Directory not empty.\n' }
        : undefined
  await m.remove()
  t.same(fake.table('iptables-nft-save').rules, [], 'IPv4 rules removed on the retry')

  // Legacy never deletes built-in chains (it cannot).
  fake.fail = undefined
  const l = new RuleManager({ config: cfg(), runner: fake.runner, backend: LEGACY })
  await l.install()
  await l.remove()
  t.same(fake.table('iptables-legacy-save'), { chains: ['PREROUTING', 'OUTPUT'], rules: [] })
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
  t.same(perFamily(r, 'family'), ['ipv4', 'ipv6'], 'both families, once')
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
      'iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)\n',
  })
  m = new RuleManager({ config: cfg(), runner: fake.runner, backend: NFT })
  await t.rejects(m.status(), {
    kind: 'permission',
    message: 'iptables-nft: permission denied: run as root or with CAP_NET_ADMIN and CAP_NET_RAW',
  })

  fake.fail = () => ({ code: null, timedOut: true })
  m = new RuleManager({ config: cfg(), runner: fake.runner, backend: NFT, timeoutMs: 1234 })
  await t.rejects(m.status(), {
    kind: 'timeout',
    message: 'iptables-nft did not finish within 1234 ms and was killed',
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
  t.same(fake.calls[0]!.argv, ['ip', 'netns', 'exec', 'dnss-1-x', 'iptables-nft', '-t', 'raw', '-S', '-v'])
  fake.calls = []
  await new RuleManager({
    config: cfg({ ipv6: false }),
    runner: fake.runner,
    backend: NFT,
    wrap: ['nsenter', '-t', '1', '-n'],
  }).status()
  t.same(fake.calls[0]!.argv, ['nsenter', '-t', '1', '-n', 'iptables-nft', '-t', 'raw', '-S', '-v'])
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
  const runner: Runner = streamingFake(async (argv, opts) => {
    if (argv.join(' ') === 'iptables-nft -t mangle -S') {
      detections++
      if (failNext) {
        failNext = false
        return { code: 4, signal: null, stdout: '', stderr: 'Permission denied', timedOut: false }
      }
      return {
        code: 0,
        signal: null,
        stdout: '-P PREROUTING ACCEPT\n-N KUBE-IPTABLES-HINT\n',
        stderr: '',
        timedOut: false,
      }
    }
    return fake.runner(argv, opts)
  })
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
  t.same(perFamily(st, 'upToDate'), [true, true])
})

t.test('each operation works from the plan it is handed, so a stale filter is not up to date', async t => {
  const fake = new FakeTables()
  const m = new RuleManager({ config: cfg({ kernelFilter: 'bpf', mode: 'fixed' }), runner: fake.runner, backend: NFT })
  await m.install()
  t.same(
    (await m.status()).families.map(f => f.upToDate),
    [true, true],
  )
  const next = compileRulePlan(cfg({ kernelFilter: 'bpf', mode: 'fixed', qtypes: [28, 65] }))
  t.same(
    (await m.status(next)).families.map(f => f.upToDate),
    [false, false],
    'the live program queues AAAA only',
  )
  await m.install(next)
  t.same(
    (await m.status(next)).families.map(f => f.upToDate),
    [true, true],
  )
  t.same(
    (await m.status()).families.map(f => f.upToDate),
    [false, false],
    'the manager kept no plan: without one, it compares with its construction config',
  )
  // Was "setConfig refuses queue -1": no rule plan can hold one (the queue parser refuses it).
  t.throws(() => compileRulePlan(cfg({ queue: -1 })), ConfigError)
})

t.test('with IPv4 off (IPv6-only nodes), iptables is never required: its failures are only logged', async t => {
  const fake = new FakeTables()
  fake.fail = argv =>
    /^iptables-/.test(argv[0]!)
      ? { code: 1, stderr: "iptables v1.8.9 (legacy): can't initialize iptables table `raw'" }
      : undefined
  const { m, debug } = debugLogged(fake, cfg({ ipv4: false }))
  const r = await m.install()
  t.same(r.families[0], {
    family: 'ipv4',
    changed: false,
    jumpsRemoved: 0,
    input: null,
    skipped: 'IPv4 is disabled (--ipv4 off)',
  })
  t.equal(r.families[1]!.changed, true, 'IPv6 rules installed')
  t.ok(fake.table('ip6tables-nft-save').rules.includes(J_OUT))
  t.same(
    (await m.status()).families.map(f => f.family),
    ['ipv6'],
    'status reads IPv6 only',
  )
  const rr = await m.remove()
  t.equal(rr.families[0]!.skipped, 'IPv4 is disabled (--ipv4 off)')
  t.ok(debug.some(d => d.includes('ipv4 disabled')))
  // With IPv4 on, the same failure is an error.
  await t.rejects(new RuleManager({ config: cfg(), runner: fake.runner, backend: NFT }).install(), IptablesError)
})

t.test('legacy: a node without a raw table is never given one by a read; the raw table alone is read', async t => {
  const fake = new FakeTables()
  const m = new RuleManager({ config: cfg(), runner: fake.runner, backend: LEGACY })
  const st = await m.status()
  t.same(perFamily(st, 'chainPresent'), [false, false])
  const rr = await m.remove()
  t.same(perFamily(rr, 'changed'), [false, false], 'nothing to remove')
  t.notOk(
    fake.calls.some(c => c.argv.includes('-t') || /save$/.test(c.argv[0]!)),
    `no save ran: ${fake.calls.map(c => c.argv.join(' ')).join('; ')}`,
  )
  t.notOk(fake.state.has('iptables-legacy-save'), 'no raw table created')
  await m.install()
  fake.calls = []
  await m.status()
  t.same(
    fake.calls.map(c => c.argv.join(' ')),
    ['iptables-legacy-save -c -t raw', 'ip6tables-legacy-save -c -t raw'],
    'after our own install: -t raw, never every table, and the names file is not read again',
  )
})

t.test('nft: a raw table is deleted at removal only when nft said it was missing before the install', async t => {
  // nft answers with ENOENT when the table is missing; any other failure means it cannot tell.
  for (const [stderr, deleted] of [
    ['Error: No such file or directory\nlist sets table ip raw\n', true],
    ['Error: Could not process rule: Operation not permitted\n', false],
  ] as const) {
    const fake = new FakeTables()
    fake.fail = argv => (argv[0] === 'nft' && argv[2] === 'sets' ? { code: 1, stderr } : undefined)
    const m = new RuleManager({ config: cfg({ ipv6: false }), runner: fake.runner, backend: NFT })
    await m.install()
    fake.fail = undefined
    await m.remove()
    t.equal(!fake.state.has('iptables-nft-save'), deleted, `nft said ${JSON.stringify(stderr.split('\n')[0])}`)
  }
})
