// Measures what the programs a daemon runs cost (peak RSS, CPU), one record per run: a PATH directory
// of shims that run the real program under GNU time. Test-only; it never changes what a program does
// (same argv, stdin, stdout, exit code), and it leaves nothing behind once disposed.
import { execFileSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'

/** GNU time, which reports a child's peak RSS (wait4's ru_maxrss) and its user and system CPU. */
export const GNU_TIME = '/usr/bin/time'

export interface ChildCost {
  /** The program's name and arguments. */
  argv: string[]
  maxRssKiB: number
  /** User + system CPU in seconds (GNU time prints 10 ms steps). */
  cpuS: number
}

export interface ChildCostShims {
  /** PATH for the daemon: the shims first, then the PATH it would have had. */
  path: string
  /** Every run finished so far. */
  read(): ChildCost[]
  dispose(): void
}

/** Shims for `programs` (those installed; the rest are left to PATH, where they are missing anyway). */
export function childCostShims(programs: readonly string[], path = process.env.PATH ?? ''): ChildCostShims {
  const dir = mkdtempSync(join(tmpdir(), 'dnss-child-costs-'))
  const log = join(dir, 'costs.log')
  writeFileSync(log, '')
  for (const p of programs) {
    let real: string
    try {
      real = execFileSync('sh', ['-c', 'command -v "$1"', 'sh', p], { env: { PATH: path }, encoding: 'utf8' }).trim()
    } catch {
      continue
    }
    // One line per run, appended (O_APPEND: concurrent runs do not interleave within a line); the
    // program keeps its own name as argv[0], which multi-call binaries (xtables-nft-multi) dispatch on.
    const shim = `#!/bin/sh\nexec ${GNU_TIME} -a -o '${log}' -f 'cost %M %U %S %C' '${real}' "$@"\n`
    writeFileSync(join(dir, p), shim)
    chmodSync(join(dir, p), 0o755)
  }
  return {
    path: `${dir}:${path}`,
    read() {
      // GNU time adds "Command exited with non-zero status N" before the format line: skipped, as is
      // a last line still being written.
      return readFileSync(log, 'utf8')
        .split('\n')
        .slice(0, -1)
        .flatMap(l => {
          const m = /^cost (\d+) ([\d.]+) ([\d.]+) (\S+)(.*)$/.exec(l)
          if (!m) return []
          const argv = [
            basename(m[4]!),
            ...m[5]!
              .trim()
              .split(' ')
              .filter(a => a !== ''),
          ]
          return [{ argv, maxRssKiB: Number(m[1]), cpuS: Number(m[2]) + Number(m[3]) }]
        })
    },
    dispose() {
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
