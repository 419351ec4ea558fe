import t from 'tap'
import { main, USAGE } from '../src/cli.js'
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
  t.equal((await cli([])).code, 2, 'no command is bad usage')
  const v = await cli(['version'])
  t.equal(v.code, 0)
  t.match(v.out, /^\d+\.\d+\.\d+\n$/)
  const u = await cli(['frobnicate'])
  t.equal(u.code, 2)
  t.match(u.err, /unknown command "frobnicate" \(accepted: run, rules, check, demo, version, help\)/)
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
