// Tests for check/dataplane-sources.ts: every source read on its own, over a fake runner and fixture files; nothing that writes.
import t from 'tap'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { probeDataplane } from '../../src/check/dataplane-sources.js'
import { result } from '../helpers/check.js'
import { streamingFake } from '../helpers/exec.js'
import type { ExecResult, Runner } from '../../src/kernel/exec.js'

const enoent = (argv0: string): Error =>
  Object.assign(new Error(`spawn ${argv0} ENOENT`), { code: 'ENOENT', syscall: `spawn ${argv0}` })

/**
 * A runner answering from a table keyed by the joined argv, streaming when asked as createRunner does;
 * unknown commands are not installed.
 */
function tableRunner(table: Record<string, ExecResult>, calls: string[][] = []): Runner {
  return streamingFake(async argv => {
    calls.push([...argv])
    const r = table[argv.join(' ')]
    if (!r) throw enoent(argv[0]!)
    return r
  })
}

const tmp = mkdtempSync(join(tmpdir(), 'dnss-dp-probe-'))
t.teardown(() => rmSync(tmp, { recursive: true, force: true }))

t.test('probeDataplane collects every source; legacy save runs without -t (which would load the table)', async t => {
  const proc = join(tmp, 'proc')
  mkdirSync(join(proc, 'net'), { recursive: true })
  writeFileSync(join(proc, 'net/ip_vs'), 'IP Virtual Server version 1.2.1 (size=4096)\n')
  const calls: string[][] = []
  const run = tableRunner(
    {
      'iptables-nft-save -t nat': result('*nat\n:KUBE-SVC-A - [0:0]\nCOMMIT\n'),
      'ip6tables-nft-save -t nat': result('*nat\nCOMMIT\n'),
      'iptables-legacy-save': result(''),
      'nft list table ip kube-proxy': result('table ip kube-proxy {\n\tchain services {\n\t}\n}\n'),
      'nft list table ip6 kube-proxy': result('', 'Error: No such file or directory\nlist table ip6 kube-proxy\n', 1),
      'ip -o link show': result('1: lo: <LOOPBACK>\n'),
    },
    calls,
  )
  const inp = await probeDataplane(run, proc, tmp)
  t.same(inp.iptablesNat instanceof Error ? inp.iptablesNat : [...inp.iptablesNat.svcChains], ['KUBE-SVC-A'])
  t.equal(inp.nftTables, 'table ip kube-proxy\n', 'an absent table is no error')
  t.equal(inp.links, '1: lo: <LOOPBACK>\n')
  t.same(inp.ipvs, { services: 0, udp53: 0 })
  // A temp dir is not a bpf filesystem: the maps are reported unreadable, not as an empty list.
  t.match(inp.bpf, { message: `bpffs is not mounted at ${tmp}` })
  const legacy = calls.filter(c => c[0]!.includes('legacy'))
  t.ok(
    legacy.length > 0 && legacy.every(c => c.length === 1),
    `legacy save without arguments: ${JSON.stringify(legacy)}`,
  )
  t.notOk(
    calls.some(c => /modprobe|-restore|-A|-I|-N/.test(c.join(' '))),
    'nothing that writes',
  )
})

t.test('probeDataplane: missing tools and files say what is missing; ip_vs absent is null', async t => {
  const inp = await probeDataplane(tableRunner({}), join(tmp, 'nope'), join(tmp, 'nope'))
  t.match(inp.iptablesNat, { message: 'no iptables-save is installed' })
  t.match(inp.nftTables, { message: 'nft is not installed' })
  t.match(inp.links, { message: 'ip is not installed' })
  t.equal(inp.ipvs, null)
  t.match(inp.bpf, { message: /bpffs is not mounted/ })
})

t.test('probeDataplane: a failing save is reported with its stderr when no backend answered', async t => {
  const run = tableRunner({
    'iptables-nft-save -t nat': result('', 'iptables-nft-save v1.8.9: Permission denied (you must be root)', 4),
  })
  const inp = await probeDataplane(run, tmp, tmp)
  t.match(inp.iptablesNat, { message: /iptables-nft-save -t nat: .*Permission denied/ })
})

t.test('probeDataplane streams the nat saves one after another and never keeps their output', async t => {
  const v4 = '*filter\n:KUBE-SVC-F - [0:0]\nCOMMIT\n*nat\n:KUBE-SVC-A - [0:0]\n:KUBE-SVC-B - [0:0]\nCOMMIT\n'
  const answers: Record<string, ExecResult> = {
    'iptables-nft-save -t nat': result('*nat\n:KUBE-SVC-A - [0:0]\nCOMMIT\n'),
    'ip6tables-nft-save -t nat': result('*nat\n:KUBE-SVC-C - [0:0]\n', 'ip6tables-nft-save: cannot read', 1),
    'iptables-legacy-save': result(v4),
    'ip6tables-legacy-save': result('*nat\n:KUBE-SVC-B - [0:0]\nCOMMIT\n'),
  }
  let running = 0
  let most = 0
  const unstreamed: string[] = []
  const run: Runner = streamingFake(async (argv, opts) => {
    const key = argv.join(' ')
    if (!(key in answers)) throw enoent(argv[0]!)
    if (opts?.onStdoutLine === undefined) unstreamed.push(key)
    most = Math.max(most, ++running)
    // Another probe gets a turn while this save runs: a concurrent save would start now.
    await new Promise(r => setTimeout(r, 5))
    running--
    return answers[key]!
  })
  const inp = await probeDataplane(run, tmp, tmp)
  t.same(unstreamed, [], 'every save streamed')
  t.equal(most, 1, 'one save at a time: each child holds the whole table (120 MiB for 100k rules)')
  if (inp.iptablesNat instanceof Error) throw inp.iptablesNat
  t.same(
    [...inp.iptablesNat.svcChains].sort(),
    ['KUBE-SVC-A', 'KUBE-SVC-B'],
    'nat only, each once; what the failing save printed is not counted',
  )
})

t.test('probeDataplane counts /proc/net/ip_vs as a stream: lines across read chunks, an unreadable file', async t => {
  const proc = join(tmp, 'proc-ipvs')
  mkdirSync(join(proc, 'net'), { recursive: true })
  // Well over one 64 KiB read: kube-proxy IPVS mode lists every service and real server here.
  const services = 3000
  const lines = ['IP Virtual Server version 1.2.1 (size=4096)', 'Prot LocalAddress:Port Scheduler Flags']
  for (let s = 0; s < services; s++) {
    lines.push(
      `${s % 3 === 0 ? 'UDP' : 'TCP'}  C0000${(s % 256).toString(16).padStart(3, '0')}:${s % 2 === 0 ? '0035' : '01BB'} rr`,
    )
    for (let r = 0; r < 3; r++)
      lines.push(`  -> CB0071${r.toString(16).padStart(2, '0')}:0035      Masq    1      0          0`)
  }
  writeFileSync(join(proc, 'net/ip_vs'), lines.join('\n') + '\n')
  const inp = await probeDataplane(tableRunner({}), proc, tmp)
  // UDP on 0035: s divisible by 3 and by 2.
  t.same(inp.ipvs, { services, udp53: Math.ceil(services / 6) })

  const dirInstead = join(tmp, 'proc-dir')
  mkdirSync(join(dirInstead, 'net/ip_vs'), { recursive: true })
  t.match((await probeDataplane(tableRunner({}), dirInstead, tmp)).ipvs, { message: /EISDIR/ })
})

t.test("probeDataplane asks nft for kube-proxy's tables by name, never for every table", async t => {
  const calls: string[][] = []
  const denied = result('', 'Error: Could not process rule: Operation not permitted', 1)
  const both = await probeDataplane(
    tableRunner(
      {
        'nft list table ip kube-proxy': result('table ip kube-proxy {\n}\n'),
        'nft list table ip6 kube-proxy': result('table ip6 kube-proxy {\n}\n'),
      },
      calls,
    ),
    tmp,
    tmp,
  )
  t.equal(both.nftTables, 'table ip kube-proxy\ntable ip6 kube-proxy\n')
  // `nft list tables` fetches every table's rules first: 358 MiB beside 100k iptables-nft rules.
  t.same(
    calls.filter(c => c[0] === 'nft'),
    [
      ['nft', 'list', 'table', 'ip', 'kube-proxy'],
      ['nft', 'list', 'table', 'ip6', 'kube-proxy'],
    ],
  )
  const none = await probeDataplane(
    tableRunner({
      'nft list table ip kube-proxy': denied,
      'nft list table ip6 kube-proxy': denied,
    }),
    tmp,
    tmp,
  )
  t.match(none.nftTables, { message: /^nft list table ip kube-proxy: .*Operation not permitted; nft list table ip6/ })
})
