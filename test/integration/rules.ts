// Integration: the rule manager against real iptables (nft and legacy, IPv4 and IPv6), each run in a
// fresh network namespace that is always deleted. Nothing here touches the root namespace's firewall.
import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import type { Config } from '../../src/config/types.js'
import { createRunner, netnsWrap, type Runner } from '../../src/kernel/exec.js'
import { CHAIN } from '../../src/rules/plan.js'
import { RuleManager } from '../../src/rules/manager.js'
import { parseSave } from '../../src/rules/save.js'
import { type Backend } from '../../src/rules/backend.js'
import { type Family } from '../../src/config/types.js'
import { binaries } from '../../src/rules/backend.js'
import { configWith, type ConfigOverrides } from '../helpers/config.js'
import { IPTABLES_BOTH_BACKENDS, whyNot } from '../../harness/skip.js'
import { RawNamespaces } from '../../harness/raw-netns.js'

const run = createRunner({ timeoutMs: 20_000 })

const skip = whyNot({ root: 'network namespaces and iptables', tools: [['ip', '-V'], ...IPTABLES_BOTH_BACKENDS] })

if (skip !== false) {
  t.plan(0, skip)
} else {
  main()
}

function cfg(over: ConfigOverrides = {}): Config {
  return configWith(over)
}

const created = new RawNamespaces()

async function sh(argv: string[], input?: string): Promise<string> {
  const r = await run(argv, input === undefined ? {} : { input })
  if (r.code !== 0) throw new Error(`${argv.join(' ')} failed (${String(r.code)}): ${r.stderr}`)
  return r.stdout
}

async function newNs(t: Test): Promise<{ ns: string; inNs: Runner }> {
  const ns = `dnss-${process.pid}-${randomBytes(3).toString('hex')}`
  await sh(['ip', 'netns', 'add', ns])
  created.add(ns)
  t.teardown(() => created.delete(ns))
  const inNs: Runner = (argv, opts) => run([...netnsWrap(ns), ...argv], opts)
  // A veth pair inside the namespace. DNS to 198.51.100.53 / 2001:db8:53::53 leaves through dnss0
  // (OUTPUT hook) to a static neighbour with dnss1's MAC, so it comes back in on dnss1 (PREROUTING
  // hook) and is then dropped by routing (local source address). Both hooks see every packet once.
  for (const cmd of [
    ['link', 'set', 'lo', 'up'],
    ['link', 'add', 'dnss0', 'type', 'veth', 'peer', 'name', 'dnss1'],
    ['addr', 'add', '192.0.2.2/24', 'dev', 'dnss0'],
    ['-6', 'addr', 'add', '2001:db8:1::2/64', 'dev', 'dnss0', 'nodad'],
    ['link', 'set', 'dnss0', 'up'],
    ['link', 'set', 'dnss1', 'up'],
    ['route', 'add', '198.51.100.0/24', 'dev', 'dnss0'],
    ['-6', 'route', 'add', '2001:db8:53::/64', 'dev', 'dnss0'],
  ]) {
    await sh(['ip', '-n', ns, ...cmd])
  }
  const mac = (JSON.parse(await sh(['ip', '-n', ns, '-j', 'link', 'show', 'dnss1'])) as { address: string }[])[0]!
    .address
  await sh(['ip', '-n', ns, 'neigh', 'add', '198.51.100.53', 'lladdr', mac, 'dev', 'dnss0', 'nud', 'permanent'])
  await sh(['ip', '-n', ns, '-6', 'neigh', 'add', '2001:db8:53::53', 'lladdr', mac, 'dev', 'dnss0', 'nud', 'permanent'])
  return { ns, inNs }
}

async function restore(inNs: Runner, backend: Backend, family: Family, text: string): Promise<void> {
  const r = await inNs([binaries(backend, family).restore, '--noflush'], { input: text })
  if (r.code !== 0) throw new Error(`restore failed: ${r.stderr}\n${text}`)
}

async function save(inNs: Runner, backend: Backend, family: Family): Promise<string> {
  // No -t: legacy would create the table just by being asked about it.
  const r = await inNs([binaries(backend, family).save])
  if (r.code !== 0) throw new Error(`save failed: ${r.stderr}`)
  return r.stdout
}

/** Save output without comment lines and counters. */
function strip(text: string): string {
  return text
    .split('\n')
    .filter(l => l.trim() !== '' && !l.startsWith('#'))
    .map(l => l.replace(/\[\d+:\d+\]/g, '[]'))
    .join('\n')
}

/** Like strip, and an empty built-in chain (or an empty table) counts as absent. */
function lenient(text: string): string {
  const out: string[] = []
  for (const [name, table] of parseSave(text)) {
    const used = new Set(table.rules.map(r => r.chain))
    const chains = [...table.chains].filter(([c, policy]) => policy === '-' || used.has(c) || policy !== 'ACCEPT')
    if (chains.length === 0 && table.rules.length === 0) continue
    out.push(`*${name}`, ...chains.map(([c, p]) => `:${c} ${p}`), ...table.rules.map(r => r.line), 'COMMIT')
  }
  return out.join('\n')
}

function foreignRules(family: Family): string {
  const src = family === 'ipv4' ? '203.0.113.7/32' : '2001:db8:ff::7/128'
  const dst = family === 'ipv4' ? '198.51.100.53/32' : '2001:db8:53::53/128'
  return `*raw
:OTHER-CHAIN - [0:0]
-A PREROUTING -s ${src} -p tcp -m tcp --dport 53 -j ACCEPT
-A PREROUTING -m comment --comment "other: not dns-shaper" -j OTHER-CHAIN
-A OUTPUT -d ${src} -m comment --comment "other: keep me" -j ACCEPT
-A OTHER-CHAIN -p udp -m udp --dport 5353 -j ACCEPT
COMMIT
*filter
-A OUTPUT -d ${dst} -p udp -m udp --dport 53 -m comment --comment "other: counts what got past raw" -j ACCEPT
COMMIT
`
}

/** Send `count` UDP datagrams to addr:53 from inside the namespace (OUTPUT hook). */
async function sendDns(inNs: Runner, family: Family, count: number): Promise<void> {
  const addr = family === 'ipv4' ? '198.51.100.53' : '2001:db8:53::53'
  const script = `
    const s = require('node:dgram').createSocket(${JSON.stringify(family === 'ipv4' ? 'udp4' : 'udp6')});
    const q = Buffer.from('12340100000100000000000003777777076578616d706c6503636f6d00001c0001', 'hex');
    let left = ${count};
    const next = () => left-- === 0 ? s.close() : s.send(q, 53, ${JSON.stringify(addr)}, (e) => { if (e) { console.error(e); process.exit(1); } next(); });
    next();`
  const r = await inNs([process.execPath, '-e', script])
  if (r.code !== 0) throw new Error(`send failed: ${r.stderr}`)
}

/** Sum of the packet counters of the rules in `chain` of `table`, via `iptables -L -v -x -n`. */
async function packets(inNs: Runner, backend: Backend, family: Family, table: string, chain: string): Promise<number> {
  const r = await inNs([binaries(backend, family).iptables, '-t', table, '-L', chain, '-v', '-x', '-n'])
  if (r.code !== 0) throw new Error(`list failed: ${r.stderr}`)
  let n = 0
  for (const l of r.stdout.split('\n').slice(2)) {
    const m = /^\s*(\d+)\s+\d+\s/.exec(l)
    if (m) n += Number(m[1])
  }
  return n
}

function rootSnapshot(): string {
  const out: string[] = []
  for (const b of ['iptables-nft-save', 'iptables-legacy-save', 'ip6tables-nft-save', 'ip6tables-legacy-save']) {
    try {
      out.push(strip(execFileSync(b, { encoding: 'utf8' })))
    } catch (e) {
      out.push(`${b}: ${String(e)}`)
    }
  }
  return out.join('\n---\n')
}

function main(): void {
  const rootBefore = rootSnapshot()
  // Only this run's own namespaces (named dnss-PID-...): other processes on the machine may add and
  // delete theirs meanwhile, and that must not fail this test.
  const ownNamespaces = (): string[] =>
    execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .map(l => l.split(' ')[0] ?? '')
      .filter(n => n.startsWith(`dnss-${process.pid}-`))
  const nsBefore = ownNamespaces()

  for (const backend of ['nft', 'legacy'] as const) {
    t.test(`${backend}: install, reinstall, traffic, remove`, async t => {
      const { ns, inNs } = await newNs(t)
      const logs: string[] = []
      const config = cfg({
        iptablesBackend: backend,
        dnsIp: ['198.51.100.53', '2001:db8:53::53/128', '203.0.113.0/24'],
        interfaces: ['dnss0', 'dnss1', 'eth+'],
      })
      const m = new RuleManager({ config, netns: ns, log: { info: x => logs.push(x) } })
      t.equal((await m.detectBackend()).backend, backend)

      for (const family of ['ipv4', 'ipv6'] as const) await restore(inNs, backend, family, foreignRules(family))
      const before = { ipv4: await save(inNs, backend, 'ipv4'), ipv6: await save(inNs, backend, 'ipv6') }

      await m.install()
      await m.install()
      for (const family of ['ipv4', 'ipv6'] as const) {
        const now = await save(inNs, backend, family)
        const raw = parseSave(now).get('raw')!
        t.equal(
          raw.rules.filter(r => r.chain === 'PREROUTING' && r.args.includes(CHAIN)).length,
          1,
          `${family}: one PREROUTING jump`,
        )
        t.equal(
          raw.rules.filter(r => r.chain === 'OUTPUT' && r.args.includes(CHAIN)).length,
          1,
          `${family}: one OUTPUT jump`,
        )
        // Foreign rules are still all there, in order.
        const foreign = (text: string): string[] =>
          [...parseSave(text)].flatMap(([tb, x]) =>
            x.rules.filter(r => r.chain !== CHAIN && !r.args.includes(CHAIN)).map(r => `${tb} ${r.line}`),
          )
        t.same(foreign(now), foreign(before[family]), `${family}: foreign rules untouched`)
      }

      // A SIGKILLed daemon of an older version left an extra jump: the next install ends with one.
      await restore(
        inNs,
        backend,
        'ipv4',
        `*raw\n-I PREROUTING 1 -m comment --comment "dns-shaper: stale" -j ${CHAIN}\nCOMMIT\n`,
      )
      const r = await m.install()
      t.equal(r.families[0]!.jumpsRemoved, 3)
      const st = await m.status()
      t.same(
        st.families.map(f => [f.family, f.upToDate, f.jumps.map(j => `${j.chain}x${j.count}`).join(',')]),
        [
          ['ipv4', true, 'PREROUTINGx1,OUTPUTx1'],
          ['ipv6', true, 'PREROUTINGx1,OUTPUTx1'],
        ],
        'status reads back exactly what was rendered (canonical CIDRs, interfaces)',
      )
      t.equal(st.families[0]!.rules.length, 2 * 3 * 2, 'ipv4: 2 CIDRs x 3 interfaces x 2 directions')
      t.equal(st.families[1]!.rules.length, 1 * 3 * 2)

      // Traffic hits the rule and, with --queue-bypass and no listener, still gets through.
      for (const family of ['ipv4', 'ipv6'] as const) {
        const hitsBefore = await packets(inNs, backend, family, 'raw', CHAIN)
        const passedBefore = await packets(inNs, backend, family, 'filter', 'OUTPUT')
        await sendDns(inNs, family, 3)
        await new Promise(r => setTimeout(r, 200)) // the veth hop back in is asynchronous
        t.equal(
          (await packets(inNs, backend, family, 'raw', CHAIN)) - hitsBefore,
          6,
          `${family}: 3 packets matched ${CHAIN} in OUTPUT and again in PREROUTING`,
        )
        t.equal(
          (await packets(inNs, backend, family, 'filter', 'OUTPUT')) - passedBefore,
          3,
          `${family}: 3 packets passed on`,
        )
      }
      const counted = await m.status()
      const v4 = counted.families[0]!
      t.equal(
        v4.rules.reduce((a, x) => a + x.packets, 0),
        6,
        'status reports the packet counters',
      )
      t.same(
        v4.rules.filter(x => x.packets > 0).map(x => [x.line.match(/-[io] \S+/)?.[0], x.packets]),
        [
          ['-i dnss1', 3],
          ['-o dnss0', 3],
        ],
        'prerouting matched on the way in, output on the way out',
      )
      t.ok((v4.jumps.find(j => j.chain === 'OUTPUT')?.packets ?? 0) >= 3)

      // Reconfigure in place (all destinations, no interfaces, 4 queues).
      const m2 = new RuleManager({ config: cfg({ iptablesBackend: backend, queues: 4 }), netns: ns })
      await m2.install()
      const st2 = await m2.status()
      t.same(
        st2.families.map(f => f.upToDate),
        [true, true],
      )
      // Default kernel filter (auto → xt_bpf): iptables-save prints the program as rendered.
      t.match(
        st2.families[0]!.rules.map(x => x.line),
        [
          /^-A DNS-SHAPER -p udp -m udp --dport 53 -m bpf --bytecode "\d+,[0-9 ,]+" -j NFQUEUE --queue-balance 0:3 --queue-bypass$/,
        ],
      )

      await m2.remove()
      for (const family of ['ipv4', 'ipv6'] as const) {
        t.equal(strip(await save(inNs, backend, family)), strip(before[family]), `${family}: tables as before`)
      }
      const again = await m.remove()
      t.same(
        again.families.map(f => f.changed),
        [false, false],
        'second remove: nothing to do',
      )
      t.ok(logs.some(l => l.startsWith('install ipv4: applied')))
    })

    t.test(`${backend}: empty namespace, IPv4-only dns-ip, remove leaves no trace`, async t => {
      const { ns, inNs } = await newNs(t)
      const before = { ipv4: await save(inNs, backend, 'ipv4'), ipv6: await save(inNs, backend, 'ipv6') }
      const m = new RuleManager({
        config: cfg({ iptablesBackend: backend, dnsIp: ['198.51.100.53'], hooks: ['output'] }),
        netns: ns,
      })
      const r = await m.install()
      t.same(
        r.families.map(f => [f.family, f.changed, f.skipped]),
        [
          ['ipv4', true, undefined],
          ['ipv6', false, '--dns-ip lists no IPv6 address, so IPv6 DNS is not shaped'],
        ],
      )
      t.equal(
        parseSave(await save(inNs, backend, 'ipv6'))
          .get('raw')
          ?.chains.has(CHAIN) ?? false,
        false,
        'no IPv6 chain',
      )
      await sendDns(inNs, 'ipv4', 2)
      await new Promise(r => setTimeout(r, 200))
      t.equal(await packets(inNs, backend, 'ipv4', 'raw', CHAIN), 2, 'output hook only')
      await m.remove()
      t.equal(lenient(await save(inNs, backend, 'ipv4')), lenient(before.ipv4))
      t.equal(lenient(await save(inNs, backend, 'ipv6')), lenient(before.ipv6))
    })
  }

  for (const backend of ['nft', 'legacy'] as const) {
    t.test(`${backend}: remove leaves the tables as found, no base chain of ours left hooked`, async t => {
      const { inNs, ns } = await newNs(t)
      const hooked = async (): Promise<string[]> =>
        (await sh([...netnsWrap(ns), 'nft', 'list', 'ruleset']))
          .split('\n')
          .map(l => l.trim())
          .filter(l => l.startsWith('chain ') || l.startsWith('table ') || / hook /.test(l))
      t.same(await hooked(), [], 'nothing in nf_tables before')
      // The CLI's `rules remove` (one call) and the daemon's stop (rules, then hooks once released).
      const m = new RuleManager({ config: cfg({ iptablesBackend: backend }), netns: ns })
      await m.install()
      await m.remove()
      // iptables-nft cannot delete a table: the manager deletes the empty ones it created with nft.
      t.same(await hooked(), [], 'nothing left in nf_tables, not even an empty table (legacy never touches it)')
      const d = new RuleManager({ config: cfg({ iptablesBackend: backend }), netns: ns })
      await d.install()
      t.ok((await hooked()).length > 0 || backend === 'legacy', 'installed')
      await d.remove({ hooks: 'later' })
      if (backend === 'nft')
        t.ok(
          (await hooked()).some(l => / hook /.test(l)),
          'hooks kept while packets may be queued',
        )
      await d.removeHooks()
      t.same(await hooked(), [], 'then deleted, and the tables it created')

      // A table in use before: its chain stays, the chain only we used goes.
      for (const family of ['ipv4', 'ipv6'] as const) {
        const src = family === 'ipv4' ? '203.0.113.7/32' : '2001:db8:ff::7/128'
        await restore(inNs, backend, family, `*raw\n-A PREROUTING -s ${src} -j ACCEPT\nCOMMIT\n`)
      }
      const before = { ipv4: await save(inNs, backend, 'ipv4'), ipv6: await save(inNs, backend, 'ipv6') }
      const hookedBefore = await hooked()
      const e = new RuleManager({ config: cfg({ iptablesBackend: backend }), netns: ns })
      await e.install()
      await e.remove()
      for (const family of ['ipv4', 'ipv6'] as const)
        t.equal(lenient(await save(inNs, backend, family)), lenient(before[family]), `${family}: rules as before`)
      t.same(await hooked(), hookedBefore, 'nf_tables as before: PREROUTING kept (in use), OUTPUT gone')
    })
  }

  t.test('backend detection in a namespace', async t => {
    const { ns, inNs } = await newNs(t)
    const detect = (): Promise<{ backend: Backend; source: string }> =>
      new RuleManager({ config: cfg(), netns: ns }).detectBackend()
    t.same(await detect(), {
      backend: 'nft',
      reason: 'no kubelet hint chain and no rules in either backend; defaulting to nft',
      source: 'default',
    })
    await restore(inNs, 'legacy', 'ipv4', '*filter\n-A INPUT -s 203.0.113.1/32 -j ACCEPT\nCOMMIT\n')
    t.match(await detect(), { backend: 'legacy', source: 'rule-count' })
    await restore(inNs, 'nft', 'ipv4', '*mangle\n:KUBE-IPTABLES-HINT - [0:0]\nCOMMIT\n')
    t.match(await detect(), { backend: 'nft', source: 'kubelet-hint' })
  })

  t.test('root namespace untouched, namespaces deleted', async t => {
    t.equal(rootSnapshot(), rootBefore)
    t.equal(created.live.size, 0)
    t.same(ownNamespaces(), nsBefore, "this run's namespaces are all deleted")
  })
}
