// src/cli.ts: subcommands, usage, exit codes; help, version and `rules print` without the addon.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { COMMAND_USAGE, main, USAGE } from '../src/cli.js'
import { RUN_FLAGS } from '../src/config/load.js'

async function cli(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const code = await main(argv, {
    out: s => {
      out += s
    },
    err: s => {
      err += s
    },
    env,
  })
  return { code, out, err }
}

t.test('help, version, unknown commands', async t => {
  t.same(await cli(['help']), { code: 0, out: USAGE, err: '' })
  t.same(await cli([]), { code: 2, out: '', err: USAGE }, 'no command: bad usage, the usage on stderr')
  const v = await cli(['version'])
  t.equal(v.code, 0)
  t.match(v.out, /^\d+\.\d+\.\d+\n$/)
  const u = await cli(['frobnicate'])
  t.equal(u.code, 2)
  t.match(u.err, /unknown command "frobnicate" \(accepted: run, rules, check, probe, version, help\)/)
  for (const f of RUN_FLAGS) t.match(USAGE, `--${f}`, `usage documents --${f}`)
})

t.test('bad flags exit 2 with one line naming the flag', async t => {
  const r = await cli(['run', '--delay', 'soon'])
  t.equal(r.code, 2)
  t.equal(r.err.trim().split('\n').length, 1)
  t.match(r.err, /--delay: "soon" is not a valid value/)
  const e = await cli(['run'], { DNS_SHAPER_MODE: 'clever' })
  t.equal(e.code, 2)
  t.match(e.err, /DNS_SHAPER_MODE: "clever"/)
  const rr = await cli(['rules', 'frob'])
  t.equal(rr.code, 2)
  const ck = await cli(['check', '--sample', '-3'])
  t.equal(ck.code, 2)
})

t.test('rules print: the exact restore input for both families', async t => {
  const r = await cli(['rules', 'print', '--dns-ip', '192.0.2.10,2001:db8::10', '--queue', '3'])
  t.equal(r.code, 0)
  t.match(r.out, /# IPv4: iptables-restore --noflush/)
  t.match(
    r.out,
    /-A DNS-SHAPER -d 192\.0\.2\.10\/32 -p udp -m udp --dport 53 -m bpf --bytecode "\d+,[0-9 ,]+" -j NFQUEUE --queue-num 3 --queue-bypass/,
  )
  t.match(
    r.out,
    /-A DNS-SHAPER -d 2001:db8::10\/128 -p udp -m udp --dport 53 -m bpf --bytecode "\d+,[0-9 ,]+" -j NFQUEUE --queue-num 3 --queue-bypass/,
  )
  const v6only = await cli(['rules', 'print', '--ipv4', 'off'])
  t.notMatch(v6only.out, /# IPv4/, '--ipv4 off: no IPv4 rules printed')
  t.match(v6only.out, /# IPv6: ip6tables-restore --noflush/)
  const off = await cli(['rules', 'print', '--kernel-filter', 'off'])
  t.match(off.out, /-A DNS-SHAPER -p udp -m udp --dport 53 -j NFQUEUE --queue-num 0 --queue-bypass/)
  t.notMatch(r.out, /cpu-fanout/)
  const v4 = await cli(['rules', 'print', '--ipv6', 'off'])
  t.notMatch(v4.out, /IPv6/)
})

t.test(
  'one exit code per error class: too many hold classes is a config error (2) before anything is bound',
  async t => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs')
    const { tmpdir } = await import('node:os')
    const { join } = await import('node:path')
    const dir = mkdtempSync(join(tmpdir(), 'dnss-cli-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const file = join(dir, 'holds.json')
    const types = ['A', 'NS', 'CNAME', 'SOA', 'PTR', 'MX', 'TXT', 'SRV', 'HTTPS']
    writeFileSync(file, JSON.stringify({ holds: Object.fromEntries(types.map((q, i) => [q, i + 1])) }))
    for (const cmd of [['run'], ['rules', 'print']]) {
      const r = await cli([...cmd, '--config', file])
      t.equal(r.code, 2, `${cmd.join(' ')} exits 2`)
      t.match(r.err, /holds: 9 distinct hold durations; the data plane has 8/)
    }
    const bad = await cli(['rules', 'print', '--interfaces', 'abcdefghijklmno+'])
    t.equal(bad.code, 2, 'an interface name the rule manager would refuse exits 2 at config load')
    t.match(bad.err, /^dns-shaper: --interfaces: "abcdefghijklmno\+" is not an interface name/)
  },
)

t.test('config keys inherited from Object.prototype exit 2', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'dnss-cli-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const key of ['constructor', 'toString', '__proto__', 'valueOf']) {
    const file = join(dir, 'c.json')
    writeFileSync(file, `{${JSON.stringify(key)}: 1}`)
    const r = await cli(['rules', 'print', '--config', file])
    t.equal(r.code, 2, key)
    t.match(r.err, `${key}: unknown key`)
  }
})

t.test("COMMAND --help and -h: that command's usage on stdout, exit 0", async t => {
  for (const cmd of ['run', 'rules', 'check', 'version']) {
    for (const h of ['--help', '-h']) {
      t.same(await cli([cmd, h]), { code: 0, out: COMMAND_USAGE[cmd], err: '' }, `${cmd} ${h}`)
    }
    t.same(await cli(['help', cmd]), { code: 0, out: COMMAND_USAGE[cmd], err: '' }, `help ${cmd}`)
  }
  t.match(COMMAND_USAGE.run, /^usage: dns-shaper run/)
  t.same(
    await cli(['run', '--delay', '7', '--help']),
    { code: 0, out: COMMAND_USAGE.run, err: '' },
    'among other flags',
  )
  t.same(await cli(['rules', 'print', '-h']), { code: 0, out: COMMAND_USAGE.rules, err: '' })
  for (const f of RUN_FLAGS) t.match(COMMAND_USAGE.run, `--${f}`, `run usage documents --${f}`)
  t.match(COMMAND_USAGE.check, /--sample SECONDS/)
  const bad = await cli(['help', 'frob'])
  t.equal(bad.code, 2)
  t.match(bad.err, /no command "frob"/)
})

t.test('usage printed because of an error goes to stderr', async t => {
  const r = await cli(['rules'])
  t.equal(r.code, 2)
  t.equal(r.out, '')
  t.match(r.err, /expected print, install or remove/)
  t.match(r.err, /usage: dns-shaper rules/)
})

t.test('demo is not a product command (it lives in the lab: npm run demo)', async t => {
  const r = await cli(['demo'])
  t.equal(r.code, 2)
  t.match(r.err, /unknown command "demo"/)
  t.notMatch(USAGE, /dns-shaper demo/)
})

t.test('help, version and rules print run with build/Release/nfqueue.node absent', async t => {
  // The built product (dist/, what ships) copied beside package.json and node_modules but no build/:
  // the addon is really absent, and the one module that loads it says so when something asks for it.
  const repo = fileURLToPath(new URL('../', import.meta.url))
  t.ok(existsSync(join(repo, 'dist/cli.js')), 'dist/ is built (npm ci or npm run build)')
  const dir = mkdtempSync(join(tmpdir(), 'dnss-noaddon-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  cpSync(join(repo, 'dist'), join(dir, 'dist'), { recursive: true })
  cpSync(join(repo, 'package.json'), join(dir, 'package.json'))
  symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'))
  const env = { ...process.env }
  delete env.DNS_SHAPER_ADDON
  const run = (...argv: string[]) =>
    spawnSync(process.execPath, [join(dir, 'dist/cli.js'), ...argv], { cwd: dir, env, encoding: 'utf8' })
  const v = run('version')
  t.equal(v.status, 0, v.stderr)
  t.match(v.stdout, /^\d+\.\d+\.\d+\n$/)
  const h = run('--help')
  t.equal(h.status, 0, h.stderr)
  t.equal(h.stdout, USAGE)
  const p = run('rules', 'print', '--delay', '7')
  t.equal(p.status, 0, p.stderr)
  t.match(p.stdout, /-j NFQUEUE --queue-num 0/)
  // What needs the addon still reports that it is missing: it really was absent above.
  const load = spawnSync(
    process.execPath,
    ['-e', `import(${JSON.stringify(join(dir, 'dist/dataplane/nfqueue.js'))})`],
    {
      cwd: dir,
      env,
      encoding: 'utf8',
    },
  )
  t.not(load.status, 0)
  t.match(load.stderr, /native addon nfqueue\.node not found/)
})

t.test('probe and check --probe: bad flags exit 2 before anything is built', async t => {
  const help = await cli(['probe', '--help'])
  t.equal(help.code, 0)
  t.equal(help.out, COMMAND_USAGE.probe)
  t.match(help.out, /--serve HOST:PORT/)
  for (const [argv, line] of [
    [['probe', '--pairs', '1'], /--pairs: "1" is not valid \(accepted: 2\.\.20000\)/],
    [['probe', '--pairs', 'many'], /--pairs: "many" is not valid/],
    [['probe', '--serve', 'nowhere'], /--serve: "nowhere" is not HOST:PORT/],
    [['probe', 'extra'], /extra: unexpected argument/],
    [['probe', '--frob'], /--frob: unknown flag/],
    [['check', '--probe', '--probe-pairs', '0'], /--probe-pairs: "0" is not valid/],
  ] as [string[], RegExp][]) {
    const r = await cli(argv)
    t.equal(r.code, 2, argv.join(' '))
    t.match(r.err, line, argv.join(' '))
  }
})
