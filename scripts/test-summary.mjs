// Runs tap with the given arguments, passes its output through, and ends with the line CI reads:
// "N passed, N failed". Exits non-zero when anything failed or tap itself failed.
import { spawn } from 'node:child_process'

const child = spawn('npx', ['tap', ...process.argv.slice(2)], { stdio: ['ignore', 'pipe', 'inherit'] })
let tail = ''
child.stdout.on('data', d => {
  process.stdout.write(d)
  tail = (tail + d.toString()).slice(-4096)
})
child.on('exit', code => {
  // tap's closing summary: "# { total: 12, pass: 11, fail: 1, skip: 0 }"
  const m = /# \{ total: (\d+)(?:, pass: (\d+))?(?:, fail: (\d+))?(?:, skip: (\d+))?(?:, todo: (\d+))?/.exec(tail)
  const pass = Number(m?.[2] ?? 0)
  const fail = Number(m?.[3] ?? 0)
  const skip = Number(m?.[4] ?? 0)
  const failed = fail + (m ? 0 : 1)
  process.stdout.write(`\n${pass} passed, ${failed} failed${skip ? `, ${skip} skipped` : ''}\n`)
  process.exit(failed > 0 || code !== 0 ? 1 : 0)
})
