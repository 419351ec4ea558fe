// src/check/probes.ts: the listen probe and the system probes over a fixture /proc and a fake runner.
import t from 'tap'
import { createServer, type AddressInfo } from 'node:net'
import { runCheck } from '../../src/check/run.js'
import { listenProbe, systemProbes } from '../../src/check/probes.js'
import { parseHostPort } from '../../src/config/host-port.js'
import { fx, result, cfg, byId } from '../helpers/check.js'

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
  })
  t.match(await p.selfStatus(), /CapEff:\s+000001fffeffffff/)
  t.match(await p.kernelRelease(), /^\d+\.\d+/)
  t.same(await p.nfqueueStats(), [])
  t.equal((await p.conntrackStats())!.clashResolve, 0)
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
  t.equal(await unpriv.conntrackStats(), undefined)
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
  const bad = systemProbes({
    iptables: async () => ({ backend: 'nft', reason: '' }),
    features: async () => ({ nfqueue: true, xtBpf: true }),
    ipv6: false,
    rawRules: undefined,
  })
  t.ok(bad)
})
