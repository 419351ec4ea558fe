// Runs one QEMU guest to its end, bounded in time: its serial console (stdout and stderr) streamed to the
// caller whole and as lines, SIGTERM at the deadline and SIGKILL 10 s later. Starts and kills only its
// own child. Used by the kernel lab and the arm64 image guest.
import { spawn } from 'node:child_process'

/** A guest with no devices of QEMU's choosing, no display, its console on stdio, and no reboot (a panic ends QEMU). */
export const QEMU_HEADLESS = [
  '-nodefaults',
  '-no-user-config',
  '-display',
  'none',
  '-no-reboot',
  '-serial',
  'stdio',
] as const

export interface QemuExit {
  /** QEMU's exit code, or null when it was killed. */
  code: number | null
  timedOut: boolean
  elapsedS: number
}

export async function runQemu(
  argv: readonly string[],
  opts: {
    timeoutMs: number
    /** The Debian package to name when the binary is missing. */
    packageName: string
    onData?: (chunk: Buffer) => void
    onLine?: (line: string) => void
  },
): Promise<QemuExit> {
  const started = Date.now()
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] })
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    child.kill('SIGTERM')
    setTimeout(() => child.kill('SIGKILL'), 10_000).unref()
  }, opts.timeoutMs)
  let partial = ''
  const onData = (d: Buffer): void => {
    opts.onData?.(d)
    partial += d.toString('utf8')
    const lines = partial.split('\n')
    partial = lines.pop() ?? ''
    for (const l of lines) opts.onLine?.(l.replace(/\r$/, ''))
  }
  child.stdout.on('data', onData)
  child.stderr.on('data', onData)
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', e => reject(new Error(`cannot start ${argv[0]}: ${e.message} (install ${opts.packageName})`)))
    child.once('exit', c => resolve(c))
  }).finally(() => clearTimeout(timer))
  if (partial) opts.onLine?.(partial.replace(/\r$/, ''))
  return { code, timedOut, elapsedS: (Date.now() - started) / 1000 }
}
