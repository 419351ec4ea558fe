// What the race probe's parent and its agents (agent.ts) say to each other: one JSON object per line.
// Types only; no I/O.
import type { SplitCpuOptions } from '../dataplane/nfqueue.js'

export type AgentRequest = { id: number } & (
  | { op: 'exec'; argv: string[]; input?: string; timeoutMs?: number }
  /** Reads a net.* sysctl of the agent's namespace; writes `value` when it differs. */
  | { op: 'sysctl'; name: string; value?: string }
  /** Conntrack statistics of the agent's namespace (ctnetlink, else procfs). */
  | { op: 'stats' }
  /** Answers DNS queries on each address (one socket per address, so replies leave from it). */
  | { op: 'serve'; addresses: string[]; port: number }
  /** How many queries the responder answered so far. */
  | { op: 'served' }
  | { op: 'send'; options: SplitCpuOptions }
  /** The CPUs the agent may run on. */
  | { op: 'cpus' }
)

/** Id 0 is the agent's greeting (`result.pid`); every other reply carries its request's id. */
export type AgentReply = { id: number } & ({ ok: true; result: unknown } | { ok: false; error: string })
