// Runs the linters (`npm run lint`, counted as one check) and then tap with the given arguments, passes
// their output through, and ends with the line CI reads: "N passed, N failed". Exits non-zero when
// anything failed or tap itself failed. With arguments (a subset of tests) the lint step is skipped.
import { spawn, spawnSync } from 'node:child_process'

const args = process.argv.slice(2)
let lintPassed = 0
let lintFailed = 0
if (args.length === 0) {
  const lint = spawnSync('npm', ['run', '--silent', 'lint'], { stdio: ['ignore', 'inherit', 'inherit'] })
  if (lint.status === 0) lintPassed = 1
  else {
    lintFailed = 1
    process.stdout.write('# lint failed: run `npm run format` for formatting, then fix what eslint reports\n')
  }
}

const child = spawn('npx', ['tap', ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
let tail = ''
child.stdout.on('data', d => {
  process.stdout.write(d)
  tail = (tail + d.toString()).slice(-4096)
})
child.on('exit', code => {
  // tap's closing summary: "# { total: 12, pass: 11, fail: 1, skip: 0 }"
  const m = /# \{ total: (\d+)(?:, pass: (\d+))?(?:, fail: (\d+))?(?:, skip: (\d+))?(?:, todo: (\d+))?/.exec(tail)
  const pass = Number(m?.[2] ?? 0) + lintPassed
  const fail = Number(m?.[3] ?? 0) + lintFailed
  const skip = Number(m?.[4] ?? 0)
  const failed = fail + (m ? 0 : 1)
  process.stdout.write(`\n${pass} passed, ${failed} failed${skip ? `, ${skip} skipped` : ''}\n`)
  process.exit(failed > 0 || code !== 0 ? 1 : 0)
})
