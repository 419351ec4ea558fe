// Runs one external command from an argv array (execFile, never a shell) and reports {code, stdout, stderr}.
// Must not interpret the result: a non-zero exit resolves, callers decide what it means.
import { execFile } from 'node:child_process'
import { errorMessage } from '../errors.js'

export interface ExecResult {
  /** Exit status; null when the process was killed by a signal (see `signal`, `timedOut`). */
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  /** True when the process was killed because it ran longer than the timeout. */
  timedOut: boolean
}

export interface ExecOptions {
  /** Written to the child's stdin, which is then closed. */
  input?: string
  /** Kill the child (SIGKILL) after this many milliseconds. Overrides the runner default. */
  timeoutMs?: number
}

/**
 * The injectable command runner. Resolves for every exit status and for a timeout;
 * rejects only when the command could not be run at all (ENOENT, EACCES, ... with
 * `code`, `syscall`, `path` set as Node sets them) or its output exceeded maxBuffer.
 */
export type Runner = (argv: readonly string[], opts?: ExecOptions) => Promise<ExecResult>

export interface RunnerOptions {
  /** Prepended to every argv, e.g. ['ip', 'netns', 'exec', 'ns1']. */
  wrap?: readonly string[]
  /** Default timeout in ms (30 s). */
  timeoutMs?: number
  /** Max bytes per output stream (64 MiB: iptables-save of a large Kubernetes node is several MiB). */
  maxBuffer?: number
}

export const DEFAULT_TIMEOUT_MS = 30_000
const DEFAULT_MAX_BUFFER = 64 * 1024 * 1024

interface ExecFileFailure extends Error {
  code?: number | string | null
  killed?: boolean
  signal?: NodeJS.Signals | null
}

export function createRunner(options: RunnerOptions = {}): Runner {
  const wrap = [...(options.wrap ?? [])]
  const defaultTimeout = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const maxBuffer = options.maxBuffer ?? DEFAULT_MAX_BUFFER
  return (argv, opts = {}) => {
    const full = [...wrap, ...argv]
    const [file, ...args] = full
    if (file === undefined || file === '') {
      return Promise.reject(new TypeError('exec: empty argv'))
    }
    const timeout = opts.timeoutMs ?? defaultTimeout
    return new Promise<ExecResult>((resolve, reject) => {
      let timedOut = false
      // Own timer instead of execFile's `timeout`: execFile reports a timeout and a
      // maxBuffer overflow the same way (killed: true), and we want them apart.
      let timer: NodeJS.Timeout | undefined
      const child = execFile(file, args, { encoding: 'utf8', maxBuffer, windowsHide: true }, (err, stdout, stderr) => {
        if (timer !== undefined) clearTimeout(timer)
        if (err === null) {
          resolve({ code: 0, signal: null, stdout, stderr, timedOut: false })
          return
        }
        const e = err as ExecFileFailure
        if (typeof e.code === 'string') {
          // Spawn failure (ENOENT, EACCES, ...) or ERR_CHILD_PROCESS_STDIO_MAXBUFFER: the command
          // did not run to completion, so there is no exit status to report.
          reject(err)
          return
        }
        resolve({
          code: typeof e.code === 'number' ? e.code : null,
          signal: e.signal ?? null,
          stdout,
          stderr,
          timedOut,
        })
      })
      if (timeout > 0) {
        timer = setTimeout(() => {
          timedOut = true
          child.kill('SIGKILL')
        }, timeout)
      }
      // The child may exit without reading stdin (bad option, missing binary): EPIPE is not our error.
      child.stdin?.on('error', () => {})
      if (opts.input !== undefined) child.stdin?.end(opts.input)
      else child.stdin?.end()
    })
  }
}

/** Argv prefix that runs a command inside network namespace `ns` (iproute2). */
export function netnsWrap(ns: string): string[] {
  // ip would read a leading '-' as an option; names come from our own code or operators.
  if (!/^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,254}$/.test(ns)) {
    throw new TypeError(`invalid network namespace name: ${JSON.stringify(ns)}`)
  }
  return ['ip', 'netns', 'exec', ns]
}

/** A runner that prefixes every argv with `wrap` before handing it to `runner`. */
export function wrapRunner(runner: Runner, wrap: readonly string[]): Runner {
  if (wrap.length === 0) return runner
  return (argv, opts) => runner([...wrap, ...argv], opts)
}

/** The default runner: no prefix, 30 s timeout. */
export const run: Runner = createRunner()

/**
 * stdout of a command that has to succeed; otherwise an Error naming the command with its stderr (or
 * why it did not run). For read-only probes whose failure is reported, not interpreted.
 */
export async function output(run: Runner, argv: readonly string[], opts?: ExecOptions): Promise<string> {
  let r: ExecResult
  try {
    r = await run(argv, opts)
  } catch (e) {
    throw new Error(`${argv.join(' ')}: ${errorMessage(e)}`)
  }
  if (r.code === 0 && !r.timedOut) return r.stdout
  const why = r.stderr.trim() || (r.timedOut ? 'timed out' : `exit ${String(r.code)}`)
  throw new Error(`${argv.join(' ')}: ${why}`)
}
