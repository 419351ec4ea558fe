// CPU time and memory of a process from /proc: /proc/PID/stat (utime, stime in clock ticks),
// /proc/PID/task/*/schedstat (nanoseconds on CPU, per thread), /proc/PID/status (VmRSS and its
// RssAnon/RssFile parts, VmHWM).
// Readers take a proc root so tests can point them at fixtures; nothing here writes anything.

import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

export interface ProcStat {
  pid: number
  comm: string
  state: string
  /** Clock ticks (USER_HZ) in user mode, all threads. */
  utime: number
  /** Clock ticks in kernel mode, all threads. */
  stime: number
  numThreads: number
  /** Resident set size in pages. */
  rssPages: number
}

/**
 * One /proc/PID/stat line. comm (field 2) is in parentheses and may itself contain spaces and
 * parentheses, so fields are counted from the LAST ')' (as procps does).
 */
export function parseProcStat(line: string): ProcStat {
  const open = line.indexOf('(')
  const close = line.lastIndexOf(')')
  if (open < 0 || close < open) throw new Error(`not a /proc/PID/stat line: ${JSON.stringify(line.slice(0, 80))}`)
  const pid = Number(line.slice(0, open).trim())
  // rest[0] is field 3 (state); field k is rest[k - 3].
  const rest = line
    .slice(close + 1)
    .trim()
    .split(/\s+/)
  const field = (k: number): number => {
    const s = rest[k - 3]
    if (s === undefined || !/^-?\d+$/.test(s))
      throw new Error(`/proc/PID/stat field ${k} missing or not a number: ${JSON.stringify(s)}`)
    return Number(s)
  }
  if (!Number.isInteger(pid) || pid <= 0)
    throw new Error(`/proc/PID/stat: bad pid in ${JSON.stringify(line.slice(0, 40))}`)
  return {
    pid,
    comm: line.slice(open + 1, close),
    state: rest[0] ?? '?',
    utime: field(14),
    stime: field(15),
    numThreads: field(20),
    rssPages: field(24),
  }
}

export interface ProcStatus {
  /** kB; undefined for a zombie or a kernel thread. */
  vmRssKb?: number
  vmHwmKb?: number
  /** The two parts of VmRSS: private memory (heap, stacks) and mapped files (mostly the node binary). */
  rssAnonKb?: number
  rssFileKb?: number
  threads?: number
}

/** The memory lines of /proc/PID/status. */
export function parseProcStatus(text: string): ProcStatus {
  const kb = (key: string): number | undefined => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(text)
    return m ? Number(m[1]) : undefined
  }
  const th = /^Threads:\s+(\d+)$/m.exec(text)
  return {
    vmRssKb: kb('VmRSS'),
    vmHwmKb: kb('VmHWM'),
    rssAnonKb: kb('RssAnon'),
    rssFileKb: kb('RssFile'),
    threads: th ? Number(th[1]) : undefined,
  }
}

/** /proc/PID/task/TID/schedstat: "run_ns wait_ns timeslices". Returns time on CPU in ns. */
export function parseSchedstat(text: string): number {
  const f = text.trim().split(/\s+/)
  if (f.length < 3 || !/^\d+$/.test(f[0]!))
    throw new Error(`not a schedstat line: ${JSON.stringify(text.slice(0, 80))}`)
  return Number(f[0])
}

export interface CpuSample {
  /** utime + stime, clock ticks, from /proc/PID/stat. */
  ticks: number
  /** Sum over the live threads of schedstat run time, ns (undefined without schedstats). */
  runNs?: number
}

export function readCpu(pid: number, root = '/proc'): CpuSample {
  const st = parseProcStat(readFileSync(join(root, String(pid), 'stat'), 'utf8'))
  let runNs: number | undefined
  try {
    runNs = 0
    for (const tid of readdirSync(join(root, String(pid), 'task'))) {
      try {
        runNs += parseSchedstat(readFileSync(join(root, String(pid), 'task', tid, 'schedstat'), 'utf8'))
      } catch (e: unknown) {
        // A thread that exited between readdir and read is simply gone.
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT' && (e as NodeJS.ErrnoException).code !== 'ESRCH') throw e
      }
    }
  } catch {
    runNs = undefined
  }
  return { ticks: st.utime + st.stime, runNs }
}

export function readStatus(pid: number, root = '/proc'): ProcStatus {
  return parseProcStatus(readFileSync(join(root, String(pid), 'status'), 'utf8'))
}

/**
 * CPU microseconds between two samples. Prefers schedstat (ns resolution) — but threads that
 * exited in between take their schedstat with them, so fall back to ticks when it went backwards.
 */
export function cpuDeltaUs(
  before: CpuSample,
  after: CpuSample,
  clkTck: number,
): { us: number; source: 'schedstat' | 'stat' } {
  if (before.runNs !== undefined && after.runNs !== undefined && after.runNs >= before.runNs) {
    return { us: (after.runNs - before.runNs) / 1000, source: 'schedstat' }
  }
  return { us: ((after.ticks - before.ticks) * 1e6) / clkTck, source: 'stat' }
}

/**
 * The busiest processes of the LAST block of `top -b -n 2` output (the first block averages over each
 * process's life; the second is the current interval), as "43.1% node" or "15.7% cc1 (nice 10)".
 */
export function parseTopBusiest(text: string, max = 8): string[] {
  const blocks = text.split(/^\s*PID\s+USER\b.*$/m)
  if (blocks.length < 2) return []
  const out: string[] = []
  for (const line of blocks[blocks.length - 1]!.split('\n')) {
    const f = line.trim().split(/\s+/)
    // PID USER PR NI VIRT RES SHR S %CPU %MEM TIME+ COMMAND
    if (f.length < 12 || !/^\d+$/.test(f[0]!)) continue
    const cpu = Number(f[8])
    if (!Number.isFinite(cpu)) continue
    const ni = f[3] !== '0' ? ` (nice ${f[3]})` : ''
    out.push(`${cpu.toFixed(1)}% ${f.slice(11).join(' ')}${ni}`)
    if (out.length >= max) break
  }
  return out
}
