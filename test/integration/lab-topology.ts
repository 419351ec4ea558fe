// The lab itself, for real: namespaces + veth + bridge, unbound in the server namespace, the compiled probe
// in the client namespace through the router with no shaping; then cleanup, also on SIGTERM/SIGINT.
// Needs root; uses dist-harness/harness/*.js (built by `npm run harness:build`; see ensureHarnessBuild below).

import t from 'tap'
import { spawn, execFileSync } from 'node:child_process'
import { existsSync, statSync, readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { listNamespaces, liveNamespaceCount, NETNS_ETC_DIR } from '../../harness/netns.js'
import { createLab, listLabLeftovers } from '../../harness/topology.js'
import type { Lab } from '../../harness/topology.js'
import { V4_ONLY_NAME, startUnbound } from '../../harness/unbound.js'
import type { UnboundHandle } from '../../harness/unbound.js'
import { runProbeIn } from '../../harness/probe-runner.js'
import { skipFileUnless } from '../../harness/skip.js'

skipFileUnless({ root: 'ip netns add, veth, unbound on port 53' })

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const distHarness = join(root, 'dist-harness', 'harness')
const srcHarness = join(root, 'harness')

/**
 * CI runs `npm ci` (prepare builds the harness too: tsc -p harness/tsconfig.json) before the tests, so
 * dist-harness is there. When it is missing or older than harness/ (a developer running this file
 * alone), build it again.
 */
function ensureHarnessBuild(): void {
  const srcs = readdirSync(srcHarness).filter(f => f.endsWith('.ts'))
  const stale = srcs.some(f => {
    const out = join(distHarness, f.replace(/\.ts$/, '.js'))
    return !existsSync(out) || statSync(out).mtimeMs < statSync(join(srcHarness, f)).mtimeMs
  })
  if (!stale) return
  execFileSync(
    process.execPath,
    [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'harness', 'tsconfig.json')],
    { stdio: 'inherit', timeout: 300_000 },
  )
}
ensureHarnessBuild()

let lab: Lab | undefined
let unbound: UnboundHandle | undefined

t.teardown(async () => {
  await unbound?.stop()
  await lab?.destroy()
})

t.test('lab: client -> router -> server, unbound answers A and AAAA over IPv4 and IPv6', async t => {
  lab = await createLab({ extraServers: 1 })
  const id = lab.id
  t.same((await listLabLeftovers(id)).sort(), lab.namespaces.map(n => n.name).sort(), 'namespaces exist')

  // Only documentation addresses, one default route per family via the router.
  const routes = (await lab.client.ns.execOk(['ip', 'route'])).stdout
  t.match(routes, /default via 198\.51\.100\.1 dev eth0/)
  t.match((await lab.client.ns.execOk(['ip', '-6', 'route'])).stdout, /default via 2001:db8:1::1 dev eth0/)
  t.match((await lab.router.ns.execOk(['sysctl', '-n', 'net.ipv4.ip_forward'])).stdout, /^1/)
  t.match((await lab.router.ns.execOk(['sysctl', '-n', 'net.ipv6.conf.all.forwarding'])).stdout, /^1/)

  unbound = await startUnbound({ ns: lab.server.ns, addresses: [lab.server.ipv4, lab.server.ipv6], hosts: 5 })
  t.ok(unbound.pid > 0, 'unbound running')

  const dig = await lab.client.ns.execOk([
    'dig',
    '@203.0.113.53',
    '+short',
    '+time=2',
    '+tries=1',
    'svc1.lab.svc.cluster.local',
    'AAAA',
  ])
  t.equal(dig.stdout.trim(), '2001:db8:fe::1', 'dig from the client through the router')

  for (const server of [lab.server.ipv4, lab.server.ipv6]) {
    const r = await runProbeIn(lab.client.ns, {
      server,
      types: ['A', 'AAAA'],
      names: ['host1.example.test', 'host2.example.test'],
      count: 10,
      timeoutMs: 2000,
    })
    t.match(
      r,
      {
        sent: 20,
        received: 20,
        lost: 0,
        mismatched: 0,
        family: server.includes(':') ? 'udp6' : 'udp4',
        rcodes: { NOERROR: 20 },
      },
      `${server}: all answered`,
    )
    t.equal(r.samples.length, 20)
    t.ok(
      r.samples.every(s => s.answers === 1 && s.rttUs > 0),
      'each answer has one record and an RTT',
    )
    t.ok(
      (r.byType['AAAA']?.p50Us ?? Infinity) < 100_000,
      `${server}: AAAA unshaped (p50 ${r.byType['AAAA']?.p50Us} us)`,
    )
  }

  const pair = await runProbeIn(lab.client.ns, {
    server: lab.server.ipv6,
    pair: true,
    count: 5,
    freshSocket: true,
    timeoutMs: 2000,
  })
  t.match(pair, { sent: 10, received: 10, lost: 0, pair: true }, 'pair mode, fresh sockets, IPv6')
  t.same(Object.keys(pair.byType).sort(), ['A', 'AAAA'])

  const nodata = await runProbeIn(lab.client.ns, {
    server: lab.server.ipv4,
    types: ['AAAA'],
    names: [V4_ONLY_NAME],
    count: 1,
  })
  t.match(nodata, { received: 1, rcodes: { NOERROR: 1 }, samples: [{ answers: 0 }] }, 'A-only name: AAAA NODATA')
  const nx = await runProbeIn(lab.client.ns, {
    server: lab.server.ipv4,
    types: ['A'],
    names: ['nope.example.test'],
    count: 1,
  })
  t.match(nx.rcodes, { NXDOMAIN: 1 })
  const out = await runProbeIn(lab.client.ns, {
    server: lab.server.ipv4,
    types: ['A'],
    names: ['example.com'],
    count: 1,
  })
  t.match(out.rcodes, { REFUSED: 1 }, 'no recursion outside the lab zones')

  // The extra server namespace is reachable through the same router (no unbound there: a timeout is expected).
  const extra = lab.servers[1]!
  t.equal(extra.ipv4, '203.0.113.54')
  const noServer = await runProbeIn(lab.client.ns, { server: extra.ipv4, count: 1, timeoutMs: 200 })
  t.equal(noServer.received, 0)
  t.ok(noServer.lost === 1, 'nothing listening on the extra server: lost, not hung')

  // A bind failure is reported with unbound's own words, and nothing is left running.
  const err = await startUnbound({ ns: extra.ns, addresses: ['192.0.2.99'], readyTimeoutMs: 5000 }).catch(
    (e: unknown) => e,
  )
  t.match(String(err), /unbound in .* (exited|did not answer).*192\.0\.2\.99/s, 'unbound start failure explained')
  t.same(extra.ns.children, [], 'failed unbound not left running')

  // resolv.conf per namespace reaches tools run with ip netns exec.
  const file = lab.client.ns.writeResolvConf([lab.server.ipv4], { search: ['example.test'] })
  t.ok(existsSync(file))
  const viaResolv = await lab.client.ns.execOk(['dig', '+short', '+time=2', '+tries=1', '+search', 'host3', 'A'])
  t.equal(viaResolv.stdout.trim(), '192.0.2.3', 'dig used the namespace resolv.conf')

  const unboundPid = unbound.pid
  await unbound.stop()
  await unbound.stop()
  t.throws(() => process.kill(unboundPid, 0), 'unbound stopped')
  t.notOk(existsSync(unbound.dir), 'unbound temp dir removed')

  await lab.destroy()
  await lab.destroy()
  t.same(await listLabLeftovers(id), [], 'no namespace of this lab remains')
  t.notOk(existsSync(join(NETNS_ETC_DIR, lab.client.name)), '/etc/netns entry removed')
  t.equal(liveNamespaceCount(), 0)
})

t.test('lab.destroy kills what was spawned inside', async t => {
  const l = await createLab()
  const child = l.client.ns.spawn(['sleep', '30'])
  const exited = new Promise<string | null>(res => child.once('exit', (_c, sig) => res(sig)))
  await l.destroy()
  t.equal(await exited, 'SIGTERM')
  t.same(await listLabLeftovers(l.id), [])
})

// A process that dies of a signal must not leave namespaces behind.
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`cleanup on ${sig}`, async t => {
    const topo = join(distHarness, 'topology.js')
    const script = `
      import { createLab } from ${JSON.stringify(topo)};
      const lab = await createLab();
      lab.client.ns.spawn(['sleep', '30']);
      process.stdout.write(lab.id + '\\n');
      setTimeout(() => {}, 15000);
    `
    // Without tap's preloads: tap's processinfo wraps spawn() to add itself to NODE_OPTIONS, and its
    // signal-exit handlers then stay alongside ours, each deferring the re-raise to the other.
    // `env -u` execs node in place, so the signal still reaches node itself.
    const child = spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let childId = ''
    t.teardown(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      // Last resort so a failing test does not leak: delete whatever the child left.
      for (const n of childId ? await listNamespaces(childId) : []) execFileSync('ip', ['netns', 'del', n])
    })
    const id = await new Promise<string>((res, rej) => {
      let out = ''
      const timer = setTimeout(() => rej(new Error('child did not create its lab in 20 s')), 20_000)
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString()
        if (out.includes('\n')) {
          clearTimeout(timer)
          res(out.trim())
        }
      })
      child.once('exit', code => rej(new Error(`child exited early (${code})`)))
    })
    childId = id
    t.match(id, /^dnss-/)
    t.equal((await listNamespaces(id)).length, 3, 'child created its namespaces')
    const exit = new Promise<NodeJS.Signals | null>(res => child.once('exit', (_c, s) => res(s)))
    child.kill(sig)
    t.equal(await exit, sig, `child still dies of ${sig} (signal re-raised)`)
    t.same(await listNamespaces(id), [], 'no namespace left behind')
  })
}

t.test('no lab namespaces of this process remain', async t => {
  const mine = `dnss-${process.pid.toString(36)}-`
  t.same(await listNamespaces(mine), [])
})
