// The one way the harness runs the built daemon (`dns-shaper run`, dist/cli.js) inside a lab namespace:
// spawn, wait until GET /readyz answers 200 (the readiness the kubelet sees, not a log line), scrape /metrics,
// stop. It keeps the JSON log records for tests that assert an operator-facing message; it never parses
// log text to decide readiness or to read a counter.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import type { Netns } from './netns.js'
import { CLI_PATH, repoRoot } from './paths.js'
import { sampleOf } from './prom.js'

export const CLI = CLI_PATH
/** The daemon's own default (src/config: DEFAULT_METRICS_LISTEN): where /readyz is when no flag says otherwise. */
export const DEFAULT_METRICS_LISTEN = '127.0.0.1:9363'
/** stderr kept per daemon; a soak's info log must not grow the test runner without bound. */
const STDERR_CAP = 1 << 20

export interface LogRecord {
  msg: string
  level: string
  [k: string]: unknown
}

export interface DaemonExit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface DaemonOptions {
  /** argv before `node` (e.g. `env -i ... setpriv ...`). */
  prefix?: string[]
  /** node flags before the CLI path (e.g. `--import` of a test fixture). */
  nodeArgs?: string[]
  /** Replaces the environment. */
  env?: NodeJS.ProcessEnv
  /** The CLI to run (default dist/cli.js of this checkout). */
  cli?: string
  /** The whole command before `args`, instead of [prefix, node, nodeArgs, cli] (e.g. an image's entrypoint). */
  command?: string[]
  /** Where /readyz is, when the address is not in `args` (e.g. the image reads it from its environment). */
  metricsListen?: string
}

/**
 * The node flags the image starts the daemon with: what its Dockerfile's exec-form ENTRYPOINT puts
 * between the node binary and dist/cli.js. Read from there so the benchmark and the soak run the
 * daemon the way it runs on a node, with one place to change them.
 */
export function imageNodeFlags(dockerfile: string): string[] {
  const line = dockerfile.split('\n').find(l => /^ENTRYPOINT\s+\[/.test(l))
  const argv = line ? (JSON.parse(line.replace(/^ENTRYPOINT\s+/, '')) as unknown) : undefined
  if (!Array.isArray(argv) || !argv.every(a => typeof a === 'string') || !/\/node$/.test(argv[0] ?? ''))
    throw new Error(
      `Dockerfile: no exec-form ENTRYPOINT ["/path/to/node", ...flags, "/app/dist/cli.js"]: ${line ?? 'none'}`,
    )
  return argv.slice(1, -1)
}

/** This checkout's image flags (its Dockerfile's ENTRYPOINT), for a test that runs the daemon as the image does. */
export function checkoutImageNodeFlags(root: string = repoRoot()): string[] {
  return imageNodeFlags(readFileSync(join(root, 'Dockerfile'), 'utf8'))
}

/** HOST:PORT of the metrics listener the argv asks for (the daemon's default without the flag); undefined for `off`. */
export function metricsListenOf(args: readonly string[]): string | undefined {
  let listen = DEFAULT_METRICS_LISTEN
  args.forEach((a, i) => {
    if (a === '--metrics-listen' && args[i + 1] !== undefined) listen = args[i + 1]!
    else if (a.startsWith('--metrics-listen=')) listen = a.slice('--metrics-listen='.length)
  })
  return listen === 'off' ? undefined : listen
}

/** http://HOST:PORT for a listen address; a wildcard is reached on loopback. */
export function baseUrl(listen: string): string {
  const host = listen.slice(0, listen.lastIndexOf(':'))
  const port = listen.slice(listen.lastIndexOf(':') + 1)
  // The daemon accepts an IPv4 address in brackets too ([198.51.100.1]:9363); a URL does not.
  const bare = host.startsWith('[') && !host.includes(':') ? host.slice(1, -1) : host
  const reach = bare === '0.0.0.0' ? '127.0.0.1' : bare === '[::]' ? '[::1]' : bare
  return `http://${reach}:${port}`
}

/** GET a URL from inside a namespace (curl), returning the status (0: no answer) and the body. */
export async function fetchIn(ns: Netns, url: string, timeoutS = 5): Promise<{ code: number; body: string }> {
  const r = await ns.exec(['curl', '-s', '-m', String(timeoutS), '-w', '\n%{http_code}', url], {
    timeoutMs: timeoutS * 1000 + 5000,
  })
  const i = r.stdout.lastIndexOf('\n')
  return { code: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) }
}

export class DaemonProcess {
  readonly child: ChildProcess
  readonly logs: LogRecord[] = []
  stderr = ''
  readonly exited: Promise<DaemonExit>
  /** http://HOST:PORT of its /metrics, /healthz, /readyz; undefined with `--metrics-listen off`. */
  readonly url: string | undefined
  readonly #ns: Netns
  #waiters: { pred: (r: LogRecord) => boolean; resolve: (r: LogRecord) => void }[] = []

  /** `args` follow the CLI path, e.g. ['run', '--delay', '5']. */
  constructor(ns: Netns, args: string[], opts: DaemonOptions = {}) {
    const cli = opts.cli ?? CLI
    if (opts.command === undefined && !existsSync(cli))
      throw new Error(`${cli} missing: run \`npm run build\` (or npm ci) first`)
    this.#ns = ns
    const listen = opts.metricsListen ?? metricsListenOf(args)
    this.url = listen === undefined || listen === 'off' ? undefined : baseUrl(listen)
    const command = opts.command ?? [...(opts.prefix ?? []), process.execPath, ...(opts.nodeArgs ?? []), cli]
    this.child = ns.spawn([...command, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      ...(opts.env !== undefined ? { env: opts.env } : {}),
    })
    this.child.stderr?.setEncoding('utf8')
    let partial = ''
    this.child.stderr?.on('data', (d: string) => {
      if (this.stderr.length < STDERR_CAP) this.stderr += d
      partial += d
      const lines = partial.split('\n')
      partial = lines.pop() ?? ''
      for (const line of lines) this.#record(line)
    })
    this.exited = new Promise(resolve => {
      this.child.once('exit', (code, signal) => resolve({ code, signal }))
      this.child.once('error', () => resolve({ code: -1, signal: null }))
    })
  }

  #record(line: string): void {
    let rec: LogRecord
    try {
      rec = JSON.parse(line) as LogRecord
    } catch {
      return
    }
    if (this.logs.length < 100_000) this.logs.push(rec)
    this.#waiters = this.#waiters.filter(w => (w.pred(rec) ? (w.resolve(rec), false) : true))
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  /** Resolves with the first log record matching pred (past or future); rejects after timeoutMs or on exit. */
  waitLog(pred: (r: LogRecord) => boolean, timeoutMs = 10000): Promise<LogRecord> {
    const seen = this.logs.find(pred)
    if (seen) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no matching log line within ${timeoutMs} ms; stderr:\n${this.stderr.slice(-4000)}`)),
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

  /** GET a path of its HTTP listener from inside its namespace. */
  async get(path: string): Promise<{ code: number; body: string }> {
    if (this.url === undefined) throw new Error('the daemon runs with --metrics-listen off: it has no HTTP endpoint')
    return fetchIn(this.#ns, this.url + path)
  }

  /**
   * Waits until /readyz answers 200 (queue bound and rules in place); rejects when the daemon exits first or
   * after timeoutMs, with its stderr, so a test that cannot start says why.
   */
  async ready(timeoutMs = 15_000): Promise<void> {
    if (this.url === undefined) throw new Error('ready() polls /readyz: give the daemon a --metrics-listen address')
    const deadline = Date.now() + timeoutMs
    let last = 'no answer'
    while (this.running && Date.now() < deadline) {
      const r = await fetchIn(this.#ns, `${this.url}/readyz`, 1).catch(() => ({ code: 0, body: '' }))
      if (r.code === 200) return
      if (r.code !== 0) last = `${r.code} ${r.body.trim()}`
      await new Promise(res => setTimeout(res, 50))
    }
    const why = this.running ? `/readyz not 200 within ${timeoutMs} ms (last: ${last})` : 'daemon exited'
    throw new Error(`${why}; stderr:\n${this.stderr.slice(-4000)}`)
  }

  /** The /metrics text; throws when the scrape fails. */
  async metrics(): Promise<string> {
    const r = await this.get('/metrics')
    if (r.code !== 200) throw new Error(`GET /metrics answered ${r.code}: ${r.body.slice(0, 200)}`)
    return r.body
  }

  /** One sample of /metrics; throws when it is absent, so a renamed metric fails instead of reading as 0. */
  async metric(sample: string): Promise<number> {
    return sampleOf(await this.metrics(), sample)
  }

  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig)
  }

  /** SIGTERM and wait for exit (SIGKILL after timeoutMs). Idempotent. */
  async stop(timeoutMs = 10000): Promise<DaemonExit> {
    if (this.running) this.child.kill('SIGTERM')
    const t = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs)
    const r = await this.exited
    clearTimeout(t)
    return r
  }
}

/** Spawns the daemon and waits for /readyz; on failure stops it and rethrows. */
export async function startDaemon(
  ns: Netns,
  args: string[],
  opts: DaemonOptions & { readyTimeoutMs?: number } = {},
): Promise<DaemonProcess> {
  const d = new DaemonProcess(ns, args, opts)
  try {
    await d.ready(opts.readyTimeoutMs)
  } catch (e) {
    await d.stop(2000)
    throw e
  }
  return d
}
