// Reads what classifyDataplanes needs from the node: iptables-save nat tables (both backends), nft tables,
// links, /proc/net/ip_vs and the pinned maps under /sys/fs/bpf. Read-only: it must not create tables or
// load modules (legacy save runs without -t, which would load the nat table into the kernel).
import { readdir, readFile, statfs } from 'node:fs/promises'
import { join } from 'node:path'
import type { Runner } from '../exec.js'
import type { DataplaneInputs } from './dataplane.js'

/** statfs(2) f_type of a bpf filesystem (include/uapi/linux/magic.h). */
const BPF_FS_MAGIC = 0xcafe4a11

export interface DataplaneProbeOptions {
  run: Runner
  /** /proc of the namespace to look at (default /proc). */
  procRoot?: string
  /** The bpffs mount point (default /sys/fs/bpf). */
  bpfRoot?: string
}

const isErrno = (e: unknown, code: string): boolean =>
  typeof e === 'object' && e !== null && (e as { code?: unknown }).code === code

const asError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)))

/** stdout of argv, or an Error naming the command; `missing` when the program is not installed. */
async function output(run: Runner, argv: string[]): Promise<{ text: string } | { error: Error; missing: boolean }> {
  try {
    const r = await run(argv, { timeoutMs: 10_000 })
    if (r.code === 0) return { text: r.stdout }
    const why = r.timedOut ? 'timed out' : r.stderr.trim() || `exit ${String(r.code)}`
    return { error: new Error(`${argv.join(' ')}: ${why}`), missing: false }
  } catch (e: unknown) {
    if (isErrno(e, 'ENOENT')) return { error: new Error(`${argv[0]} is not installed`), missing: true }
    return { error: new Error(`${argv.join(' ')}: ${asError(e).message}`), missing: false }
  }
}

/** kube-proxy can use either backend whatever dns-shaper picked: read the nat table of every one present. */
async function iptablesNat(run: Runner): Promise<string | Error> {
  const dumps = await Promise.all(
    [
      ['iptables-nft-save', '-t', 'nat'],
      ['ip6tables-nft-save', '-t', 'nat'],
      ['iptables-legacy-save'],
      ['ip6tables-legacy-save'],
    ].map(argv => output(run, argv)),
  )
  const texts = dumps.flatMap(d => ('text' in d ? [d.text] : []))
  if (texts.length > 0) return texts.join('\n')
  const failed = dumps.flatMap(d => ('error' in d && !d.missing ? [d.error.message] : []))
  return new Error(failed.length > 0 ? failed.join('; ') : 'no iptables-save is installed')
}

async function pinnedMaps(root: string): Promise<string[] | Error> {
  try {
    if ((await statfs(root)).type !== BPF_FS_MAGIC) return new Error(`bpffs is not mounted at ${root}`)
  } catch (e: unknown) {
    return isErrno(e, 'ENOENT') ? new Error(`bpffs is not mounted at ${root}`) : asError(e)
  }
  try {
    const top = await readdir(root)
    // Cilium and Calico both pin their maps in tc/globals (iproute2's convention).
    const globals = await readdir(join(root, 'tc/globals')).catch((e: unknown) => {
      if (isErrno(e, 'ENOENT')) return [] as string[]
      throw e
    })
    return [...top, ...globals.map(g => `tc/globals/${g}`)]
  } catch (e: unknown) {
    return new Error(`cannot list ${root}: ${asError(e).message}`)
  }
}

export async function probeDataplane(o: DataplaneProbeOptions): Promise<DataplaneInputs> {
  const text = async (argv: string[]): Promise<string | Error> => {
    const r = await output(o.run, argv)
    return 'text' in r ? r.text : r.error
  }
  const ipvs = readFile(join(o.procRoot ?? '/proc', 'net/ip_vs'), 'utf8').catch((e: unknown) =>
    isErrno(e, 'ENOENT') ? null : asError(e),
  )
  const [nat, nft, links, ipvsText, bpf] = await Promise.all([
    iptablesNat(o.run),
    text(['nft', 'list', 'tables']),
    text(['ip', '-o', 'link', 'show']),
    ipvs,
    pinnedMaps(o.bpfRoot ?? '/sys/fs/bpf'),
  ])
  return { iptablesNat: nat, nftTables: nft, links, ipvs: ipvsText, bpf }
}
