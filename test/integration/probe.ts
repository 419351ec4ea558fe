// `dns-shaper check --probe` and `dns-shaper probe` on this machine, from dist/: the probe provokes
// clashes in namespaces of its own and its figures are real (every query answered or dropped, the
// server answered what the client received, clashes resolved on a 5.10+ kernel); without
// CAP_SYS_ADMIN it says so and changes nothing; killed mid-run it leaves nothing behind; --serve
// exposes the figures as gauges. The node's (root) namespace is only read, before and after.
import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import { promisify } from 'node:util'
import { release } from 'node:os'
import { dirname } from 'node:path'
import { CLI } from '../helpers/daemon.js'
import { allowedCpus } from '../../src/dataplane/nfqueue.js'
import { clashHandling, parseKernelRelease } from '../../src/kernel/release.js'
import type { ProbeResult } from '../../src/probe/run.js'

const execFileP = promisify(execFile)
/** This checkout's agent script (built, or run from src by the nft test): not another checkout's. */
const AGENT = `${dirname(dirname(CLI))}/(dist|src)/probe/agent\\.(js|ts)`

if (process.getuid?.() !== 0) {
  t.plan(0, 'the race probe needs root (CAP_SYS_ADMIN for its network namespaces)')
  process.exit(0)
}
if (allowedCpus().length < 2) {
  t.plan(0, 'the race probe needs two CPUs to send from')
  process.exit(0)
}

/** What the probe must leave exactly as it found: the node namespace's links, addresses, rules. */
async function nodeState(): Promise<string> {
  const out = await Promise.all(
    [['ip', '-o', 'link', 'show'], ['ip', '-o', 'addr', 'show'], ['iptables-save'], ['nft', 'list', 'ruleset']].map(
      ([cmd, ...args]) =>
        execFileP(cmd!, args).then(
          r => r.stdout.replace(/^#.*$/gm, '').replace(/\[\d+:\d+\]/g, ''),
          (e: Error) => `${cmd}: ${e.message}`,
        ),
    ),
  )
  return out.join('\n---\n')
}

/** The probe's agents still alive (any parent): none may outlive a run. */
async function agents(): Promise<string[]> {
  const r = await execFileP('pgrep', ['-f', AGENT]).catch(() => ({ stdout: '' }))
  return r.stdout.split('\n').filter(Boolean)
}

const cli = (args: string[], opts: { prefix?: string[] } = {}) => {
  const argv = [...(opts.prefix ?? []), process.execPath, CLI, ...args]
  return execFileP(argv[0]!, argv.slice(1), { timeout: 180_000 }).then(
    r => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({
      code: e.code ?? -1,
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? '',
    }),
  )
}

let before = ''
t.before(async () => {
  before = await nodeState()
})

t.test('check --probe measures this kernel: real figures, and the verdict follows them', async t => {
  const r = await cli(['check', '--probe', '--json', '--sample', '0', '--metrics-listen', 'off'])
  const report = JSON.parse(r.stdout) as {
    verdict: { need: string; line: string }
    items: { id: string; status: string; found: string }[]
    probe: ProbeResult
  }
  const p = report.probe
  const f = p.verdict.figures!
  t.ok(f, `the probe ran: ${p.verdict.text}`)
  t.equal(f.pairs, 300, 'every pair sent')
  t.equal(f.queries, 600)
  t.equal(f.queries, f.answered + f.dropped, 'queries sent = answered + dropped')
  t.equal(p.served, f.answered, 'the server answered what the client received')
  t.equal(f.clashes, f.dropped + f.resolved)
  const handling = clashHandling(parseKernelRelease(release())!)
  if (handling.level === 'all' && handling.clashCounter) {
    // 5.10+ mainline: clashes resolved and counted in clash_resolve, none dropped.
    t.equal(p.verdict.outcome, 'resolves', p.verdict.text)
    t.ok(f.resolved > 0, `resolved > 0 (${f.resolved} of ${f.pairs} pairs)`)
    t.equal(f.dropped, 0)
    t.equal(report.verdict.need, 'optional')
    t.match(report.verdict.line, /the probe outranks the kernel version table/)
  }
  t.match(
    report.items.find(i => i.id === 'probe'),
    { status: f.dropped > 0 ? 'warn' : 'ok' },
  )
  t.same(await agents(), [], 'no agent (and so no probe namespace) left')
  t.equal(await nodeState(), before, "the node's links, addresses and rules are as they were")
})

t.test('without CAP_SYS_ADMIN it says so and changes nothing', async t => {
  const rows: [string, string[]][] = [
    [
      'uid 65534, no capabilities',
      ['setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all'],
    ],
    ['root without CAP_SYS_ADMIN', ['setpriv', '--inh-caps=-sys_admin', '--bounding-set=-sys_admin']],
  ]
  for (const [name, prefix] of rows) {
    const r = await cli(['probe', '--json'], { prefix })
    t.equal(r.code, 1, `${name}: exit 1 (not measured)`)
    const out = JSON.parse(r.stdout) as ProbeResult['verdict'] & { figures?: unknown }
    t.equal(out.outcome, 'inconclusive', name)
    t.equal(out.reason, 'no-privilege', name)
    t.equal(out.figures, undefined, `${name}: no figures`)
    t.match(out.text, /needs CAP_SYS_ADMIN.*nothing was changed/, name)
  }
  t.same(await agents(), [])
  t.equal(await nodeState(), before)
})

t.test("with the survey pod's privileges: its own network namespace, NET_ADMIN, NET_RAW, SYS_ADMIN only", async t => {
  // As in deploy/variants/survey: not the node's namespace, and no capability beyond those three.
  const caps = [
    'setpriv',
    '--bounding-set',
    '-all,+net_admin,+net_raw,+sys_admin',
    '--inh-caps',
    '-all',
    '--no-new-privs',
  ]
  const r = await cli(['probe', '--json', '--pairs', '60'], { prefix: ['unshare', '--net', ...caps] })
  const out = JSON.parse(r.stdout) as ProbeResult['verdict'] & { served: number }
  t.equal(r.code, 0, `measured: ${out.text}`)
  t.equal(out.figures?.pairs, 60)
  t.equal(out.served, out.figures?.answered)

  // A container's /proc/sys is read-only: the router namespace cannot turn on forwarding the node
  // (this one: ip_forward 0) did not hand down. The probe says so and what to do.
  const ro = ['sh', '-c', 'mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && exec "$@"', 'sh']
  const forward = (await execFileP('cat', ['/proc/sys/net/ipv4/ip_forward'])).stdout.trim()
  const r2 = await cli(['probe', '--json', '--pairs', '20'], {
    prefix: ['unshare', '--mount', '--propagation', 'private', '--net', ...ro, ...caps],
  })
  const out2 = JSON.parse(r2.stdout) as ProbeResult['verdict']
  if (forward === '1') t.equal(out2.figures?.pairs, 20, 'the node forwards: namespaces inherit it, nothing to write')
  else {
    t.equal(r2.code, 1)
    t.same([out2.outcome, out2.reason], ['inconclusive', 'failed'])
    t.match(out2.text, /cannot enable forwarding in the probe's router namespace .*EROFS.*set it to 1 on the node/)
  }
  t.same(await agents(), [])
  t.equal(await nodeState(), before)
})

t.test('killed mid-run (SIGINT, SIGTERM, SIGKILL): nothing is left behind', async t => {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGKILL'] as const) {
    const child = spawn(process.execPath, [CLI, 'probe', '--pairs', '20000'], { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    const exited = new Promise<number | null>(res => child.once('exit', code => res(code)))
    // Wait until it sends (the second progress line), then interrupt it.
    for (let i = 0; i < 300 && !/masquerade off/.test(err); i++) await new Promise(r => setTimeout(r, 100))
    t.match(err, /masquerade off/, `${sig}: the probe was sending`)
    child.kill(sig)
    await exited
    let left = await agents()
    for (let i = 0; i < 50 && left.length > 0; i++) {
      await new Promise(r => setTimeout(r, 100))
      left = await agents()
    }
    t.same(left, [], `${sig}: every agent (and its namespace) gone within 5 s`)
  }
  t.equal(await nodeState(), before)
})

t.test('probe --serve: the figures as gauges until SIGTERM', async t => {
  const port = 19364 + (process.pid % 500)
  const child = spawn(process.execPath, [CLI, 'probe', '--json', '--pairs', '60', '--serve', `127.0.0.1:${port}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_NAME: 'node-a' },
  })
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  const exited = new Promise<number | null>(res => child.once('exit', code => res(code)))
  let metrics = ''
  for (let i = 0; i < 600 && metrics === ''; i++) {
    await new Promise(r => setTimeout(r, 100))
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined)
    if (ready?.status === 200) metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
  }
  const line = JSON.parse(out) as { node: string; kernel: string; figures: { pairs: number; dropped: number } }
  t.equal(line.node, 'node-a', 'the JSON line names the node (NODE_NAME)')
  t.match(metrics, /^dns_shaper_probe_pairs 60$/m)
  t.match(metrics, new RegExp(`^dns_shaper_probe_clashes_dropped ${line.figures.dropped}$`, 'm'))
  t.match(metrics, /^dns_shaper_probe_clashes_resolved \d+$/m)
  t.match(
    metrics,
    new RegExp(
      `^dns_shaper_probe_info\\{kernel_release="${release().replace(/\./g, '\\.')}",outcome="\\w+",reason="",node="node-a"\\} 1$`,
      'm',
    ),
  )
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'SIGTERM ends it with exit 0')
  t.same(await agents(), [])
})

t.test('the DNAT written with nft numgen (kube-proxy nftables mode) gives the same verdict', async t => {
  const { runProbe } = await import('../../src/probe/run.js')
  const r = await runProbe({ pairs: 100, dnat: 'nft' })
  t.equal(r.rules, 'nft', r.verdict.text)
  const f = r.verdict.figures!
  t.equal(f.pairs, 100)
  t.equal(f.queries, f.answered + f.dropped, 'queries sent = answered + dropped')
  t.equal(r.served, f.answered)
  const handling = clashHandling(parseKernelRelease(release())!)
  if (handling.level === 'all' && handling.clashCounter) t.equal(r.verdict.outcome, 'resolves')
  t.same(await agents(), [])
})
