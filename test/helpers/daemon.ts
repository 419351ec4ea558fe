// Test helper: runs the built daemon (dist/cli.js) inside a lab namespace, collects its JSON logs and
// waits for log lines. Tests that use it need `npm run prepare` (tsc) to have built dist/.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { ChildProcess } from 'node:child_process'
import type { Netns } from '../../harness/netns.js'

export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url))

export interface LogRecord {
  msg: string
  level: string
  [k: string]: unknown
}

export class DaemonProcess {
  readonly child: ChildProcess
  readonly logs: LogRecord[] = []
  stderr = ''
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  #waiters: { pred: (r: LogRecord) => boolean; resolve: (r: LogRecord) => void }[] = []

  /** `opts.nodeArgs` go before the CLI path (e.g. `--import` of a test fixture); `opts.env` replaces the environment. */
  constructor(ns: Netns, args: string[], opts: { nodeArgs?: string[]; env?: NodeJS.ProcessEnv } = {}) {
    if (!existsSync(CLI)) throw new Error(`${CLI} missing: run \`npm run prepare\` (tsc) first`)
    this.child = ns.spawn([process.execPath, ...(opts.nodeArgs ?? []), CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(opts.env !== undefined ? { env: opts.env } : {}),
    })
    this.child.stderr?.setEncoding('utf8')
    let partial = ''
    this.child.stderr?.on('data', (d: string) => {
      this.stderr += d
      partial += d
      const lines = partial.split('\n')
      partial = lines.pop() ?? ''
      for (const line of lines) {
        let rec: LogRecord
        try {
          rec = JSON.parse(line) as LogRecord
        } catch {
          continue
        }
        this.logs.push(rec)
        this.#waiters = this.#waiters.filter(w => (w.pred(rec) ? (w.resolve(rec), false) : true))
      }
    })
    this.exited = new Promise(resolve => this.child.once('exit', (code, signal) => resolve({ code, signal })))
  }

  /** Resolves with the first log record matching pred (past or future); rejects after timeoutMs or on exit. */
  waitLog(pred: (r: LogRecord) => boolean, timeoutMs = 10000): Promise<LogRecord> {
    const seen = this.logs.find(pred)
    if (seen) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no matching log line within ${timeoutMs} ms; stderr:\n${this.stderr}`)),
        timeoutMs,
      )
      void this.exited.then(e => {
        clearTimeout(timer)
        reject(new Error(`daemon exited (${e.code ?? e.signal}) before the log line; stderr:\n${this.stderr}`))
      })
      this.#waiters.push({
        pred,
        resolve: r => {
          clearTimeout(timer)
          resolve(r)
        },
      })
    })
  }

  ready(timeoutMs = 10000): Promise<LogRecord> {
    return this.waitLog(r => r.msg === 'ready', timeoutMs)
  }

  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig)
  }

  /** SIGTERM and wait for exit (bounded). */
  async stop(timeoutMs = 10000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM')
    const t = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs)
    const r = await this.exited
    clearTimeout(t)
    return r
  }
}

/** GET a URL from inside a namespace (curl), returning the body. */
export async function fetchIn(ns: Netns, url: string): Promise<{ code: number; body: string }> {
  const r = await ns.exec(['curl', '-s', '-m', '5', '-w', '\n%{http_code}', url], { timeoutMs: 10000 })
  const i = r.stdout.lastIndexOf('\n')
  return { code: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) }
}

/** Value of one sample in a Prometheus text exposition, e.g. metric('dns_shaper_packets_total{action="held",qtype="AAAA"}'). */
export function metricValue(text: string, sample: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(sample + ' ')) return Number(line.slice(sample.length + 1))
  }
  return undefined
}

/** Packets the NFQUEUE rules in the DNS-SHAPER chains (IPv4 + IPv6) of a namespace have queued so far. */
export async function queueRuleCounter(ns: Netns): Promise<number> {
  let n = 0
  for (const cmd of ['iptables-save', 'ip6tables-save']) {
    const out = (await ns.execOk([cmd, '-c', '-t', 'raw'])).stdout
    for (const line of out.split('\n')) {
      const m = /^\[(\d+):\d+\] -A DNS-SHAPER .*-j NFQUEUE/.exec(line)
      if (m) n += Number(m[1])
    }
  }
  return n
}
