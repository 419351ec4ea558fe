// Decides which iptables backend (nft or legacy) this node uses, the way kube-proxy's iptables-wrapper does.
// Read-only: must never create tables (no `-t` for legacy save, which would load the table into the kernel),
// nor hold save output (it grows with kube-proxy's tables): it is streamed and only counted.
import type { Family, IptablesBackend } from '../config/types.js'
import type { Runner } from '../kernel/exec.js'
import { isErrnoException } from '../errors.js'
import { IptablesError, iptablesFailure, iptablesSpawnFailure } from './errors.js'

export type Backend = 'nft' | 'legacy'

export interface BackendDecision {
  backend: Backend
  /** One sentence for the log: why this backend. */
  reason: string
  source: 'config' | 'kubelet-hint' | 'rule-count' | 'default'
}

export interface BackendBinaries {
  iptables: string
  save: string
  restore: string
}

/** Program names for a backend and family (Debian/Ubuntu/RHEL/Alpine names). */
export function binaries(backend: Backend, family: Family): BackendBinaries {
  const base = family === 'ipv6' ? 'ip6tables' : 'iptables'
  return {
    iptables: `${base}-${backend}`,
    save: `${base}-${backend}-save`,
    restore: `${base}-${backend}-restore`,
  }
}

/**
 * Chains kubelet (1.17+) creates in the mangle table of the backend it uses, declared as save prints
 * them (`:NAME`) or as `iptables -S` does (`-N NAME`).
 */
const KUBELET_HINT = /^(?::|-N\s+)(KUBE-IPTABLES-HINT|KUBE-KUBELET-CANARY)(?:\s|$)/

/**
 * What detection keeps of save output: its rule count and the first kubelet hint chain. Constant
 * size whatever the tables hold; save output is read into it line by line (see tallyLine).
 */
export interface SaveTally {
  /** Rules (`-A` lines). */
  rules: number
  /** The first kubelet hint chain declared, if any. */
  hint: string | undefined
}

export function emptyTally(): SaveTally {
  return { rules: 0, hint: undefined }
}

/** Count one line of iptables-save or `iptables -S` output into `tally`. */
export function tallyLine(tally: SaveTally, line: string): void {
  if (line.startsWith('-A ')) tally.rules++
  else if (tally.hint === undefined) tally.hint = KUBELET_HINT.exec(line)?.[1]
}

interface SaveOutput {
  tally: SaveTally
  /** The program could not be run (not installed). */
  missing: boolean
}

/**
 * One save (or `-S`) command, streamed into a tally. Bounded cost: the output (legacy save without -t prints
 * every table, kube-proxy's 100k+ nat rules included) is never held. What is live at any moment is
 * one read chunk (64 KiB) and one line (at most MAX_LINE_CHARS) in the runner, two fields here, and
 * stderr (error text); the per-line garbage dies young, so V8's young generation bounds the rest.
 * Measured (2026-12-07, Node 20, the runner alone on 125-byte rule lines): peak RSS +10 MiB for
 * 100k rules, +11 MiB for 500k, +17 MiB for 2M; buffered it took +46 MiB for 100k and +190 MiB
 * for 500k (2M exceeds the 64 MiB maxBuffer). Only the time grows.
 */
async function trySave(runner: Runner, argv: string[]): Promise<SaveOutput> {
  const tally = emptyTally()
  let res
  try {
    res = await runner(argv, { onStdoutLine: line => tallyLine(tally, line) })
  } catch (e) {
    if (isErrnoException(e) && e.code === 'ENOENT') return { tally: emptyTally(), missing: true }
    throw iptablesSpawnFailure(argv, e)
  }
  if (res.code === 0) return { tally, missing: false }
  const err = iptablesFailure(argv, res)
  // Like the wrapper's `|| true`: a backend whose kernel side is absent just counts as empty (what a
  // failed command printed before it failed is not counted). Missing privileges would make every
  // answer wrong, so that one is reported.
  if (err.kind === 'permission' || err.kind === 'timeout') throw err
  return { tally: emptyTally(), missing: err.kind === 'missing' }
}

export interface DetectOptions {
  /** Called with each probe's outcome, for debug logs. */
  onProbe?: (argv: readonly string[], rules: number, missing: boolean) => void
}

/**
 * Pick the backend. A configured 'nft'/'legacy' wins. Otherwise, as kube-proxy's iptables-wrapper:
 *  1. a kubelet hint chain in the nft mangle table → nft (read with `iptables-nft -t mangle -S`:
 *     iptables-nft-save -t mangle fetches the whole nft ruleset first, 97 MiB and 0.33 s of CPU
 *     beside 100k nft nat rules where -S took 2.2 MiB and 0.00 s, as beside none; 2026-12-07,
 *     iptables 1.8.9. Neither creates the table);
 *  2. a hint chain anywhere in legacy save output → legacy (legacy-save is run without `-t`:
 *     `-t mangle` would create the table in the kernel);
 *  3. more rules in legacy than in nft → legacy; otherwise (tie included) nft.
 */
export async function detectBackend(
  runner: Runner,
  preference: IptablesBackend = 'auto',
  opts: DetectOptions = {},
): Promise<BackendDecision> {
  if (preference === 'nft' || preference === 'legacy') {
    return { backend: preference, reason: `iptables backend ${preference} set by configuration`, source: 'config' }
  }
  const probe = async (argvs: string[][]): Promise<SaveTally & { missing: number }> => {
    const sum = { ...emptyTally(), missing: 0 }
    for (const argv of argvs) {
      const out = await trySave(runner, argv)
      opts.onProbe?.(argv, out.tally.rules, out.missing)
      sum.rules += out.tally.rules
      sum.hint ??= out.tally.hint
      if (out.missing) sum.missing++
    }
    return sum
  }

  const nftMangle = await probe([
    [binaries('nft', 'ipv4').iptables, '-t', 'mangle', '-S'],
    [binaries('nft', 'ipv6').iptables, '-t', 'mangle', '-S'],
  ])
  const nftHint = nftMangle.hint
  if (nftHint !== undefined) {
    return { backend: 'nft', reason: `kubelet chain ${nftHint} found in the nft mangle table`, source: 'kubelet-hint' }
  }
  // Legacy save without -t reads /proc/net/ip_tables_names (root only). Without root, decide from
  // the nft side alone rather than fail: say so in the reason.
  let legacyUnreadable = false
  const legacy = await probe([[binaries('legacy', 'ipv4').save], [binaries('legacy', 'ipv6').save]]).catch(
    (e: unknown) => {
      if (!(e instanceof IptablesError && e.kind === 'permission')) throw e
      legacyUnreadable = true
      return { ...emptyTally(), missing: 0 }
    },
  )
  const legacyHint = legacy.hint
  if (legacyHint !== undefined) {
    return {
      backend: 'legacy',
      reason: `kubelet chain ${legacyHint} found in iptables-legacy-save output`,
      source: 'kubelet-hint',
    }
  }
  const nft = await probe([[binaries('nft', 'ipv4').save], [binaries('nft', 'ipv6').save]])
  if (nft.missing === 2 && legacy.missing === 2) {
    const argv = [binaries('nft', 'ipv4').save]
    throw iptablesSpawnFailure(
      argv,
      Object.assign(new Error(`spawn ${argv[0]} ENOENT`), {
        code: 'ENOENT',
        syscall: `spawn ${argv[0]}`,
        path: argv[0],
      }),
    )
  }
  const nLegacy = legacy.rules
  const nNft = nft.rules
  if (nft.missing === 2) {
    return { backend: 'legacy', reason: 'iptables-nft tools are not installed; using legacy', source: 'default' }
  }
  if (legacy.missing === 2) {
    return { backend: 'nft', reason: 'iptables-legacy tools are not installed; using nft', source: 'default' }
  }
  if (legacyUnreadable) {
    return {
      backend: 'nft',
      reason: `no kubelet hint chain in nft; legacy tables are unreadable without root (/proc/net/ip_tables_names), so nft (${nNft} rules) is assumed; set --iptables-backend legacy if the node uses legacy`,
      source: 'default',
    }
  }
  if (nLegacy > nNft) {
    return {
      backend: 'legacy',
      reason: `no kubelet hint chain; legacy has more rules (${nLegacy}) than nft (${nNft})`,
      source: 'rule-count',
    }
  }
  if (nLegacy === 0 && nNft === 0) {
    return {
      backend: 'nft',
      reason: 'no kubelet hint chain and no rules in either backend; defaulting to nft',
      source: 'default',
    }
  }
  return {
    backend: 'nft',
    reason:
      nNft === nLegacy
        ? `no kubelet hint chain; nft and legacy have as many rules (${nNft}); a tie goes to nft`
        : `no kubelet hint chain; nft has more rules (${nNft}) than legacy (${nLegacy})`,
    source: 'rule-count',
  }
}
