// Kernel-lab runner: writes the generated init into a fresh run directory, boots QEMU on it, streams the
// serial console and bounds the run in time. It starts and kills only its own QEMU child, by pid.

import { runQemu } from '../../harness/qemu.js'
import { chmodSync, createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { guestInitScript, initPath, qemuArgv } from './guest.js'
import type { GuestPlan } from './guest.js'
import { readGuestResults } from './results.js'
import type { GuestResults } from './results.js'

/** Cache shared with build-kernel.sh (source, bzImage, run directories); outside the checkout. */
export function labCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env['DNS_SHAPER_LAB_CACHE'] || '/var/cache/dns-shaper-lab'
}

export function defaultKernel(env: NodeJS.ProcessEnv = process.env): string {
  return join(labCacheDir(env), 'bzImage')
}

export interface VmRun {
  results: GuestResults
  /** QEMU's exit code, or null when it was killed. */
  qemuCode: number | null
  timedOut: boolean
  elapsedS: number
  runDir: string
  consoleLog: string
}

/** Makes the run directory (under the lab cache: visible to QEMU as a share and to the guest via the 9p root). */
export function makeRunDir(cache = labCacheDir()): string {
  const runs = join(cache, 'runs')
  mkdirSync(runs, { recursive: true })
  return mkdtempSync(join(runs, 'run-'))
}

export async function bootGuest(
  plan: GuestPlan,
  opts: { timeoutMin: number; onLine?: (line: string) => void },
): Promise<VmRun> {
  const init = initPath(plan)
  writeFileSync(init, guestInitScript(plan))
  chmodSync(init, 0o755)
  const consoleLog = join(plan.runDir, 'console.log')
  const log = createWriteStream(consoleLog)
  const argv = qemuArgv(plan)
  writeFileSync(join(plan.runDir, 'qemu-argv.json'), JSON.stringify(argv, null, 2) + '\n')
  const exit = await runQemu(argv, {
    timeoutMs: opts.timeoutMin * 60_000,
    packageName: 'qemu-system-x86',
    onData: d => log.write(d),
    ...(opts.onLine ? { onLine: opts.onLine } : {}),
  })
  await new Promise<void>(r => log.end(() => r()))
  return {
    results: readGuestResults(plan.runDir, { raceAsked: plan.raceCli !== null }),
    qemuCode: exit.code,
    timedOut: exit.timedOut,
    elapsedS: exit.elapsedS,
    runDir: plan.runDir,
    consoleLog,
  }
}

export function removeRunDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true })
}
