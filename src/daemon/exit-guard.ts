// Exit paths the daemon does not choose: an uncaught exception, an unhandled rejection, process.exit
// called from anywhere. Each logs its cause, releases held packets and unbinds before the process ends
// (Node runs no addon cleanup hook on these paths, and the kernel drops what a closed socket held).
// It must not keep a crashed process running: it always ends in exit(1), within a bounded time.
import type { Logger } from '../log.js'

export interface GuardedDaemon {
  /** The clean stop: rules removed, held packets released, queue unbound. */
  stop(reason: string): Promise<number>
  /** Synchronous last resort: held packets released, queue unbound; no-op once stopped. */
  stopNow(reason: string, detail?: Record<string, unknown>): void
}

/** The part of `process` the guard uses (tests pass an EventEmitter with an exit()). */
export type ProcessLike = Pick<NodeJS.EventEmitter, 'on' | 'off'> & { exit(code: number): void }

export interface GuardOptions {
  proc?: ProcessLike
  /** How long the clean stop after a crash may take before the process exits anyway. */
  graceMs?: number
}

function describe(e: unknown): Record<string, unknown> {
  if (e instanceof Error) return { err: e.message, stack: e.stack }
  return { err: String(e) }
}

/** Installs the handlers; returns a function that removes them. */
export function guardExits(daemon: GuardedDaemon, log: Logger, opts: GuardOptions = {}): () => void {
  const proc: ProcessLike = opts.proc ?? process
  const graceMs = opts.graceMs ?? 10_000
  let crashed = false
  const crash = (what: string) => (e: unknown) => {
    if (crashed) {
      // A second failure while stopping: no more waiting.
      log.error(`${what} while stopping after a crash; exiting now`, describe(e))
      daemon.stopNow(what)
      proc.exit(1)
      return
    }
    crashed = true
    log.error(`${what}: stopping (rules removed, held packets released), then exit 1`, describe(e))
    const timer = setTimeout(() => {
      log.error(`stop after ${what} took over ${graceMs} ms; exiting now`)
      daemon.stopNow(what)
      proc.exit(1)
    }, graceMs)
    void daemon
      .stop(what)
      .catch(() => 1)
      .then(() => {
        clearTimeout(timer)
        proc.exit(1)
      })
  }
  const onException = crash('uncaught exception')
  const onRejection = crash('unhandled promise rejection')
  const onExit = (code: number): void => {
    // Where process.exit was called from, if it was not the CLI after a clean stop.
    daemon.stopNow(`process exit with code ${code}`, { stack: new Error('process.exit').stack })
  }
  proc.on('uncaughtException', onException)
  proc.on('unhandledRejection', onRejection)
  proc.on('exit', onExit)
  return () => {
    proc.off('uncaughtException', onException)
    proc.off('unhandledRejection', onRejection)
    proc.off('exit', onExit)
  }
}
