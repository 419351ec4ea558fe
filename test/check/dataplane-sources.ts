// Tests for check/dataplane-sources.ts: every source read on its own, over a fake runner and fixture files; nothing that writes.
import t from 'tap'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { probeDataplane } from '../../src/check/dataplane-sources.js'
import { result } from '../helpers/check.js'
import type { ExecResult, Runner } from '../../src/kernel/exec.js'

const enoent = (argv0: string): Error =>
  Object.assign(new Error(`spawn ${argv0} ENOENT`), { code: 'ENOENT', syscall: `spawn ${argv0}` })

/** A runner answering from a table keyed by the joined argv; unknown commands are not installed. */
function tableRunner(table: Record<string, ExecResult>, calls: string[][] = []): Runner {
  return async argv => {
    calls.push([...argv])
    const r = table[argv.join(' ')]
    if (!r) throw enoent(argv[0]!)
    return r
  }
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
      'nft list tables': result('table ip kube-proxy\n'),
      'ip -o link show': result('1: lo: <LOOPBACK>\n'),
    },
    calls,
  )
  const inp = await probeDataplane(run, proc, tmp)
  t.match(inp.iptablesNat, /KUBE-SVC-A/)
  t.equal(inp.nftTables, 'table ip kube-proxy\n')
  t.equal(inp.links, '1: lo: <LOOPBACK>\n')
  t.match(inp.ipvs, /^IP Virtual Server/)
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
