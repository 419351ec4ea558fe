// What tells the service dataplane apart, read from each source on its own (iptables nat saves, nft tables, links, IPVS, bpffs); read-only: it must never load a table or module (legacy save runs without -t for that reason).
import { createReadStream } from 'node:fs'
import { readdir, statfs } from 'node:fs/promises'
import { join } from 'node:path'
import { errorMessage } from '../errors.js'
import { LineSplitter, output, type Runner } from '../kernel/exec.js'
import {
  emptyIpvsSummary,
  emptyNatSummary,
  ipvsFolder,
  mergeNatSummary,
  natFolder,
  type DataplaneInputs,
  type IpvsSummary,
  type NatSummary,
} from './dataplane.js'

export const DEFAULT_BPF_ROOT = '/sys/fs/bpf'
/** statfs(2) f_type of a bpf filesystem (include/uapi/linux/magic.h). */
const BPF_FS_MAGIC = 0xcafe4a11

const isErrno = (e: unknown, code: string): boolean =>
  typeof e === 'object' && e !== null && (e as { code?: unknown }).code === code

/** Why argv did not answer; `missing` when the program is not installed. */
function commandFailure(argv: readonly string[], e: unknown): { error: Error; missing: boolean } {
  const missing = /\bENOENT\b/.test(errorMessage(e))
  return { error: missing ? new Error(`${argv[0]} is not installed`) : new Error(errorMessage(e)), missing }
}

/** stdout of argv, or an Error naming the command. */
async function commandText(
  run: Runner,
  argv: string[],
): Promise<{ text: string } | { error: Error; missing: boolean }> {
  try {
    return { text: await output(run, argv) }
  } catch (e: unknown) {
    return commandFailure(argv, e)
  }
}

/**
 * Timeout of a command that reads the nf_tables ruleset: not a quick read beside a big kube-proxy.
 * iptables-nft-save -t nat beside 100k rules took 12 s (2026-12-07, iptables 1.8.9, a loaded 2-core
 * machine), fetching the whole ruleset; check's 10 s default for quick reads cut the save off, and the
 * node's kube-proxy went unseen.
 */
export const TABLE_READ_TIMEOUT_MS = 60_000

/** The nat saves, in the order they run. Legacy save runs without -t, which would load the nat table. */
const NAT_SAVES = [
  ['iptables-nft-save', '-t', 'nat'],
  ['ip6tables-nft-save', '-t', 'nat'],
  ['iptables-legacy-save'],
  ['ip6tables-legacy-save'],
]

/**
 * kube-proxy may use either backend whatever dns-shaper picked: the nat table of every one present,
 * folded line by line into a NatSummary. Bounded cost: the saves grow with kube-proxy's rules (100k+
 * on big clusters, and legacy save prints every table), so no output is held: at any moment this
 * holds one read chunk (64 KiB) and one line (at most MAX_LINE_CHARS) in the runner, and two
 * summaries of at most MAX_SVC_CHAINS names each. The saves run one after another because each child
 * holds the whole table itself, in the same pod memory limit as the daemon: iptables-legacy-save and
 * iptables-nft-save -t nat each peaked at ~120 MiB beside 100k rules (2026-12-07, iptables 1.8.9).
 * Measured in check's own process (test/integration/check-large-tables.ts, 2026-12-07): VmHWM 65-67
 * MiB beside 100k legacy nat rules against 56 MiB beside none; 118-127 MiB when every save was read
 * whole. 400k rules: 76 MiB. Only the time grows. What a save printed before it failed is not counted.
 */
async function iptablesNat(run: Runner): Promise<NatSummary | Error> {
  const nat = emptyNatSummary()
  let answered = 0
  const failed: string[] = []
  for (const argv of NAT_SAVES) {
    const dump = emptyNatSummary()
    try {
      await output(run, argv, { onStdoutLine: natFolder(dump), timeoutMs: TABLE_READ_TIMEOUT_MS })
    } catch (e: unknown) {
      const f = commandFailure(argv, e)
      if (!f.missing) failed.push(f.error.message)
      continue
    }
    mergeNatSummary(nat, dump)
    answered++
  }
  if (answered > 0) return nat
  return new Error(failed.length > 0 ? failed.join('; ') : 'no iptables-save is installed')
}

/**
 * /proc/net/ip_vs counted line by line, null when absent. Bounded cost: the file lists every virtual
 * service and real server of kube-proxy's IPVS mode; read as a stream it costs one 64 KiB chunk and
 * one line at a time, not the whole table.
 */
async function ipvsServices(path: string): Promise<IpvsSummary | null | Error> {
  const ipvs = emptyIpvsSummary()
  const lines = new LineSplitter(ipvsFolder(ipvs))
  try {
    for await (const chunk of createReadStream(path, { encoding: 'utf8' })) lines.push(chunk as string)
    lines.end()
    return ipvs
  } catch (e: unknown) {
    return isErrno(e, 'ENOENT') ? null : new Error(errorMessage(e))
  }
}

/**
 * kube-proxy's nftables mode keeps its rules in one table per family, named kube-proxy:
 * https://github.com/kubernetes/kubernetes/blob/master/pkg/proxy/nftables/proxier.go (kubeProxyTable).
 */
const KUBE_PROXY_NFT_FAMILIES = ['ip', 'ip6']

/**
 * kube-proxy's nft tables that exist, one `table FAMILY kube-proxy` line each, as `nft list tables`
 * prints them. Bounded cost: `nft list tables` fetches the whole ruleset into its cache, everyone's
 * rules included (358 MiB and 3-5 s beside 100k iptables-nft rules, nftables 1.0.6, 2026-12-07), and
 * check shares the pod's 256Mi limit with the daemon; `nft list table ip kube-proxy` fetches that table
 * only (13 MiB there when absent). Its output, the whole table, is streamed and dropped.
 */
async function kubeProxyNftTables(run: Runner): Promise<string | Error> {
  const found: string[] = []
  const failed: string[] = []
  for (const family of KUBE_PROXY_NFT_FAMILIES) {
    const argv = ['nft', 'list', 'table', family, 'kube-proxy']
    try {
      await output(run, argv, { onStdoutLine: () => {}, timeoutMs: TABLE_READ_TIMEOUT_MS })
      found.push(`table ${family} kube-proxy\n`)
    } catch (e: unknown) {
      const f = commandFailure(argv, e)
      if (f.missing) return f.error
      // nft's answer for a table that does not exist: "Error: No such file or directory; did you mean ...".
      if (!/No such file or directory/.test(f.error.message)) failed.push(f.error.message)
    }
  }
  return found.length === 0 && failed.length > 0 ? new Error(failed.join('; ')) : found.join('')
}

/** Names under the bpffs mount, tc/globals included (where Cilium and Calico pin their maps). */
async function pinnedMaps(root: string): Promise<string[] | Error> {
  try {
    if ((await statfs(root)).type !== BPF_FS_MAGIC) return new Error(`bpffs is not mounted at ${root}`)
    const top = await readdir(root)
    const globals = await readdir(join(root, 'tc/globals')).catch((e: unknown) => {
      if (isErrno(e, 'ENOENT')) return [] as string[]
      throw e
    })
    return [...top, ...globals.map(g => `tc/globals/${g}`)]
  } catch (e: unknown) {
    return isErrno(e, 'ENOENT')
      ? new Error(`bpffs is not mounted at ${root}`)
      : new Error(`${root}: ${errorMessage(e)}`)
  }
}

/** Every source classifyDataplanes reads, each an Error of its own when unreadable. Read-only. */
export async function probeDataplane(run: Runner, procRoot: string, bpfRoot: string): Promise<DataplaneInputs> {
  const text = async (argv: string[]): Promise<string | Error> => {
    const r = await commandText(run, argv)
    return 'text' in r ? r.text : r.error
  }
  // `ip -o link show` prints one line per interface: it does not grow with kube-proxy's rules.
  const [iptablesNatSummary, nftTables, links, ipvs, bpf] = await Promise.all([
    iptablesNat(run),
    kubeProxyNftTables(run),
    text(['ip', '-o', 'link', 'show']),
    ipvsServices(join(procRoot, 'net/ip_vs')),
    pinnedMaps(bpfRoot),
  ])
  return { iptablesNat: iptablesNatSummary, nftTables, links, ipvs, bpf }
}
