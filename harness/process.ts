// Starts a long-running program in a lab namespace, waits (bounded) for its ready line on stderr,
// and stops it with SIGTERM (SIGKILL after a grace period), keeping its stderr for the report.

import type { ChildProcess } from 'node:child_process'
import type { Netns } from './netns.js'

export interface Supervised {
  child: ChildProcess
  pid: number
  /** stderr so far (capped at 1 MiB). */
  stderr(): string
  /** SIGTERM, wait for exit (SIGKILL after graceMs); resolves with the exit and all stderr. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>
}

export async function startSupervised(
  ns: Netns,
  argv: string[],
  ready: RegExp,
  opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<Supervised> {
  const child = ns.spawn(argv, { stdio: ['ignore', 'ignore', 'pipe'], env: opts.env })
  let err = ''
  child.stderr?.setEncoding('utf8')
  child.stderr?.on('data', (d: string) => {
    if (err.length < 1 << 20) err += d
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(resolve => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
    child.once('error', () => resolve({ code: -1, signal: null }))
  })
  let stopping: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> | undefined
  const sup: Supervised = {
    child,
    pid: child.pid ?? -1,
    stderr: () => err,
    stop: (graceMs = 10_000) => {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
        const t = setTimeout(() => child.kill('SIGKILL'), graceMs)
        const r = await exited
        clearTimeout(t)
        return { ...r, stderr: err }
      })()
      return stopping
    },
  }
  const timeoutMs = opts.timeoutMs ?? 15_000
  const ok = await new Promise<boolean>(resolve => {
    const t = setTimeout(() => resolve(false), timeoutMs)
    const check = (): void => {
      if (ready.test(err)) {
        clearTimeout(t)
        resolve(true)
      }
    }
    child.stderr?.on('data', check)
    void exited.then(() => {
      clearTimeout(t)
      resolve(ready.test(err))
    })
    check()
  })
  if (!ok || sup.pid < 0) {
    const r = await sup.stop(2000)
    throw new Error(
      `${argv[0]} did not become ready within ${timeoutMs} ms (exit ${r.code ?? r.signal}): ${r.stderr.trim().slice(-500)}`,
    )
  }
  return sup
}

/** Last JSON object line of a stderr text that satisfies pred, or undefined. */
export function lastJsonLine(
  text: string,
  pred: (o: Record<string, unknown>) => boolean = () => true,
): Record<string, unknown> | undefined {
  const lines = text.split('\n')
  for (let i = lines.length - 1; i >= 0; i--) {
    const l = lines[i]!.trim()
    if (!l.startsWith('{')) continue
    try {
      const o = JSON.parse(l) as Record<string, unknown>
      if (o && typeof o === 'object' && pred(o)) return o
    } catch {
      // not JSON: keep looking
    }
  }
  return undefined
}
