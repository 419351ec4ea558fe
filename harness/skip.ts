// The one skip guard of the root-only tests: what a test file needs (root, tools, CPUs, built files) and,
// when something is missing, the file ends as skipped with the reason (tap's plan 0), never as a pass.
// Test-only (imports tap); the labs and the benchmark check their own needs and exit with an operator message.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { cpus } from 'node:os'

export interface Needs {
  /** What root is for, e.g. 'network namespaces, iptables, NFQUEUE'. */
  root?: string
  /** Programs that must run: a name (run with --version) or [name, ...args]. */
  tools?: readonly (string | readonly [string, ...string[]])[]
  /** At least this many CPUs, and why. */
  cpus?: { n: number; why: string }
  /** Files that must exist (built artefacts), each with the command that makes it. */
  files?: readonly { path: string; make: string }[]
}

/** True when `program args` runs and exits 0. */
export function hasTool(program: string, ...args: string[]): boolean {
  const r = spawnSync(program, args.length > 0 ? args : ['--version'], { stdio: 'ignore', timeout: 20_000 })
  return r.error === undefined && r.status === 0
}

/** The first unmet need as a skip reason, or false when the test can run here. */
export function whyNot(needs: Needs): string | false {
  if (needs.root !== undefined && process.getuid?.() !== 0) return `needs root (${needs.root})`
  for (const tool of needs.tools ?? []) {
    const [program, ...args] = typeof tool === 'string' ? [tool] : tool
    if (!hasTool(program!, ...args)) return `needs ${program} (not found or not working)`
  }
  if (needs.cpus !== undefined && cpus().length < needs.cpus.n) return `needs ${needs.cpus.n} CPUs: ${needs.cpus.why}`
  for (const f of needs.files ?? []) if (!existsSync(f.path)) return `${f.path} missing: run \`${f.make}\` first`
  return false
}

/** Ends the test file as skipped (plan 0, with the reason) unless every need is met. */
export function skipFileUnless(needs: Needs): void {
  const why = whyNot(needs)
  if (why === false) return
  t.plan(0, why)
  process.exit(0)
}

/** The rule tests run every backend: iptables and ip6tables, nft and legacy. */
export const IPTABLES_BOTH_BACKENDS = ['iptables-nft', 'iptables-legacy', 'ip6tables-nft', 'ip6tables-legacy'] as const
