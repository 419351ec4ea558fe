// Builds the C helpers (bench/ref/nfq_ref.c, lab/clients/*.c) with gcc and
// musl-gcc into a temp dir, checks they compile without warnings, checks the
// CLI contract (--help exit 0, bad flags exit 2), runs the DNS clients against
// a loopback responder, and - when root with unbound and iptables - runs
// nfq_ref in hold mode inside a throwaway network namespace.
import t from 'tap'
import { execFile, spawn, spawnSync } from 'node:child_process'
import dgram from 'node:dgram'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { queueRuleSpec } from '../../bench/lib/queue.js'

const run = promisify(execFile)
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const clientsDir = join(root, 'lab/clients')
const refSrc = join(root, 'bench/ref/nfq_ref.c')
const clients = ['gai_client', 'pair_client', 'split_cpu_client'] as const
const warnFlags = ['-O2', '-Wall', '-Wextra', '-pthread']

const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0
const out = mkdtempSync(join(tmpdir(), 'dns-shaper-clients-'))
t.teardown(() => rmSync(out, { recursive: true, force: true }))

interface Res {
  code: number
  stdout: string
  stderr: string
}
async function exec(file: string, args: string[], timeout = 60_000): Promise<Res> {
  try {
    const r = await run(file, args, { timeout, maxBuffer: 1 << 20 })
    return { code: 0, stdout: r.stdout, stderr: r.stderr }
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string }
    return {
      code: typeof err.code === 'number' ? err.code : -1,
      stdout: err.stdout ?? '',
      stderr: err.stderr ?? String(e),
    }
  }
}

const compilers: { cc: string; suffix: string; extra: string[] }[] = [{ cc: 'gcc', suffix: '', extra: [] }]
if (has('musl-gcc')) compilers.push({ cc: 'musl-gcc', suffix: '-musl', extra: ['-static'] })

const built: Record<string, string> = {}

t.test('compile without warnings', async t => {
  t.ok(has('gcc'), 'gcc is installed')
  if (!has('musl-gcc')) t.comment('musl-gcc not installed: musl builds skipped')
  for (const { cc, suffix, extra } of compilers) {
    for (const name of clients) {
      const bin = join(out, name + suffix)
      const r = await exec(cc, [...warnFlags, ...extra, '-o', bin, join(clientsDir, `${name}.c`)])
      t.equal(r.code, 0, `${cc} ${name} builds`)
      t.equal(r.stderr.trim(), '', `${cc} ${name}: no warnings`)
      if (r.code === 0) built[name + suffix] = bin
    }
  }
  const bin = join(out, 'nfq_ref')
  const r = await exec('gcc', ['-O2', '-Wall', '-Wextra', '-o', bin, refSrc, '-lnetfilter_queue', '-lmnl'])
  t.equal(r.code, 0, 'gcc nfq_ref builds')
  t.equal(r.stderr.trim(), '', 'nfq_ref: no warnings')
  if (r.code === 0) built.nfq_ref = bin
})

t.test('CLI contract: --help 0, bad flags 2', async t => {
  for (const [name, bin] of Object.entries(built)) {
    const h = await exec(bin, ['--help'])
    t.equal(h.code, 0, `${name} --help exits 0`)
    t.match(h.stdout, /^usage: /, `${name} --help prints usage on stdout`)
    const bad = await exec(bin, ['--no-such-flag'])
    t.equal(bad.code, 2, `${name} unknown flag exits 2`)
    t.match(bad.stderr, /--no-such-flag/, `${name} names the bad flag`)
    if (name.startsWith('pair_client') || name.startsWith('split_cpu_client')) {
      const ns = await exec(bin, ['--count', '1'])
      t.equal(ns.code, 2, `${name} without --server exits 2`)
      t.match(ns.stderr, /--server/, `${name} says --server is required`)
      const bn = await exec(bin, ['--server', '127.0.0.1', '--count', 'x'])
      t.equal(bn.code, 2, `${name} bad --count exits 2`)
    }
  }
  if (built.nfq_ref) {
    const bm = await exec(built.nfq_ref, ['--mode', 'drop'])
    t.equal(bm.code, 2, 'nfq_ref bad --mode exits 2')
  }
})

// Loopback DNS responder: answers every query with NOERROR/no data; optionally drops AAAA.
async function responder(
  dropAAAA: boolean,
): Promise<{ port: number; close: () => Promise<void>; seen: { a: number; aaaa: number } }> {
  const sock = dgram.createSocket('udp4')
  const seen = { a: 0, aaaa: 0 }
  let closed = false
  sock.on('message', (msg, rinfo) => {
    if (msg.length < 17) return
    let off = 12
    while (off < msg.length && msg[off] !== 0) off += (msg[off] ?? 0) + 1
    const qtype = msg.readUInt16BE(off + 1)
    if (qtype === 28) seen.aaaa++
    else seen.a++
    if (dropAAAA && qtype === 28) return
    const resp = Buffer.from(msg.subarray(0, off + 5))
    resp[2] = (resp[2] ?? 0) | 0x80
    resp[3] = 0x80
    sock.send(resp, rinfo.port, rinfo.address)
  })
  await new Promise<void>(res => sock.bind(0, '127.0.0.1', () => res()))
  return {
    port: sock.address().port,
    seen,
    close: () =>
      new Promise<void>(res => {
        if (closed) return res()
        closed = true
        sock.close(() => res())
      }),
  }
}

const parseJson = (s: string): Record<string, number> => JSON.parse(s.trim().split('\n').pop() ?? '{}')
const twoCpus = (spawnSync('nproc').stdout?.toString().trim() ?? '1') !== '1'

t.test('pair and split clients against a loopback responder', async t => {
  for (const dropAAAA of [false, true]) {
    const r = await responder(dropAAAA)
    t.teardown(r.close)
    for (const [name, bin] of Object.entries(built)) {
      if (!/^(pair_client|split_cpu_client)/.test(name)) continue
      if (name.startsWith('split') && !twoCpus) {
        t.comment(`${name}: needs 2 CPUs, skipped`)
        continue
      }
      const count = dropAAAA ? 10 : 200
      const res = await exec(bin, [
        '--server',
        '127.0.0.1',
        '--port',
        String(r.port),
        '--name',
        'n%d.example.test',
        '--count',
        String(count),
        '--threads',
        '2',
        '--timeout-ms',
        dropAAAA ? '50' : '1000',
        '--max-seconds',
        '20',
      ])
      t.equal(res.code, 0, `${name} exits 0 (dropAAAA=${dropAAAA})`)
      const j = parseJson(res.stdout)
      t.equal(j.lookups, count, `${name} ran ${count} lookups`)
      t.equal(j.answers_lost, dropAAAA ? count : 0, `${name} answers_lost`)
      t.equal(j.failed, dropAAAA ? count : 0, `${name} failed`)
      t.equal(j.send_errors, 0, `${name} no send errors`)
      if (dropAAAA) t.ok((j.p50_us ?? 0) >= 50_000, `${name} waited the timeout for the lost AAAA`)
      t.ok('a_p50_us' in j && 'aaaa_p50_us' in j && 'max_us' in j && 'p99_us' in j, `${name} JSON fields`)
    }
    await r.close()
  }
})

t.test('gai_client: bounded, JSON, refuses a foreign resolv.conf', async t => {
  const rc = join(out, 'resolv.conf')
  writeFileSync(rc, 'nameserver 203.0.113.9\n')
  for (const [name, bin] of Object.entries(built)) {
    if (!name.startsWith('gai_client')) continue
    const refused = await exec(bin, ['--server', '192.0.2.1', '--resolv-conf', rc, '--count', '1'])
    t.equal(refused.code, 2, `${name} refuses resolv.conf that names another server`)
    t.match(refused.stderr, /203\.0\.113\.9/, `${name} names the foreign nameserver`)
    // numeric host: getaddrinfo answers without any DNS traffic
    const ok = await exec(bin, [
      '--server',
      '203.0.113.9',
      '--resolv-conf',
      rc,
      '--name',
      '127.0.0.1',
      '--family',
      '4',
      '--count',
      '20',
      '--threads',
      '2',
    ])
    t.equal(ok.code, 0, `${name} numeric lookups exit 0`)
    const j = parseJson(ok.stdout)
    t.equal(j.lookups, 20, `${name} lookups`)
    t.equal(j.failed, 0, `${name} failed`)
    t.equal(j.no_a, 0, `${name} got the A`)
  }
})

const isRoot = process.getuid?.() === 0
const netnsOk = isRoot && has('unbound') && has('iptables') && has('ip')
t.test(
  'nfq_ref hold mode in a throwaway netns',
  { skip: netnsOk ? false : 'needs root, unbound, iptables, ip' },
  async t => {
    if (!built.nfq_ref || !built.pair_client) {
      t.fail('nfq_ref or pair_client did not build')
      return
    }
    const ns = `dnssref-t${process.pid}`
    const dir = mkdtempSync(join(tmpdir(), 'dnssref-'))
    const procs: ReturnType<typeof spawn>[] = []
    const ipns = (...a: string[]) => exec('ip', ['netns', 'exec', ns, ...a], 30_000)
    t.teardown(async () => {
      for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL')
      await exec('ip', ['netns', 'del', ns])
      rmSync(dir, { recursive: true, force: true })
    })
    t.equal((await exec('ip', ['netns', 'add', ns])).code, 0, 'netns created')
    await exec('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
    await exec('ip', ['-n', ns, 'addr', 'add', '192.0.2.1/32', 'dev', 'lo'])
    writeFileSync(
      join(dir, 'unbound.conf'),
      [
        'server:',
        '  interface: 192.0.2.1',
        '  access-control: 0.0.0.0/0 allow',
        '  local-zone: "example.test." static',
        '  local-data: "a.example.test. A 192.0.2.10"',
        '  local-data: "a.example.test. AAAA 2001:db8::10"',
        '  do-daemonize: no',
        '  chroot: ""',
        '  username: ""',
        `  directory: "${dir}"`,
        '  pidfile: ""',
        '  so-rcvbuf: 8m',
        '  use-syslog: no',
        '  logfile: ""',
        '  num-threads: 1',
        'remote-control:',
        '  control-enable: no',
        '',
      ].join('\n'),
    )
    const unbound = spawn('ip', ['netns', 'exec', ns, 'unbound', '-d', '-c', join(dir, 'unbound.conf')], {
      stdio: 'ignore',
    })
    procs.push(unbound)
    t.equal(
      (await ipns('iptables', '-t', 'raw', '-A', 'OUTPUT', ...queueRuleSpec(0))).code,
      0,
      'NFQUEUE rule inside the netns',
    )
    const nfq = spawn(
      'ip',
      ['netns', 'exec', ns, built.nfq_ref!, '--queue', '0', '--mode', 'hold', '--delay-ms', '5'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    )
    procs.push(nfq)
    let nfqErr = ''
    nfq.stderr!.on('data', d => {
      nfqErr += String(d)
    })
    // wait for bind and for unbound to answer
    for (let i = 0; i < 50 && !/bound queue/.test(nfqErr); i++) await new Promise(r => setTimeout(r, 100))
    t.match(nfqErr, /bound queue 0 mode hold/, 'nfq_ref bound')
    let warm: Res = { code: -1, stdout: '', stderr: '' }
    for (let i = 0; i < 30; i++) {
      warm = await ipns(built.pair_client!, '--server', '192.0.2.1', '--count', '1', '--timeout-ms', '200')
      if (parseJson(warm.stdout).answers_lost === 0) break
    }
    t.equal(parseJson(warm.stdout).answers_lost, 0, 'unbound answers through the queue')
    const r = await ipns(built.pair_client!, '--server', '192.0.2.1', '--count', '300', '--max-seconds', '20')
    const j = parseJson(r.stdout)
    t.equal(j.lookups, 300, 'lookups')
    t.equal(j.answers_lost, 0, 'no answers lost')
    t.ok((j.aaaa_min_us ?? 0) >= 5000, `AAAA held >= 5 ms (min ${j.aaaa_min_us} us)`)
    t.ok((j.a_p50_us ?? Infinity) < 2000, `A not held (p50 ${j.a_p50_us} us)`)
    const done = new Promise<number | null>(res => nfq.on('exit', code => res(code)))
    nfq.kill('SIGTERM')
    t.equal(await done, 0, 'nfq_ref exits 0 on SIGTERM')
    const c = parseJson(nfqErr)
    t.equal(c.held, c.released, 'every held packet released')
    t.equal(c.packets, c.accepted, 'every packet accepted')
    t.ok((c.held ?? 0) >= 300, 'AAAA queries were held')
  },
)
