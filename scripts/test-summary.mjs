// Runs the linters (`npm run lint`, counted as one check) and then tap with the given arguments, passes
// their output through, and ends with the line CI reads: "N passed, N failed[, N skipped]". Exits non-zero
// when anything failed or tap itself failed. With arguments (a subset of tests) the lint step is skipped.
// summarize() is pure and tested on captured tap output (test/scripts/test-summary.ts).
import { spawn, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/**
 * tap's closing counts, e.g. "# { total: 4, pass: 1, todo: 1, skip: 2 }": each key read on its own,
 * since tap prints them in its own order (todo before skip). Undefined when the output has none.
 */
export function parseCounts(text) {
  const lines = [...text.matchAll(/^# \{ (total: \d+[^}]*) \}$/gm)]
  const last = lines.at(-1)
  if (last === undefined) return undefined
  const counts = {}
  for (const m of last[1].matchAll(/(\w+): (\d+)/g)) counts[m[1]] = Number(m[2])
  return counts
}

/**
 * The final line and exit code from tap's output and exit code, plus the lint check.
 * Missing counts count as one failure; so does a non-zero tap exit after counts with no failure in
 * them (e.g. a coverage or teardown error), and a note line says which.
 */
export function summarize(text, tapCode, lint = { passed: 0, failed: 0 }) {
  const counts = parseCounts(text)
  const notes = []
  let failed = (counts?.fail ?? 0) + lint.failed
  if (counts === undefined) {
    notes.push(`# tap printed no counts (exit ${tapCode}): counted as one failure`)
    failed += 1
  } else if (tapCode !== 0 && (counts.fail ?? 0) === 0) {
    notes.push(`# tap exited ${tapCode} after its counts showed no failure: counted as one failure`)
    failed += 1
  }
  const passed = (counts?.pass ?? 0) + lint.passed
  const skipped = counts?.skip ?? 0
  const todo = counts?.todo ?? 0
  if (todo > 0) notes.push(`# ${todo} todo`)
  const line = `${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`
  return { notes, line, exitCode: failed > 0 || tapCode !== 0 ? 1 : 0 }
}

function main() {
  const args = process.argv.slice(2)
  const lint = { passed: 0, failed: 0 }
  if (args.length === 0) {
    const r = spawnSync('npm', ['run', '--silent', 'lint'], { stdio: ['ignore', 'inherit', 'inherit'] })
    if (r.status === 0) lint.passed = 1
    else {
      lint.failed = 1
      process.stdout.write('# lint failed: run `npm run format` for formatting, then fix what eslint reports\n')
    }
  }
  const child = spawn('npx', ['tap', ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  let tail = ''
  child.stdout.on('data', d => {
    process.stdout.write(d)
    tail = (tail + d.toString()).slice(-4096)
  })
  child.on('exit', (code, signal) => {
    const s = summarize(tail, code ?? (signal ? 128 : 1), lint)
    process.stdout.write(`\n${[...s.notes, s.line].join('\n')}\n`)
    process.exit(s.exitCode)
  })
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) main()
