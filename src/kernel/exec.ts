// Runs one external command from an argv array (spawn, never a shell) and reports {code, stdout, stderr}, or streams stdout by line.
// Must not interpret the result: a non-zero exit resolves, callers decide what it means.
import { spawn } from 'node:child_process'
import { errorMessage } from '../errors.js'

export interface ExecResult {
  /** Exit status; null when the process was killed by a signal (see `signal`, `timedOut`). */
  code: number | null
  signal: NodeJS.Signals | null
  /** The whole stdout; '' when it was streamed to `onStdoutLine` instead. */
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
  /**
   * Stream stdout instead of keeping it: each line (without its newline) is handed here as it
   * arrives and dropped, and the result's stdout is ''. For output that grows with what other
   * software put on the node (a whole iptables-save): the runner then holds one read chunk and one
   * line, a line cut at MAX_LINE_CHARS. A throw from the callback kills the child and rejects.
   */
  onStdoutLine?: (line: string) => void
}

/**
 * The injectable command runner. Resolves for every exit status and for a timeout;
 * rejects only when the command could not be run at all (ENOENT, EACCES, ... with
 * `code`, `syscall`, `path` set as Node sets them), its output exceeded maxBuffer
 * (code ERR_CHILD_PROCESS_STDIO_MAXBUFFER) or `onStdoutLine` threw. A fake must honour
 * `onStdoutLine` as createRunner does.
 */
export type Runner = (argv: readonly string[], opts?: ExecOptions) => Promise<ExecResult>

export interface RunnerOptions {
  /** Prepended to every argv, e.g. ['ip', 'netns', 'exec', 'ns1']. */
  wrap?: readonly string[]
  /** Default timeout in ms (30 s). */
  timeoutMs?: number
  /** Max bytes per kept output stream (64 MiB: iptables-save of a large Kubernetes node is several MiB). */
  maxBuffer?: number
}

export const DEFAULT_TIMEOUT_MS = 30_000
const DEFAULT_MAX_BUFFER = 64 * 1024 * 1024
/**
 * Longest streamed line kept whole; the rest of a longer one is dropped. iptables-save lines stay far
 * below (a comment is at most 256 bytes), so only garbage output is cut, and it cannot grow memory.
 */
export const MAX_LINE_CHARS = 64 * 1024

/**
 * Splits a stream of text chunks into lines for `onLine`, holding at most one partial line of
 * `maxLineChars` (the rest of a longer line is dropped). No I/O.
 */
export class LineSplitter {
  #partial = ''
  readonly #onLine: (line: string) => void
  readonly #max: number

  constructor(onLine: (line: string) => void, maxLineChars = MAX_LINE_CHARS) {
    this.#onLine = onLine
    this.#max = maxLineChars
  }

  push(chunk: string): void {
    let start = 0
    for (let nl = chunk.indexOf('\n'); nl >= 0; nl = chunk.indexOf('\n', start)) {
      this.#append(chunk, start, nl)
      const line = this.#partial
      this.#partial = ''
      this.#onLine(line)
      start = nl + 1
    }
    this.#append(chunk, start, chunk.length)
  }

  /** The last line when the text did not end with a newline. */
  end(): void {
    const line = this.#partial
    this.#partial = ''
    if (line !== '') this.#onLine(line)
  }

  #append(chunk: string, from: number, to: number): void {
    const room = this.#max - this.#partial.length
    if (room > 0 && to > from) this.#partial += chunk.slice(from, Math.min(to, from + room))
  }
}

/** Collects one output stream up to a byte limit. */
class Capture {
  readonly #chunks: string[] = []
  #bytes = 0
  constructor(readonly limit: number) {}
  /** False when the stream went over the limit. */
  add(chunk: string): boolean {
    this.#bytes += Buffer.byteLength(chunk)
    if (this.#bytes > this.limit) return false
    this.#chunks.push(chunk)
    return true
  }
  text(): string {
    return this.#chunks.join('')
  }
}

function maxBufferError(stream: 'stdout' | 'stderr'): Error {
  // The code Node's execFile uses, so callers can tell it from a spawn failure.
  return Object.assign(new RangeError(`${stream} maxBuffer length exceeded`), {
    code: 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER',
  })
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
    const { onStdoutLine } = opts
    return new Promise<ExecResult>((resolve, reject) => {
      // spawn rather than execFile: execFile always buffers stdout, and a streamed read must not.
      // Our own timer: a timeout and an output overflow must be told apart.
      const child = spawn(file, args, { windowsHide: true })
      const lines = onStdoutLine !== undefined ? new LineSplitter(onStdoutLine) : undefined
      const stdout = new Capture(maxBuffer)
      const stderr = new Capture(maxBuffer)
      let timedOut = false
      let settled = false
      let timer: NodeJS.Timeout | undefined
      const settle = (fn: () => void): void => {
        if (settled) return
        settled = true
        if (timer !== undefined) clearTimeout(timer)
        fn()
      }
      // The command did not run to completion: no exit status to report.
      const fail = (err: unknown): void =>
        settle(() => {
          child.kill('SIGKILL')
          reject(err)
        })
      child.stdout.setEncoding('utf8')
      child.stderr.setEncoding('utf8')
      child.stdout.on('data', (chunk: string) => {
        if (settled) return
        if (lines === undefined) {
          if (!stdout.add(chunk)) fail(maxBufferError('stdout'))
          return
        }
        try {
          lines.push(chunk)
        } catch (e) {
          fail(e)
        }
      })
      child.stderr.on('data', (chunk: string) => {
        if (!settled && !stderr.add(chunk)) fail(maxBufferError('stderr'))
      })
      // Spawn failure (ENOENT, EACCES, ...): Node emits 'error' (before any 'close').
      child.on('error', fail)
      child.on('close', (code: number | null, signal: NodeJS.Signals | null) => {
        if (settled) return
        try {
          lines?.end()
        } catch (e) {
          fail(e)
          return
        }
        settle(() => resolve({ code, signal, stdout: stdout.text(), stderr: stderr.text(), timedOut }))
      })
      if (timeout > 0) {
        timer = setTimeout(() => {
          timedOut = true
          child.kill('SIGKILL')
        }, timeout)
      }
      // The child may exit without reading stdin (bad option, missing binary): EPIPE is not our error.
      child.stdin.on('error', () => {})
      if (opts.input !== undefined) child.stdin.end(opts.input)
      else child.stdin.end()
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
