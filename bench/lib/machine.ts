// The machine a benchmark ran on (CPUs, load, kernel, tool versions) and the clock tick for /proc CPU times.
// Reads /proc and runs `dnsperf -h` once; no measuring.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { parseDnsperfVersion } from './dnsperf.js'
import type { Machine } from './report.js'

export function machine(): Machine {
  let dnsperf: string | undefined
  try {
    dnsperf = parseDnsperfVersion(
      execFileSync('dnsperf', ['-h'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }),
    )
  } catch (e: unknown) {
    // dnsperf -h exits 1 after printing its usage.
    const err = e as { stdout?: string; stderr?: string }
    dnsperf = parseDnsperfVersion(`${err.stdout ?? ''}${err.stderr ?? ''}`)
  }
  return {
    nproc: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? '?',
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
    node: process.version,
    dnsperf,
    loadavg: loadavg(),
  }
}

export function clkTck(): number {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())
    return n > 0 ? n : 100
  } catch {
    return 100
  }
}
