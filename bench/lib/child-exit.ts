// Waits, bounded, for a load tool the bench started (dnsperf, stub_load) to end. Does not read its output.
import type { ChildProcess } from 'node:child_process'
import { killAndWait } from '../../harness/netns.js'

/**
 * The exit code of `child` once it emitted `event` ('exit', or 'close' when its pipes must be drained
 * too). Past boundMs it kills the child and throws "<tool> did not finish within N ms"; a child that
 * could not start throws with `install` as the fix.
 */
export async function exitWithin(
  child: ChildProcess,
  boundMs: number,
  event: 'exit' | 'close',
  tool: string,
  install: string,
): Promise<number | null> {
  const exit = await new Promise<number | null | 'timeout' | Error>(resolve => {
    const timer = setTimeout(() => resolve('timeout'), boundMs)
    child.once('error', e => {
      clearTimeout(timer)
      resolve(e)
    })
    child.once(event, (code: number | null) => {
      clearTimeout(timer)
      resolve(code)
    })
  })
  if (exit === 'timeout') {
    await killAndWait(child)
    throw new Error(`${tool} did not finish within ${boundMs} ms`)
  }
  if (exit instanceof Error) throw new Error(`${tool} could not start: ${exit.message} (${install})`)
  return exit
}
