// The parent's side of a race-probe agent: starts `dns-shaper-netns node agent.js` (the addon's helper:
// a new, anonymous network namespace that lives as long as the agent), sends it requests and waits for the replies. It never
// enters a namespace itself; stop() ends the agent, and with it the namespace and everything in it.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { ExecResult } from '../kernel/exec.js'
import type { ConntrackReading } from '../kernel/conntrack-stats.js'
import type { SplitCpuOptions, SplitCpuResult } from '../dataplane/nfqueue.js'
import type { AgentReply, AgentRequest } from './agent-protocol.js'

type Req = AgentRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never

/** The agent script beside this file (agent.ts under the tests' TypeScript loader, agent.js when built). */
function agentArgv(): string[] {
  const self = fileURLToPath(import.meta.url)
  const ts = self.endsWith('.ts')
  const script = self.replace(/agent-client\.(ts|js)$/, `agent.${ts ? 'ts' : 'js'}`)
  // Under a loader (tap's TypeScript import hook) the child needs the same flags to read agent.ts.
  return [process.execPath, ...(ts ? process.execArgv : []), script]
}

export class AgentError extends Error {
  override name = 'AgentError'
}

export class Agent {
  readonly role: string
  readonly #child: ChildProcess
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  #next = 1
  #exited: Promise<void>
  #stderr = ''
  /** PID of the agent: `ip link ... netns PID` moves an interface into its namespace. */
  pid = 0

  private constructor(role: string, child: ChildProcess) {
    this.role = role
    this.#child = child
    // 'error' without 'exit' when the program could not be started at all.
    this.#exited = new Promise(res => {
      child.once('exit', () => res())
      child.once('error', () => res())
    })
    child.stderr?.on('data', (d: Buffer) => {
      if (this.#stderr.length < 4096) this.#stderr += d.toString()
    })
    createInterface({ input: child.stdout! }).on('line', line => {
      let r: AgentReply
      try {
        r = JSON.parse(line) as AgentReply
      } catch {
        return
      }
      const p = this.#pending.get(r.id)
      if (p === undefined) return
      this.#pending.delete(r.id)
      if (r.ok) p.resolve(r.result)
      else p.reject(new AgentError(`probe ${this.role} namespace: ${r.error}`))
    })
    void this.#exited.then(() => {
      const why = this.#stderr.trim() || `exit code ${String(child.exitCode ?? child.signalCode)}`
      for (const p of this.#pending.values()) p.reject(new AgentError(`probe ${this.role} agent ended: ${why}`))
      this.#pending.clear()
    })
  }

  /** Starts an agent in a network namespace of its own; rejects when unshare or the agent fails to start. */
  static async start(role: string, timeoutMs = 60_000): Promise<Agent> {
    // The addon's helper (unshare(CLONE_NEWNET), then exec); util-linux's unshare where it is missing.
    const { netnsHelper } = await import('../dataplane/nfqueue.js')
    const [file, ...args] = existsSync(netnsHelper)
      ? [netnsHelper, ...agentArgv()]
      : ['unshare', '--net', ...agentArgv()]
    const child = spawn(file!, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    const agent = new Agent(role, child)
    const greeting = new Promise<unknown>((resolve, reject) => agent.#pending.set(0, { resolve, reject }))
    const spawnError = new Promise<never>((_, reject) =>
      child.once('error', e =>
        reject(
          new AgentError(
            `cannot start the probe's ${role} namespace: ${file}: ${e.message} (build the addon's dns-shaper-netns helper, or install util-linux's unshare)`,
          ),
        ),
      ),
    )
    spawnError.catch(() => {}) // raced below; must not surface as unhandled once the greeting won
    try {
      const hello = (await withTimeout(Promise.race([greeting, spawnError]), timeoutMs, `${role} agent start`)) as {
        pid: number
      }
      agent.pid = hello.pid
      return agent
    } catch (e) {
      await agent.stop()
      throw e
    }
  }

  #call<T>(req: Req, timeoutMs: number): Promise<T> {
    const id = this.#next++
    const p = new Promise<T>((resolve, reject) => this.#pending.set(id, { resolve: v => resolve(v as T), reject }))
    this.#child.stdin?.write(JSON.stringify({ ...req, id }) + '\n')
    return withTimeout(p, timeoutMs, `${this.role}: ${req.op}`)
  }

  /** Runs argv in the agent's namespace; rejects with the command and its stderr when it fails. */
  async exec(argv: string[], input?: string): Promise<string> {
    const r = await this.#call<ExecResult>({ op: 'exec', argv, input, timeoutMs: 20_000 }, 25_000)
    if (r.code !== 0) {
      throw new AgentError(
        `probe ${this.role} namespace: ${argv.join(' ')}: ${r.stderr.trim() || `exit ${String(r.code)}`}`,
      )
    }
    return r.stdout
  }

  sysctl(name: string, value?: string): Promise<{ before: string }> {
    return this.#call({ op: 'sysctl', name, value }, 10_000)
  }

  stats(): Promise<ConntrackReading> {
    return this.#call({ op: 'stats' }, 10_000)
  }

  serve(addresses: string[], port: number): Promise<unknown> {
    return this.#call({ op: 'serve', addresses, port }, 10_000)
  }

  served(): Promise<{ answered: number }> {
    return this.#call({ op: 'served' }, 10_000)
  }

  cpus(): Promise<number[]> {
    return this.#call({ op: 'cpus' }, 10_000)
  }

  send(options: SplitCpuOptions): Promise<SplitCpuResult> {
    const budget = ((options.maxSeconds ?? 60) + (options.timeoutMs ?? 1000) / 1000 + 10) * 1000
    return this.#call({ op: 'send', options }, budget)
  }

  /** Ends the agent (stdin closed, then SIGKILL after 2 s); its namespace goes with it. Idempotent. */
  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.stdin?.end()
      const t = setTimeout(() => this.#child.kill('SIGKILL'), 2000)
      await this.#exited
      clearTimeout(t)
    }
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new AgentError(`${what}: no answer within ${ms} ms`)), ms)
  })
  return Promise.race([p, t]).finally(() => clearTimeout(timer))
}
