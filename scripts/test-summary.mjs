// Runs the linters (`npm run lint`, counted as one check) and then tap, passes their output through, and
// ends with the line CI reads: "N passed, N failed[, N skipped]". Exits non-zero when anything failed or
// tap itself failed. With arguments (a subset of tests) it runs only `tap ARGS` and skips the lint step.
// Without, tap runs twice (testGroups): the files that measure no time two at a time, then the
// integration tests one at a time, since they assert latencies and memory against references measured
// in the same run and a second test on the CPU would skew one side. summarize() and testGroups() are
// pure and tested (test/scripts/test-summary.ts).
import { spawn, spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
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
  return summarizeRuns([{ text, code: tapCode }], lint)
}

/** The same over several tap runs (each its output's tail and exit code): their counts added up. */
export function summarizeRuns(runs, lint = { passed: 0, failed: 0 }) {
  const notes = []
  let passed = lint.passed
  let failed = lint.failed
  let skipped = 0
  let todo = 0
  for (const [i, { text, code }] of runs.entries()) {
    const counts = parseCounts(text)
    const which = runs.length > 1 ? ` (run ${i + 1} of ${runs.length})` : ''
    failed += counts?.fail ?? 0
    if (counts === undefined) {
      notes.push(`# tap printed no counts (exit ${code})${which}: counted as one failure`)
      failed += 1
    } else if (code !== 0 && (counts.fail ?? 0) === 0) {
      notes.push(`# tap exited ${code} after its counts showed no failure${which}: counted as one failure`)
      failed += 1
    }
    passed += counts?.pass ?? 0
    skipped += counts?.skip ?? 0
    todo += counts?.todo ?? 0
  }
  if (todo > 0) notes.push(`# ${todo} todo`)
  const line = `${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`
  const anyTapFailed = runs.some(r => r.code !== 0)
  return { notes, line, exitCode: failed > 0 || anyTapFailed ? 1 : 0 }
}

/**
 * Integration tests that measure no time and no memory (they build, fuzz for a fixed time, or pack),
 * so they can share the CPU with the unit tests. Every other test/integration file runs alone.
 */
export const SHARED_CPU_INTEGRATION = [
  'test/integration/sanitizers.ts',
  'test/integration/fuzz.ts',
  'test/integration/clients-build.ts',
  'test/integration/npm-pack.ts',
]

export const IMAGE_TEST = 'test/integration/image.ts'

/** The longest files of the shared group, longest first (about 80 to 180 s, 60, 25 and 25 s here). */
export const LONGEST_SHARED = [
  'test/integration/sanitizers.ts',
  'test/integration/fuzz.ts',
  'test/native/units.ts',
  'test/deploy.ts',
]

/**
 * The two tap runs of a whole-suite run, from the list of test files (repository-relative, tap's
 * excludes already applied): files that measure no time, two at a time; then the rest of
 * test/integration, one at a time, the image test first. Every file is in exactly one group.
 */
export function testGroups(files) {
  const alone = files
    .filter(f => f.startsWith('test/integration/') && !SHARED_CPU_INTEGRATION.includes(f))
    // The image test first: CI builds the image in the background during the first run, and this
    // test waits for it, so no other timed test shares the CPU with the build (.ci/run).
    .sort((a, b) => Number(b === IMAGE_TEST) - Number(a === IMAGE_TEST))
  // Per-file timeouts (tap's --timeout; a file's own t.setTimeout can only shorten it): beyond the
  // default 300 s for the ASan and libFuzzer builds sharing the CPU (in CI also with the image build),
  // and for the image test's wait for that build and the arm64 guest.
  // The longest files of the shared group first, so they overlap the many short ones instead of
  // running alone at the end.
  const first = f => {
    const i = LONGEST_SHARED.indexOf(f)
    return i < 0 ? LONGEST_SHARED.length : i
  }
  const shared = files.filter(f => !alone.includes(f)).sort((a, b) => first(a) - first(b))
  return [
    { name: 'unit tests and builds', jobs: 2, timeoutS: 900, files: shared },
    { name: 'integration tests, one at a time', jobs: 1, timeoutS: 1200, files: alone },
  ].filter(g => g.files.length > 0)
}

/** Test files as tap would find them: test/**\/*.ts without fixtures and helpers (package.json "tap.exclude"). */
export function listTestFiles(root) {
  const out = []
  const walk = dir => {
    for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
      const rel = `${dir}/${e.name}`
      if (e.isDirectory()) {
        if (!['test/fixtures', 'test/helpers'].includes(rel)) walk(rel)
      } else if (/\.(ts|mts|js|mjs)$/.test(e.name)) out.push(rel)
    }
  }
  walk('test')
  return out.sort()
}

/** Runs `npx tap ARGS`, passing its output through; resolves with the output's tail and the exit code. */
function runTap(args) {
  return new Promise(resolve => {
    const child = spawn('npx', ['tap', ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
    let tail = ''
    child.stdout.on('data', d => {
      process.stdout.write(d)
      tail = (tail + d.toString()).slice(-4096)
    })
    child.on('exit', (code, signal) => resolve({ text: tail, code: code ?? (signal ? 128 : 1) }))
  })
}

async function main() {
  const args = process.argv.slice(2)
  const lint = { passed: 0, failed: 0 }
  const runs = []
  if (args.length > 0) runs.push(await runTap(args))
  else {
    const r = spawnSync('npm', ['run', '--silent', 'lint'], { stdio: ['ignore', 'inherit', 'inherit'] })
    if (r.status === 0) lint.passed = 1
    else {
      lint.failed = 1
      process.stdout.write('# lint failed: run `npm run format` for formatting, then fix what eslint reports\n')
    }
    const root = relative(process.cwd(), join(dirname(fileURLToPath(import.meta.url)), '..')) || '.'
    for (const g of testGroups(listTestFiles(root))) {
      process.stdout.write(`# ${g.name}: ${g.files.length} files, ${g.jobs} at a time\n`)
      const started = Date.now()
      runs.push(await runTap([`--jobs=${g.jobs}`, `--timeout=${g.timeoutS}`, ...g.files.map(f => join(root, f))]))
      process.stdout.write(`# ${g.name}: ${((Date.now() - started) / 1000).toFixed(0)} s\n`)
    }
  }
  const s = summarizeRuns(runs, lint)
  process.stdout.write(`\n${[...s.notes, s.line].join('\n')}\n`)
  process.exit(s.exitCode)
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await main()
