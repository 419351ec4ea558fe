// Conntrack clash handling for a race-lab row: pre-5.6 (the loser is dropped) or stock (5.6+ inserts it).
// Uses the kernel lab's switch (nf_conntrack.lab_pre56_clash, lab/kernels/*.patch) when the kernel has it,
// otherwise the kernel's own version decides what it can show. It writes only that one lab-kernel parameter.

import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { kernelAtLeast, parseKernelRelease } from '../../harness/product.js'

export const LAB_SWITCH_PATH = '/sys/module/nf_conntrack/parameters/lab_pre56_clash'

export type ClashHandling = 'pre56' | 'stock'

export type ClashPlan = { run: true; write: '0' | '1' | null; note: string } | { run: false; reason: string }

/** Before 5.6 a clash whose tuples differ (DNAT to two endpoints) is dropped; 5.6 added the insertion. */
export function nativelyPre56(release: string): boolean | null {
  const v = parseKernelRelease(release)
  return v === undefined ? null : !kernelAtLeast(v, 5, 6)
}

/** Decides how a row asking for `want` runs on this kernel: via the switch, natively, or not at all. */
export function planClashHandling(want: ClashHandling, release: string, hasSwitch: boolean): ClashPlan {
  if (hasSwitch)
    return want === 'pre56'
      ? { run: true, write: '1', note: 'lab switch lab_pre56_clash=1' }
      : { run: true, write: '0', note: 'lab switch lab_pre56_clash=0 (stock)' }
  const pre = nativelyPre56(release)
  if (pre === null) return { run: false, reason: `cannot tell the clash handling of kernel ${release}` }
  if (want === 'pre56' && !pre)
    return {
      run: false,
      reason: `kernel ${release} resolves DNAT clashes (5.6+) and has no lab switch; run npm run lab:kernels`,
    }
  if (want === 'stock' && pre)
    return {
      run: false,
      reason: `kernel ${release} is before 5.6 and has no lab switch: no stock 5.6+ handling to show`,
    }
  return { run: true, write: null, note: `kernel ${release} as it is` }
}

export interface ClashSwitchIo {
  exists(path: string): boolean
  read(path: string): string
  write(path: string, value: string): void
}

export const fsSwitchIo: ClashSwitchIo = {
  exists: p => existsSync(p),
  read: p => readFileSync(p, 'utf8'),
  write: (p, v) => writeFileSync(p, v),
}

/** Applies a plan; returns what the switch read back ('Y'/'N'), or null without a switch. */
export function applyClashPlan(plan: ClashPlan, io: ClashSwitchIo = fsSwitchIo): string | null {
  if (!plan.run || plan.write === null) return null
  io.write(LAB_SWITCH_PATH, plan.write)
  const back = io.read(LAB_SWITCH_PATH).trim()
  // A bool module parameter reads back Y/N; anything else means the write did not take.
  if ((plan.write === '1' && back !== 'Y') || (plan.write === '0' && back !== 'N'))
    throw new Error(`${LAB_SWITCH_PATH} reads ${back} after writing ${plan.write}`)
  return back
}
