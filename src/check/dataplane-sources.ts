// What tells the service dataplane apart, read from each source on its own (iptables nat saves, nft tables, links, IPVS, bpffs); read-only: it must never load a table or module (legacy save runs without -t for that reason).
import { readdir, readFile, statfs } from 'node:fs/promises'
import { join } from 'node:path'
import { errorMessage } from '../errors.js'
import { output, type Runner } from '../kernel/exec.js'
import type { DataplaneInputs } from './dataplane.js'

export const DEFAULT_BPF_ROOT = '/sys/fs/bpf'
/** statfs(2) f_type of a bpf filesystem (include/uapi/linux/magic.h). */
const BPF_FS_MAGIC = 0xcafe4a11

const isErrno = (e: unknown, code: string): boolean =>
  typeof e === 'object' && e !== null && (e as { code?: unknown }).code === code

/** stdout of argv, or an Error naming the command; `missing` when the program is not installed. */
async function commandText(
  run: Runner,
  argv: string[],
): Promise<{ text: string } | { error: Error; missing: boolean }> {
  try {
    return { text: await output(run, argv) }
  } catch (e: unknown) {
    const missing = /\bENOENT\b/.test(errorMessage(e))
    return { error: missing ? new Error(`${argv[0]} is not installed`) : new Error(errorMessage(e)), missing }
  }
}

/**
 * kube-proxy may use either backend whatever dns-shaper picked: the nat table of every one present.
 * Legacy save runs without -t, which would load the nat table into the kernel.
 */
async function iptablesNat(run: Runner): Promise<string | Error> {
  const dumps = await Promise.all(
    [
      ['iptables-nft-save', '-t', 'nat'],
      ['ip6tables-nft-save', '-t', 'nat'],
      ['iptables-legacy-save'],
      ['ip6tables-legacy-save'],
    ].map(argv => commandText(run, argv)),
  )
  const texts = dumps.flatMap(d => ('text' in d ? [d.text] : []))
  if (texts.length > 0) return texts.join('\n')
  const failed = dumps.flatMap(d => ('error' in d && !d.missing ? [d.error.message] : []))
  return new Error(failed.length > 0 ? failed.join('; ') : 'no iptables-save is installed')
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
  const [iptablesNatText, nftTables, links, ipvs, bpf] = await Promise.all([
    iptablesNat(run),
    text(['nft', 'list', 'tables']),
    text(['ip', '-o', 'link', 'show']),
    readFile(join(procRoot, 'net/ip_vs'), 'utf8').catch((e: unknown) =>
      isErrno(e, 'ENOENT') ? null : new Error(errorMessage(e)),
    ),
    pinnedMaps(bpfRoot),
  ])
  return { iptablesNat: iptablesNatText, nftTables, links, ipvs, bpf }
}
