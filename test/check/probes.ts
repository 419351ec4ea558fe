// src/check/probes.ts: the listen probe and the system probes over a fixture /proc and a fake runner.
import t from 'tap'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer, type AddressInfo } from 'node:net'
import { runCheck } from '../../src/check/run.js'
import { listenProbe, systemProbes } from '../../src/check/probes.js'
import { parseHostPort } from '../../src/config/host-port.js'
import { fx, result, cfg, byId } from '../helpers/check.js'
import { statsFromNetlink } from '../../src/kernel/conntrack-stats.js'
import type { ConntrackStats } from '../../src/kernel/procfs.js'

const noNetlink = async (): Promise<ConntrackStats> => {
  throw new Error('conntrack statistics over ctnetlink: ctnetlink: No such file or directory')
}

t.test('parseHostPort / listenProbe', async t => {
  t.same(parseHostPort('127.0.0.1:9464'), { host: '127.0.0.1', port: 9464 })
  t.same(parseHostPort('[::1]:9464'), { host: '::1', port: 9464 })
  t.same(parseHostPort('0.0.0.0:80'), { host: '0.0.0.0', port: 80 })
  const srv = createServer()
  await new Promise<void>(r => srv.listen({ host: '127.0.0.1', port: 0 }, r))
  const port = (srv.address() as AddressInfo).port
  const busy = await listenProbe(`127.0.0.1:${port}`)
  t.ok(busy instanceof Error)
  t.match(busy, { code: 'EADDRINUSE' })
  await new Promise(r => srv.close(r))
  t.equal(await listenProbe(`127.0.0.1:${port}`), true, 'free again after close')
})

t.test('systemProbes over a fixture /proc and a fake runner', async t => {
  const calls: string[][] = []
  const run = async (argv: readonly string[]) => {
    calls.push([...argv])
    if (argv[0] === 'ip6tables-save') return result('', 'ip6tables-save: not found', 127)
    return result(
      argv[0] === 'tc'
        ? 'qdisc noqueue 0: dev lo root refcnt 2\n'
        : '*raw\n-A PREROUTING -p udp --dport 53 -j NOTRACK\nCOMMIT\n',
    )
  }
  const p = systemProbes({
    procRoot: fx('host-6.18'),
    iptables: async () => ({ backend: 'nft', reason: 'test' }),
    features: async () => ({ nfqueue: true, xtBpf: true }),
    run,
    conntrackNetlink: noNetlink,
  })
  t.match(await p.selfStatus(), /CapEff:\s+000001fffeffffff/)
  t.match(await p.kernelRelease(), /^\d+\.\d+/)
  t.same(await p.nfqueueStats(), [])
  const ctr = await p.conntrack()
  t.same([ctr.loaded, ctr.source, ctr.stats?.clashResolve], [true, 'procfs', 0], 'netlink refused: the stat file')
  t.match(await p.rawRules(), /NOTRACK/, 'ip6tables-save failure tolerated')
  t.same(
    calls.map(c => c[0]),
    ['iptables-save', 'ip6tables-save'],
  )
  t.match(await p.tcQdiscs(), /noqueue/)
  const t0 = Date.now()
  await p.sleep(20)
  t.ok(Date.now() - t0 >= 15)
  t.equal(await p.listen('127.0.0.1:0'), true)

  const r = await runCheck({ ...cfg, metricsListen: '127.0.0.1:0' }, p, { sampleSeconds: 0 })
  t.equal(r.verdict.need, 'not-needed', 'the fake raw table untracks DNS')
  t.equal(r.exitCode, 0)

  const unpriv = systemProbes({
    procRoot: fx('unprivileged'),
    ipv6: false,
    iptables: async () => ({ backend: 'nft', reason: 'test' }),
    features: async () => ({ nfqueue: true, xtBpf: true }),
    run: async argv => result('', `${argv[0]}: Permission denied (you must be root)`, 1),
  })
  t.match(await unpriv.rawRules(), /Permission denied/)
  t.match(await unpriv.tcQdiscs(), Error)
  t.equal((await unpriv.conntrack()).loaded, false, 'no nf_conntrack_count: not loaded')
  const ur = await runCheck(cfg, unpriv, { sampleSeconds: 0 })
  t.match(byId(ur, 'privileges'), { status: 'fail', found: 'uid 1000, no CAP_NET_ADMIN, no CAP_NET_RAW' })

  const own = systemProbes({
    procRoot: fx('empty'),
    iptables: async () => ({ backend: 'nft', reason: 'test' }),
    features: async () => ({ nfqueue: true, xtBpf: true }),
    rawRules: async () => 'custom',
    run: async () => result(''),
  })
  t.equal(await own.rawRules(), 'custom', 'backend-specific raw rules reader')
})

t.test('default runner runs real commands', async t => {
  const p = systemProbes({
    iptables: async () => ({ backend: 'nft', reason: '' }),
    features: async () => ({ nfqueue: true, xtBpf: true }),
  })
  const tc = await p.tcQdiscs()
  t.ok(typeof tc === 'string' || tc instanceof Error, 'string, or an Error naming the command')
  if (tc instanceof Error) t.match(tc.message, /^tc qdisc show: /)
  // ipv6 off and no backend-specific reader: the default reader runs iptables-save only.
  const ran: string[] = []
  const v4only = systemProbes({
    iptables: async () => ({ backend: 'nft', reason: '' }),
    features: async () => ({ nfqueue: true, xtBpf: true }),
    ipv6: false,
    rawRules: undefined,
    run: async argv => {
      ran.push(argv.join(' '))
      return result(argv[0] === 'iptables-save' ? '*raw\nCOMMIT\n' : 'ip6 rules\n')
    },
  })
  t.equal(await v4only.rawRules(), '*raw\nCOMMIT\n', 'the IPv4 table only')
  t.same(ran, ['iptables-save -t raw'], 'ip6tables-save not run')
})

t.test('a kernel without /proc/net/stat/nf_conntrack: conntrack is loaded, so not "not needed"', async t => {
  const probe = (netlink: () => Promise<ConntrackStats>) =>
    systemProbes({
      procRoot: fx('no-stat-file'),
      iptables: async () => ({ backend: 'nft', reason: 'test' }),
      features: async () => ({ nfqueue: true, xtBpf: true }),
      rawRules: async () => '*raw\nCOMMIT\n',
      run: async () => result(''),
      conntrackNetlink: netlink,
    })
  const blind = await runCheck(cfg, probe(noNetlink), { sampleSeconds: 0 })
  t.not(blind.verdict.need, 'not-needed', `verdict: ${blind.verdict.line}`)
  t.notMatch(blind.verdict.line, /conntrack is not loaded/)
  t.match(byId(blind, 'conntrack'), {
    status: 'warn',
    found:
      /conntrack is loaded \(entries 37\) but its counters cannot be read \(netlink: .*ctnetlink.*; procfs: .*CONFIG_NF_CONNTRACK_PROCFS/,
    action: /CAP_NET_ADMIN/,
  })
  t.match(blind.conntrack, { loaded: true, source: 'none', entries: 37, sources: { procfs: { ok: false } } })

  let calls = 0
  const nl = async () =>
    statsFromNetlink([{ cpu: 0, counters: { insert_failed: 0, drop: 0, clash_resolve: 5 + 3 * calls++ } }])
  const sampled = await runCheck(cfg, probe(nl), { sampleSeconds: 1 })
  t.match(sampled.conntrack, {
    loaded: true,
    source: 'netlink',
    sources: { netlink: { ok: true }, procfs: { ok: false } },
    ratesPerSecond: { clash_resolve: 3 },
  })
  t.match(byId(sampled, 'conntrack').found, /clash_resolve 3\/s over 1 s \(this netns, from ctnetlink\)/)
})

t.test(
  'daemonProcesses: dns-shaper run processes from /proc/PID/cmdline; findDaemon prefers the queue owner',
  async t => {
    const { daemonProcesses, findDaemon, healthGet } = await import('../../src/check/probes.js')
    const root = mkdtempSync(join(tmpdir(), 'dns-shaper-proc-'))
    t.teardown(() => rmSync(root, { recursive: true, force: true }))
    const proc = (pid: number, argv: string[]) => {
      mkdirSync(join(root, String(pid)))
      writeFileSync(join(root, String(pid), 'cmdline'), argv.join('\0') + '\0')
    }
    proc(1, ['/usr/local/bin/node', '/usr/local/bin/dns-shaper', 'run', '--metrics-listen', '[198.51.100.7]:9363'])
    proc(77, ['node', '/src/dist/cli.js', 'run', '--metrics-listen=127.0.0.1:9555'])
    proc(78, ['node', '/src/dist/cli.js', 'check'])
    proc(79, ['sleep', 'run'])
    mkdirSync(join(root, 'self'))
    t.same(
      (await daemonProcesses(root)).map(d => d.pid).sort(),
      [1, 77],
      'the image and a checkout, not check or other programs',
    )
    // A real health endpoint on loopback.
    const srv = (await import('node:http')).createServer((req, res) => {
      res.writeHead(req.url === '/healthz' ? 200 : 404).end('ok: data plane running\n')
    })
    await new Promise<void>(r => srv.listen(0, '127.0.0.1', r))
    t.teardown(() => srv.close())
    const port = (srv.address() as AddressInfo).port
    t.same(await healthGet(`127.0.0.1:${port}`, '/healthz'), { status: 200, body: 'ok: data plane running' })
    await t.rejects(healthGet('127.0.0.1:1', '/healthz'), /ECONNREFUSED/)
    const probes = {
      daemons: async () => [
        { pid: 77, argv: ['node', 'cli.js', 'run', `--metrics-listen=127.0.0.1:${port}`] },
        { pid: 1, argv: ['node', 'dns-shaper', 'run'] },
      ],
      httpGet: healthGet,
    }
    const bound = [
      { queue: 0, portid: 77, waiting: 0, copyMode: 2, copyRange: 512, dropped: 0, userDropped: 0, idSequence: 1 },
    ]
    t.match(await findDaemon({ metricsListen: '127.0.0.1:1' }, probes, bound), {
      pid: 77,
      health: { listen: `127.0.0.1:${port}`, status: 200 },
    })
    t.match(
      await findDaemon({ metricsListen: '127.0.0.1:1' }, probes, []),
      { pid: 77 },
      'no owner known: the first found',
    )
    t.equal(await findDaemon(cfg, { ...probes, daemons: async () => [] }, bound), undefined)
  },
)
