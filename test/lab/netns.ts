// Unit tests of the lab library without root or network: fake runner/spawner, pure helpers, probe loop over a fake socket.

import t from 'tap'
import { EventEmitter } from 'node:events'
import type { ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import dnsPacket from 'dns-packet'
import {
  LAB_PREFIX,
  LabError,
  MAX_NAME_LENGTH,
  Netns,
  execRunner,
  isLabError,
  killAndWait,
  listNamespaces,
  liveNamespaceCount,
  makeLabId,
  nsExecArgv,
  parseNetnsList,
  randomToken,
  resolvConfText,
  sysctlArgv,
  validateName,
} from '../../lab/src/netns.js'
import type { LabExecResult, LabRunner, Spawner } from '../../lab/src/netns.js'
import type { ExecOptions } from '../../src/kernel/exec.js'
import {
  LAB_ADDR,
  MAX_EXTRA_SERVERS,
  createLab,
  labNamespaceNames,
  serverAddress,
  waitFor,
} from '../../lab/src/topology.js'
import { V4_ONLY_NAME, buildUnboundConfig, digArgv, zoneRecords } from '../../lab/src/unbound.js'
import {
  PROBE_DEFAULTS,
  ProbeArgError,
  buildQuery,
  familyOf,
  parseProbeArgs,
  parseReply,
  parseTypes,
  percentile,
  probeArgv,
  probeTimeBoundMs,
  replyMatches,
  runProbe,
  summarize,
} from '../../lab/src/dns-probe-lib.js'
import type { OpenSocket, ProbeOptions, ProbeSocket, ProbeType } from '../../lab/src/dns-probe-lib.js'
import { resolveProbeScript, runProbeIn } from '../../lab/src/probe-runner.js'

// --- fakes ---------------------------------------------------------------------------

type Responder = (argv: string[]) => Partial<LabExecResult> | undefined

function fakeRunner(respond: Responder = () => undefined): {
  runner: LabRunner
  calls: string[][]
  opts: ExecOptions[]
} {
  const calls: string[][] = []
  const opts: ExecOptions[] = []
  const runner: LabRunner = async (argv, o) => {
    calls.push(argv)
    opts.push(o)
    return { argv, stdout: '', stderr: '', code: 0, signal: null, timedOut: false, ...respond(argv) }
  }
  return { runner, calls, opts }
}

class FakeChild extends EventEmitter {
  exitCode: number | null = null
  signalCode: NodeJS.Signals | null = null
  pid = 4242
  signals: string[] = []
  ignoreTerm = false
  kill(sig: NodeJS.Signals = 'SIGTERM'): boolean {
    this.signals.push(sig)
    if (sig === 'SIGTERM' && this.ignoreTerm) return true
    this.signalCode = sig
    setImmediate(() => this.emit('exit', null, sig))
    return true
  }
}

function fakeSpawner(): { spawner: Spawner; spawned: Array<{ argv: string[]; child: FakeChild }> } {
  const spawned: Array<{ argv: string[]; child: FakeChild }> = []
  const spawner: Spawner = argv => {
    const child = new FakeChild()
    spawned.push({ argv, child })
    return child as unknown as ChildProcess
  }
  return { spawner, spawned }
}

// --- names and argv ------------------------------------------------------------------

t.test('makeLabId: prefix, base36 pid, random, fits with one role char', async t => {
  const id = makeLabId({ pid: 4194304, random: 'abc' })
  t.equal(id, `${LAB_PREFIX}2hwcg-abc`)
  t.ok(id.length + 1 <= MAX_NAME_LENGTH)
  t.match(makeLabId(), /^dnss-[0-9a-z]+-[0-9a-z]{3}$/)
  t.not(makeLabId(), makeLabId({ random: 'zzz' }))
  t.throws(() => makeLabId({ prefix: 'much-too-long-prefix-' }), LabError)
  t.equal(
    randomToken(4, n => Buffer.alloc(n, 37)),
    '1111',
  )
  t.equal(randomToken(5).length, 5)
})

t.test('validateName rejects path-like and long names', async t => {
  t.doesNotThrow(() => validateName('dnss-1-abcc'))
  for (const bad of ['', '../x', 'a/b', '-x', '.x', 'a b', 'x'.repeat(16)])
    t.throws(() => validateName(bad), LabError, bad)
})

t.test('argv builders', async t => {
  t.same(nsExecArgv('n1', ['ip', 'addr']), ['ip', 'netns', 'exec', 'n1', 'ip', 'addr'])
  t.same(sysctlArgv('n1', 'net.ipv4.ip_forward', 1), [
    'ip',
    'netns',
    'exec',
    'n1',
    'sysctl',
    '-q',
    '-w',
    'net.ipv4.ip_forward=1',
  ])
  t.throws(() => sysctlArgv('n1', 'a b; rm', 1), LabError)
  t.same(digArgv('203.0.113.53', 53, 'host1.example.test.', 'AAAA'), [
    'dig',
    '@203.0.113.53',
    '-p',
    '53',
    '+time=1',
    '+tries=1',
    '+short',
    '+norecurse',
    'host1.example.test.',
    'AAAA',
  ])
})

t.test('resolvConfText and parseNetnsList', async t => {
  const txt = resolvConfText(['203.0.113.53', '2001:db8:2::53'], {
    search: ['lab.svc.cluster.local'],
    options: ['ndots:5'],
  })
  t.match(txt, /^search lab\.svc\.cluster\.local$/m)
  t.match(txt, /^nameserver 203\.0\.113\.53\nnameserver 2001:db8:2::53$/m)
  t.match(txt, /^options ndots:5$/m)
  t.notMatch(resolvConfText(['192.0.2.1']), /search|options/)
  t.same(parseNetnsList('dnss-a-bcdc (id: 2)\nother\n\n  dnss-x (id: 0)\n'), ['dnss-a-bcdc', 'other', 'dnss-x'])
})

t.test('listNamespaces filters by prefix and reports failure', async t => {
  const ok = fakeRunner(() => ({ stdout: 'dnss-1-aaac (id: 1)\nfoo\ndnss-2-bbbr\n' }))
  t.same(await listNamespaces(LAB_PREFIX, ok.runner), ['dnss-1-aaac', 'dnss-2-bbbr'])
  t.same(await listNamespaces('dnss-2-', ok.runner), ['dnss-2-bbbr'])
  const bad = fakeRunner(() => ({ code: 1, stderr: 'boom' }))
  await t.rejects(listNamespaces(LAB_PREFIX, bad.runner), /ip netns list/)
})

t.test('execRunner: exit codes, missing command, timeout, stdin', async t => {
  const ok = await execRunner([process.execPath, '-e', 'process.stdout.write("hi"); process.stderr.write("e")'], {})
  t.match(ok, { code: 0, stdout: 'hi', stderr: 'e', timedOut: false })
  const fail = await execRunner([process.execPath, '-e', 'process.exit(3)'], {})
  t.equal(fail.code, 3)
  const missing = await execRunner(['/nonexistent/dnss-cmd'], {})
  t.equal(missing.code, 127)
  t.match(missing.stderr, /ENOENT/)
  const slow = await execRunner([process.execPath, '-e', 'setTimeout(() => {}, 5000)'], { timeoutMs: 100 })
  t.equal(slow.timedOut, true)
  t.equal(slow.signal, 'SIGKILL')
  const echo = await execRunner([process.execPath, '-e', 'process.stdin.pipe(process.stdout)'], { input: 'in!' })
  t.equal(echo.stdout, 'in!')
  await t.rejects(execRunner([], {}), LabError)
})

// --- Netns with a fake runner ----------------------------------------------------------

t.test('Netns lifecycle with fake runner and spawner', async t => {
  const etcDir = mkdtempSync(join(tmpdir(), 'dnss-etc-'))
  t.teardown(() => rmSync(etcDir, { recursive: true, force: true }))
  const fr = fakeRunner(argv => (argv.includes('false') ? { code: 1, stderr: 'Operation not permitted' } : undefined))
  const fs = fakeSpawner()
  const before = liveNamespaceCount()
  const ns = await Netns.create('dnss-t-unit', { runner: fr.runner, spawner: fs.spawner, etcDir })
  t.equal(liveNamespaceCount(), before + 1)
  t.ok(ns.alive)
  t.same(fr.calls[0], ['ip', 'netns', 'add', 'dnss-t-unit'])
  t.same(fr.calls[1], ['ip', 'netns', 'exec', 'dnss-t-unit', 'ip', 'link', 'set', 'lo', 'up'])

  const r = await ns.exec(['echo', 'x'], { timeoutMs: 123 })
  t.same(r.argv, ['ip', 'netns', 'exec', 'dnss-t-unit', 'echo', 'x'])
  t.equal(fr.opts.at(-1)?.timeoutMs, 123)
  const err = await ns.execOk(['false']).catch((e: unknown) => e)
  t.ok(isLabError(err))
  t.match((err as LabError).message, /dnss-t-unit.*false.*Operation not permitted.*run as root/s)
  t.same((err as LabError).argv, ['ip', 'netns', 'exec', 'dnss-t-unit', 'false'])

  await ns.sysctl('net.ipv4.ip_forward', 1)
  t.same(fr.calls.at(-1), sysctlArgv('dnss-t-unit', 'net.ipv4.ip_forward', 1))

  const file = ns.writeResolvConf(['203.0.113.53'])
  t.equal(file, join(etcDir, 'dnss-t-unit', 'resolv.conf'))
  t.match(readFileSync(file, 'utf8'), /nameserver 203\.0\.113\.53/)

  const child = ns.spawn(['unbound', '-d'])
  t.same(fs.spawned[0]?.argv, ['ip', 'netns', 'exec', 'dnss-t-unit', 'unbound', '-d'])
  t.equal(ns.children.length, 1)
  t.ok(child)

  const d1 = ns.destroy()
  t.equal(ns.destroy(), d1, 'destroy is idempotent (same promise)')
  await d1
  t.same(fs.spawned[0]?.child.signals, ['SIGTERM'])
  t.same(fr.calls.at(-1), ['ip', 'netns', 'del', 'dnss-t-unit'])
  t.notOk(existsSync(join(etcDir, 'dnss-t-unit')), '/etc/netns dir removed')
  t.notOk(ns.alive)
  t.equal(liveNamespaceCount(), before)
  await t.rejects(ns.exec(['true']), /destroyed/)
  t.throws(() => ns.spawn(['x']), /destroyed/)
  ns.destroySync() // no-op once destroyed
})

t.test('Netns.create failure explains; destroy failure reported', async t => {
  const exists = fakeRunner(() => ({ code: 1, stderr: 'Cannot create namespace file "/run/netns/x": File exists' }))
  await t.rejects(
    Netns.create('dnss-t-dup', { runner: exists.runner }),
    /cannot create network namespace dnss-t-dup.*listNamespaces/s,
  )
  const loFails = fakeRunner(argv =>
    argv.includes('lo') ? { code: 1, stderr: 'RTNETLINK answers: Operation not permitted' } : undefined,
  )
  const before = liveNamespaceCount()
  await t.rejects(Netns.create('dnss-t-lo', { runner: loFails.runner }), /ip link set lo up.*run as root/s)
  t.same(loFails.calls.at(-1), ['ip', 'netns', 'del', 'dnss-t-lo'], 'half-made namespace deleted')
  t.equal(liveNamespaceCount(), before)
  const delFails = fakeRunner(argv => (argv[2] === 'del' ? { code: 1, stderr: 'Device busy' } : undefined))
  const ns = await Netns.create('dnss-t-del', { runner: delFails.runner })
  await t.rejects(ns.destroy(), /cleanup of namespace dnss-t-del incomplete.*ip netns del dnss-t-del/s)
  const sysFails = fakeRunner(argv => (argv.includes('sysctl') ? { code: 255, stderr: 'unknown key' } : undefined))
  const ns2 = await Netns.create('dnss-t-sys', { runner: sysFails.runner })
  await t.rejects(ns2.sysctl('net.ipv6.conf.all.forwarding', 1), /sysctl net\.ipv6\.conf\.all\.forwarding=1 failed/)
  const hung = fakeRunner(argv =>
    argv.includes('sleep') ? { code: null, signal: 'SIGKILL', timedOut: true } : undefined,
  )
  const ns3 = await Netns.create('dnss-t-hung', { runner: hung.runner })
  await t.rejects(ns3.execOk(['sleep', '99']), /timed out.*raise timeoutMs/s)
  await ns2.destroy()
  await ns3.destroy()
})

t.test('destroySync and killAndWait escalation', async t => {
  const fr = fakeRunner()
  const fs = fakeSpawner()
  const ns = await Netns.create('dnss-t-sync', { runner: fr.runner, spawner: fs.spawner })
  ns.spawn(['sleep', '100'])
  // destroySync runs the real `ip netns del` on a name that does not exist: errors are swallowed.
  ns.destroySync()
  t.same(fs.spawned[0]?.child.signals, ['SIGKILL'])
  t.notOk(ns.alive)
  await ns.destroy()

  const stubborn = new FakeChild()
  stubborn.ignoreTerm = true
  await killAndWait(stubborn as unknown as ChildProcess, 20)
  t.same(stubborn.signals, ['SIGTERM', 'SIGKILL'])
  const dead = new FakeChild()
  dead.exitCode = 0
  await killAndWait(dead as unknown as ChildProcess, 20)
  t.same(dead.signals, [])
})

// --- topology with a fake runner -------------------------------------------------------

t.test('labNamespaceNames and serverAddress', async t => {
  const n = labNamespaceNames('dnss-1-abc', 2)
  t.same(n, { client: 'dnss-1-abcc', router: 'dnss-1-abcr', servers: ['dnss-1-abcs', 'dnss-1-abc1', 'dnss-1-abc2'] })
  t.equal(labNamespaceNames('dnss-1-abc', MAX_EXTRA_SERVERS).servers.at(-1), 'dnss-1-abcz')
  t.throws(() => labNamespaceNames('x', MAX_EXTRA_SERVERS + 1), /extraServers/)
  t.throws(() => labNamespaceNames('x', -1), /extraServers/)
  t.same(serverAddress(0), { ipv4: '203.0.113.53', ipv6: '2001:db8:2::53' })
  t.same(serverAddress(2), { ipv4: '203.0.113.55', ipv6: '2001:db8:2::55' })
  t.throws(() => serverAddress(-1), /out of range/)
  t.throws(() => serverAddress(500), /out of range/)
})

t.test('waitFor is bounded', async t => {
  let n = 0
  t.equal(await waitFor(async () => ++n >= 3, 1000, 1), true)
  t.equal(n, 3)
  const t0 = Date.now()
  t.equal(await waitFor(async () => false, 50, 10), false)
  t.ok(Date.now() - t0 < 1000)
})

function labRunner(opts: { linkDown?: boolean } = {}): ReturnType<typeof fakeRunner> {
  return fakeRunner(argv => {
    if (argv.includes('link') && argv.includes('show')) {
      return {
        stdout: opts.linkDown
          ? '2: eth0: <BROADCAST,UP> mtu 1500'
          : '2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500',
      }
    }
    return undefined
  })
}

t.test('createLab builds the topology with argv only inside lab namespaces', async t => {
  const fr = labRunner()
  const lab = await createLab({ id: 'dnss-t-lab', extraServers: 1, netns: { runner: fr.runner } })
  t.equal(lab.client.name, 'dnss-t-labc')
  t.equal(lab.router.name, 'dnss-t-labr')
  t.same(
    lab.servers.map(s => [s.name, s.ipv4, s.ipv6]),
    [
      ['dnss-t-labs', '203.0.113.53', '2001:db8:2::53'],
      ['dnss-t-lab1', '203.0.113.54', '2001:db8:2::54'],
    ],
  )
  t.equal(lab.server, lab.servers[0])
  t.equal(lab.client.ipv4, LAB_ADDR.client.ipv4)
  t.equal(lab.namespaces.length, 4)
  for (const argv of fr.calls) {
    // Every command is either namespace management or runs inside a lab namespace.
    t.ok(
      argv.slice(0, 3).join(' ') === 'ip netns add' ||
        argv.slice(0, 4).join(' ').startsWith('ip netns exec dnss-t-lab'),
      argv.join(' '),
    )
  }
  const flat = fr.calls.map(a => a.join(' '))
  t.ok(flat.includes('ip netns exec dnss-t-labr sysctl -q -w net.ipv4.ip_forward=1'))
  t.ok(flat.includes('ip netns exec dnss-t-labr sysctl -q -w net.ipv6.conf.all.forwarding=1'))
  t.ok(flat.includes('ip netns exec dnss-t-labc ip -6 addr add 2001:db8:1::2/64 dev eth0 nodad'))
  t.ok(flat.includes('ip netns exec dnss-t-labc ip link add eth0 type veth peer name veth-c netns dnss-t-labr'))
  t.ok(flat.includes('ip netns exec dnss-t-lab1 ip link add eth0 type veth peer name veth-s1 netns dnss-t-labr'))
  t.ok(flat.includes('ip netns exec dnss-t-labr ip link set veth-s1 master br-s'))
  t.ok(flat.includes('ip netns exec dnss-t-labs ip -6 route add default via 2001:db8:2::1'))
  const before = fr.calls.length
  await Promise.all([lab.destroy(), lab.destroy()])
  const dels = fr.calls.slice(before).filter(a => a[2] === 'del')
  t.equal(dels.length, 4, 'each namespace deleted once')
})

t.test('createLab cleans up when a step fails', async t => {
  const down = labRunner({ linkDown: true })
  await t.rejects(
    createLab({ id: 'dnss-t-dwn', settleTimeoutMs: 30, netns: { runner: down.runner } }),
    /link eth0 in dnss-t-dwnc not ready/,
  )
  t.equal(down.calls.filter(a => a[2] === 'del').length, 3, 'all created namespaces deleted')
  const failing = fakeRunner(argv =>
    argv.includes('bridge') ? { code: 2, stderr: 'Unknown device type.' } : undefined,
  )
  await t.rejects(createLab({ id: 'dnss-t-brf', netns: { runner: failing.runner } }), /bridge.*Unknown device type/s)
  t.equal(failing.calls.filter(a => a[2] === 'del').length, 3)
  await t.rejects(createLab({ extraServers: 99 }), /extraServers/)
})

// --- unbound config ---------------------------------------------------------------------

t.test('zoneRecords and buildUnboundConfig', async t => {
  const recs = zoneRecords({
    hosts: 3,
    services: 2,
    k8sNamespace: 'kube-system',
    records: [{ name: 'x.example.test', type: 'TXT', value: 'hi' }],
  })
  t.same(
    recs.filter(r => r.name === 'host2.example.test.').map(r => [r.type, r.value]),
    [
      ['A', '192.0.2.2'],
      ['AAAA', '2001:db8:ff::2'],
    ],
  )
  t.ok(recs.some(r => r.name === 'svc2.kube-system.svc.cluster.local.' && r.type === 'AAAA'))
  t.same(
    recs.filter(r => r.name === V4_ONLY_NAME).map(r => r.type),
    ['A'],
  )
  t.throws(() => zoneRecords({ hosts: 251 }), /hosts/)
  t.throws(() => zoneRecords({ k8sNamespace: 'Bad_NS' }), /k8sNamespace/)

  const conf = buildUnboundConfig({
    addresses: ['203.0.113.53', '2001:db8:2::53'],
    dir: '/tmp/u',
    logFile: '/tmp/u/unbound.log',
    records: [...recs, { name: 'c.example.test', type: 'CNAME', value: 'host1.example.test' }],
  })
  for (const line of [
    'interface: 203.0.113.53',
    'interface: 2001:db8:2::53',
    'so-rcvbuf: 8m',
    'num-threads: 1',
    'chroot: ""',
    'username: ""',
    'do-daemonize: no',
    'logfile: "/tmp/u/unbound.log"',
    'local-zone: "example.test." static',
    'local-zone: "cluster.local." static',
    'local-zone: "." refuse',
    'local-data: "host1.example.test. 30 IN A 192.0.2.1"',
    'local-data: "x.example.test. 30 IN TXT \'hi\'"',
    'local-data: "c.example.test. 30 IN CNAME host1.example.test."',
    'port: 53',
  ]) {
    t.ok(conf.includes(`  ${line}\n`), line)
  }
  t.throws(() => buildUnboundConfig({ addresses: [], dir: '/d', logFile: '/d/l', records: [] }), /at least one/)
  t.throws(() => buildUnboundConfig({ addresses: ['a'], dir: '/d"x', logFile: '/d/l', records: [] }), /unsafe/)
  t.throws(
    () =>
      buildUnboundConfig({
        addresses: ['a'],
        dir: '/d',
        logFile: '/d/l',
        records: [{ name: 'a', type: 'TXT', value: "'" }],
      }),
    /unsafe/,
  )
})

// --- probe library ----------------------------------------------------------------------

t.test('percentile (nearest rank)', async t => {
  t.ok(Number.isNaN(percentile([], 50)))
  t.equal(percentile([5], 99), 5)
  const v = [10, 1, 9, 2, 8, 3, 7, 4, 6, 5]
  t.equal(percentile(v, 0), 1)
  t.equal(percentile(v, 10), 1)
  t.equal(percentile(v, 11), 2)
  t.equal(percentile(v, 50), 5)
  t.equal(percentile(v, 90), 9)
  t.equal(percentile(v, 99), 10)
  t.equal(percentile(v, 100), 10)
  t.same(v, [10, 1, 9, 2, 8, 3, 7, 4, 6, 5], 'input not mutated')
  t.throws(() => percentile(v, 101), RangeError)
  t.throws(() => percentile(v, Number.NaN), RangeError)
})

t.test('parseProbeArgs', async t => {
  const o = parseProbeArgs([
    '--server',
    '203.0.113.53',
    '--type=aaaa',
    '--names',
    'a.test,b.test',
    '--count',
    '5',
    '--interval-ms',
    '2',
    '--timeout-ms',
    '300',
    '--fresh-socket',
    '--no-samples',
    '--port',
    '5353',
    '--max-duration-ms',
    '1000',
  ])
  t.match(o, {
    server: '203.0.113.53',
    port: 5353,
    types: ['AAAA'],
    names: ['a.test', 'b.test'],
    count: 5,
    intervalMs: 2,
    timeoutMs: 300,
    freshSocket: true,
    samples: false,
    pair: false,
    maxDurationMs: 1000,
  })
  t.same(parseProbeArgs(['--server', '2001:db8:2::53', '--pair']).types, ['A', 'AAAA'])
  t.same(parseProbeArgs(['--server', '2001:db8:2::53', '--pair', '--type', 'AAAA,A']).types, ['AAAA', 'A'])
  t.same(parseProbeArgs(['--server', '192.0.2.1', '--name', 'x.test']).names, ['x.test'])
  const bad: Array<[string[], RegExp]> = [
    [[], /--server: required/],
    [['--server', 'example.com'], /--server/],
    [['--server', '192.0.2.1', '--count', '0'], /--count: expected an integer 1\.\./],
    [['--server', '192.0.2.1', '--count', '1e3'], /--count/],
    [['--server', '192.0.2.1', '--count', String(2_000_000)], /--count/],
    [['--server', '192.0.2.1', '--type', 'BOGUS'], /unknown type "BOGUS"; accepted: A, AAAA/],
    [['--server', '192.0.2.1', '--type', ''], /unknown type/],
    [['--server', '192.0.2.1', '--name', 'bad name'], /invalid name/],
    [['--server', '192.0.2.1', '--names', ','], /--names/],
    [['--server', '192.0.2.1', '--timeout-ms'], /missing value/],
    [['--server', '192.0.2.1', '--frobnicate'], /unknown flag "--frobnicate"/],
    [['--help'], /usage: probe/],
  ]
  for (const [argv, re] of bad) t.throws(() => parseProbeArgs(argv), re, argv.join(' '))
  t.throws(() => parseProbeArgs(['--help']), ProbeArgError)
  t.throws(() => parseTypes('A,,AAAA'), /unknown type/)
})

t.test('probeArgv round-trips through parseProbeArgs; time bound', async t => {
  const opts: ProbeOptions = {
    ...PROBE_DEFAULTS,
    server: '2001:db8:2::53',
    types: ['A', 'AAAA'],
    names: ['h1.test', 'h2.test'],
    count: 7,
    intervalMs: 3,
    timeoutMs: 400,
    pair: true,
    freshSocket: true,
    samples: false,
    maxDurationMs: 9000,
    port: 53,
  }
  t.same(parseProbeArgs(probeArgv(opts)), opts)
  t.same(parseProbeArgs(probeArgv({ server: '192.0.2.1' })), { ...PROBE_DEFAULTS, server: '192.0.2.1' })
  t.same(parseProbeArgs(probeArgv({ server: '192.0.2.1', pair: true })).types, ['A', 'AAAA'], 'pair defaults to A,AAAA')
  t.equal(probeTimeBoundMs({ count: 10, timeoutMs: 100, types: ['A', 'AAAA'] }), 10 * 200 + 5000)
  t.equal(
    probeTimeBoundMs({ count: 10, timeoutMs: 100, types: ['A', 'AAAA'], pair: true, intervalMs: 10 }),
    10 * 110 + 5000,
  )
  t.equal(probeTimeBoundMs({ count: 1_000_000, timeoutMs: 1000, maxDurationMs: 2000 }), 3000 + 5000)
  t.equal(familyOf('2001:db8::1'), 'udp6')
  t.equal(familyOf('192.0.2.1'), 'udp4')
})

function answerFor(query: Buffer, opts: { rcode?: number; tc?: boolean; wrongName?: boolean } = {}): Buffer {
  const q = dnsPacket.decode(query)
  const question = q.questions![0]!
  const name = opts.wrongName ? 'other.test' : question.name
  const answers: dnsPacket.Answer[] = []
  if (question.type === 'A') answers.push({ type: 'A', name, data: '192.0.2.1', ttl: 30 })
  if (question.type === 'AAAA') answers.push({ type: 'AAAA', name, data: '2001:db8:ff::1', ttl: 30 })
  const buf = dnsPacket.encode({
    type: 'response',
    id: q.id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ ...question, name }],
    answers,
  })
  buf[3] = (buf[3]! & 0xf0) | (opts.rcode ?? 0)
  if (opts.tc) buf[2] = buf[2]! | 0x02
  return buf
}

t.test('buildQuery / parseReply / replyMatches', async t => {
  const q = buildQuery(0x1234, 'Host1.Example.Test.', 'AAAA')
  const d = dnsPacket.decode(q)
  t.equal(d.id, 0x1234)
  t.equal(d.flag_rd, true)
  t.match(d.questions, [{ type: 'AAAA', name: 'Host1.Example.Test' }])
  t.equal(parseReply(q), null, 'a query is not a reply')
  t.equal(parseReply(Buffer.alloc(5)), null, 'short')
  const bad = Buffer.from(answerFor(q)).subarray(0, 14)
  t.equal(parseReply(bad), null, 'truncated packet')
  const r = parseReply(answerFor(q, { rcode: 3, tc: true }))!
  t.match(r, { id: 0x1234, rcode: 'NXDOMAIN', truncated: true, qtype: 'AAAA', answers: 1 })
  t.ok(replyMatches(r, 'host1.example.test', 'aaaa'))
  t.notOk(replyMatches(r, 'host1.example.test', 'A'))
  t.notOk(replyMatches(r, 'host2.example.test', 'AAAA'))
  const noQ = dnsPacket.encode({ type: 'response', id: 1, questions: [] })
  t.equal(parseReply(noQ), null)
  const weird = answerFor(q)
  weird[3] = (weird[3]! & 0xf0) | 12
  t.equal(parseReply(weird)?.rcode, '12')
})

interface FakeServerOpts {
  /** Decide per query: delay in ms, or 'drop', or extra behaviour. */
  behave?: (q: { name: string; type: string; n: number }) => {
    delayMs?: number
    drop?: boolean
    dup?: boolean
    wrongName?: boolean
    junk?: boolean
    rcode?: number
    lateMs?: number
  }
  sendFails?: boolean
}

function fakeDns(o: FakeServerOpts = {}): {
  open: OpenSocket
  opened: number
  closed: number
  timers: Set<NodeJS.Timeout>
} {
  const state = { opened: 0, closed: 0, timers: new Set<NodeJS.Timeout>() }
  let n = 0
  const open: OpenSocket = async (onMessage, onError) => {
    state.opened++
    let closed = false
    const deliver = (buf: Buffer, ms: number): void => {
      const tm = setTimeout(() => {
        state.timers.delete(tm)
        if (!closed) onMessage(buf)
      }, ms)
      state.timers.add(tm)
    }
    const sock: ProbeSocket = {
      send: async msg => {
        if (o.sendFails) {
          onError(new Error('ECONNREFUSED'))
          throw new Error('send failed')
        }
        const d = dnsPacket.decode(msg)
        const q = d.questions![0]!
        const b = o.behave?.({ name: q.name, type: q.type, n: n++ }) ?? {}
        if (b.junk) deliver(Buffer.from('junk-not-dns'), 0)
        if (b.drop) return
        const reply = answerFor(msg, { wrongName: b.wrongName, rcode: b.rcode })
        deliver(reply, b.lateMs ?? b.delayMs ?? 0)
        if (b.dup) deliver(reply, (b.delayMs ?? 0) + 1)
      },
      close: () => {
        closed = true
        state.closed++
      },
    }
    return sock
  }
  return Object.assign(state, { open })
}

let clockNs = 0n
const fakeNow = (): bigint => (clockNs += 1_000_000n) // each read advances 1 ms

function probeOpts(p: Partial<ProbeOptions>): ProbeOptions {
  return { ...PROBE_DEFAULTS, server: '203.0.113.53', timeoutMs: 100, ...p }
}

t.test('runProbe: all answered, one socket, per-type summary', async t => {
  const srv = fakeDns()
  const res = await runProbe(probeOpts({ count: 4, types: ['A', 'AAAA'], names: ['h1.test', 'h2.test'] }), {
    openSocket: srv.open,
    now: fakeNow,
  })
  t.match(res, {
    sent: 8,
    received: 8,
    lost: 0,
    lookups: 4,
    mismatched: 0,
    late: 0,
    family: 'udp4',
    rcodes: { NOERROR: 8 },
  })
  t.equal(srv.opened, 1)
  t.equal(srv.closed, 1)
  t.equal(res.samples.length, 8)
  t.same(
    res.samples.slice(0, 2).map(s => [s.seq, s.name, s.type]),
    [
      [0, 'h1.test', 'A'],
      [0, 'h1.test', 'AAAA'],
    ],
  )
  t.same(res.samples[2]?.name, 'h2.test')
  t.ok(res.samples.every(s => s.rttUs > 0 && s.answers === 1))
  t.match(res.byType['A'], { sent: 4, received: 4, lost: 0 })
  t.ok(res.byType['AAAA']!.p50Us! > 0)
})

t.test('runProbe: pair mode sends back to back, times each answer, fresh sockets', async t => {
  const srv = fakeDns({ behave: ({ type }) => ({ delayMs: type === 'AAAA' ? 30 : 0 }) })
  const res = await runProbe(
    probeOpts({ count: 2, pair: true, types: ['A', 'AAAA'], freshSocket: true, timeoutMs: 500 }),
    {
      openSocket: srv.open,
      now: () => process.hrtime.bigint(),
    },
  )
  t.match(res, { sent: 4, received: 4, lost: 0, pair: true, freshSocket: true })
  t.equal(srv.opened, 2)
  t.equal(srv.closed, 2)
  const a = res.byType['A']!
  const aaaa = res.byType['AAAA']!
  t.ok(aaaa.minUs! >= 25_000, `AAAA delayed (${aaaa.minUs} us)`)
  t.ok(a.maxUs! < aaaa.minUs!, `A (${a.maxUs} us) answered before AAAA`)
})

t.test('runProbe: losses, late answers, mismatches, junk, rcodes, errors', async t => {
  const srv = fakeDns({
    behave: ({ n }) => {
      if (n === 0) return { drop: true, junk: true }
      if (n === 1) return { lateMs: 80 } // times out at 40 ms, arrives during the next lookup
      if (n === 2) return { wrongName: true }
      if (n === 3) return { dup: true, rcode: 3 }
      return {}
    },
  })
  const res = await runProbe(probeOpts({ count: 6, timeoutMs: 40, intervalMs: 1 }), {
    openSocket: srv.open,
    now: () => process.hrtime.bigint(),
  })
  t.match(res, { sent: 6, lookups: 6 })
  t.equal(res.lost, 3, 'dropped, late and wrong-name queries lost')
  t.equal(res.late, 1)
  t.ok(res.mismatched >= 3, `junk, wrong name, duplicate counted (${res.mismatched})`)
  t.equal(res.received, 3)
  t.same(res.rcodes, { NXDOMAIN: 1, NOERROR: 2 })
  t.equal(res.byType['A']?.lost, 3)

  const failing = fakeDns({ sendFails: true })
  const res2 = await runProbe(probeOpts({ count: 2, timeoutMs: 5, samples: false }), {
    openSocket: failing.open,
    now: () => process.hrtime.bigint(),
  })
  t.match(res2, { sent: 2, received: 0, lost: 2, socketErrors: 4, samples: [] })
  t.same(res2.byType['A'], {
    sent: 2,
    received: 0,
    lost: 2,
    minUs: null,
    p50Us: null,
    p90Us: null,
    p99Us: null,
    maxUs: null,
    meanUs: null,
  })
})

t.test('runProbe: bounded by maxDurationMs; id collisions avoided', async t => {
  const srv = fakeDns()
  let ns = 0n
  const now = (): bigint => (ns += 400_000_000n) // 400 ms per clock read
  const res = await runProbe(probeOpts({ count: 1000, maxDurationMs: 1000 }), { openSocket: srv.open, now })
  t.equal(res.stoppedByTime, true)
  t.ok(res.lookups < 5, `stopped early (${res.lookups} lookups)`)
  const ids = [7, 7, 7, 9]
  let i = 0
  const res2 = await runProbe(probeOpts({ count: 1, pair: true, types: ['A', 'AAAA'] }), {
    openSocket: fakeDns().open,
    now: fakeNow,
    randomId: () => ids[Math.min(i++, ids.length - 1)]!,
  })
  t.equal(res2.received, 2, 'second query got a different id')
})

t.test('summarize', async t => {
  const s = (rttUs: number, type: ProbeType = 'A') => ({ seq: 0, name: 'x', type, rttUs, rcode: 'NOERROR', answers: 1 })
  t.same(summarize([s(100), s(300), s(200)], 4, 1), {
    sent: 4,
    received: 3,
    lost: 1,
    minUs: 100,
    p50Us: 200,
    p90Us: 300,
    p99Us: 300,
    maxUs: 300,
    meanUs: 200,
  })
})

t.test('resolveProbeScript and runProbeIn with a fake runner', async t => {
  t.equal(resolveProbeScript('file:///x/dist-lab/lab/src/probe-runner.js', {}), '/x/dist-lab/lab/src/probe.js')
  const repo = fileURLToPath(new URL('../../', import.meta.url))
  const fromSource = pathToFileURL(join(repo, 'lab/src/probe-runner.ts')).href
  t.equal(resolveProbeScript(fromSource, {}), join(repo, 'dist-lab/lab/src/probe.js'))
  t.equal(resolveProbeScript(fromSource, { DNS_SHAPER_PROBE_SCRIPT: '/p.js' }), '/p.js')

  const out = { sent: 1, received: 1 }
  const fr = fakeRunner(argv => (argv.includes('--server') ? { stdout: JSON.stringify(out) + '\n' } : undefined))
  const ns = await Netns.create('dnss-t-prb', { runner: fr.runner })
  t.teardown(() => ns.destroy())
  const script = new URL(import.meta.url).pathname // any existing file
  const res = await runProbeIn(ns, { server: '203.0.113.53', count: 3 }, { script, node: '/usr/bin/node' })
  t.match(res, out)
  t.same(fr.calls.at(-1)?.slice(0, 7), ['ip', 'netns', 'exec', 'dnss-t-prb', '/usr/bin/node', script, '--server'])
  t.equal(fr.opts.at(-1)?.timeoutMs, probeTimeBoundMs({ count: 3 }))
  await t.rejects(
    runProbeIn(ns, { server: '203.0.113.53' }, { script: '/nonexistent/probe.js' }),
    /not found.*tsc -p tsconfig\.build\.json/s,
  )

  const bad = fakeRunner(argv => (argv.includes('--server') ? { code: 2, stderr: 'probe: --count: bad' } : undefined))
  const ns2 = await Netns.create('dnss-t-pr2', { runner: bad.runner })
  t.teardown(() => ns2.destroy())
  await t.rejects(
    runProbeIn(ns2, { server: '203.0.113.53' }, { script }),
    /probe in dnss-t-pr2 failed \(exit 2\).*--count: bad/s,
  )
  const garbage = fakeRunner(argv => (argv.includes('--server') ? { stdout: 'not json' } : undefined))
  const ns3 = await Netns.create('dnss-t-pr3', { runner: garbage.runner })
  t.teardown(() => ns3.destroy())
  await t.rejects(runProbeIn(ns3, { server: '203.0.113.53' }, { script }), /printed no JSON/)
})
