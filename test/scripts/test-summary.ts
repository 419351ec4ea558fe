// scripts/test-summary.mjs on captured tap output (test/fixtures/tap-summary/*-exitN.txt: tap's stdout
// and its exit code): skip and todo read apart, a non-zero exit after the counts never reads as a pass,
// several runs added up; and the split of a whole run into the two tap runs.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
// @ts-expect-error -- a plain .mjs script without types; its exports are checked by these tests
import * as script from '../../scripts/test-summary.mjs'

type Summary = { notes: string[]; line: string; exitCode: number }
const fixture = (name: string): string =>
  readFileSync(fileURLToPath(new URL(`../fixtures/tap-summary/${name}`, import.meta.url)), 'utf8')
type Lint = { passed: number; failed: number }
const { parseCounts, SHARED_CPU_INTEGRATION, listTestFiles } = script as {
  parseCounts: (text: string) => Record<string, number> | undefined
  SHARED_CPU_INTEGRATION: string[]
  listTestFiles: (root: string) => string[]
}
const sum = (script as { summarize: (text: string, code: number, lint?: Lint) => Summary }).summarize
const sumRuns = (script as { summarizeRuns: (runs: { text: string; code: number }[], lint?: Lint) => Summary })
  .summarizeRuns
type Group = { name: string; jobs: number; timeoutS: number; files: string[] }
const groups = (script as { testGroups: (files: string[]) => Group[] }).testGroups

t.test('all passed, tap exit 0: the CI line and exit 0', async t => {
  const s = sum(fixture('pass-exit0.txt'), 0)
  t.same([s.line, s.exitCode, s.notes], ['5 passed, 0 failed', 0, []])
  t.equal(
    sum(fixture('pass-exit0.txt'), 0, { passed: 1, failed: 0 }).line,
    '6 passed, 0 failed',
    'lint counts as a check',
  )
})

t.test('todo printed before skip: both counted', async t => {
  t.same(parseCounts(fixture('todo-skip-exit1.txt')), { total: 4, pass: 1, todo: 1, skip: 2 })
  const s = sum(fixture('todo-skip-exit1.txt'), 0)
  t.equal(s.line, '1 passed, 0 failed, 2 skipped', 'the skipped count survives the todo before it')
  t.ok(s.notes.includes('# 1 todo'))
})

t.test('tap exits non-zero after counts with no failure: the line says so and the script fails', async t => {
  const s = sum(fixture('todo-skip-exit1.txt'), 1)
  t.equal(s.line, '1 passed, 1 failed, 2 skipped')
  t.match(s.notes.join('\n'), /tap exited 1 after its counts showed no failure/)
  t.equal(s.exitCode, 1)
})

t.test('failures: counted from tap, exit 1', async t => {
  const s = sum(fixture('failures-exit1.txt'), 1)
  t.same([s.line, s.exitCode, s.notes], ['41 passed, 7 failed', 1, []])
})

t.test('no counts at all (tap died): one failure, exit 1', async t => {
  const s = sum(fixture('no-counts-exit1.txt'), 1)
  t.equal(s.line, '0 passed, 1 failed')
  t.match(s.notes[0], /tap printed no counts \(exit 1\)/)
  t.equal(s.exitCode, 1)
  t.equal(sum(fixture('pass-exit0.txt'), 0, { passed: 0, failed: 1 }).exitCode, 1, 'a lint failure fails the run')
})

t.test('several tap runs: counts added up, any run that fails fails the whole', async t => {
  const pass = { text: fixture('pass-exit0.txt'), code: 0 }
  const fail = { text: fixture('failures-exit1.txt'), code: 1 }
  t.same(sumRuns([pass, pass], { passed: 1, failed: 0 }).line, '11 passed, 0 failed', '5 + 5 + lint')
  const s = sumRuns([pass, fail])
  t.same([s.line, s.exitCode], ['46 passed, 7 failed', 1])
  const dead = sumRuns([pass, { text: fixture('no-counts-exit1.txt'), code: 1 }])
  t.same([dead.line, dead.exitCode], ['5 passed, 1 failed', 1], 'a run that printed no counts is one failure')
  t.match(dead.notes.join('\n'), /no counts \(exit 1\) \(run 2 of 2\)/, 'the note names the run')
  const skips = sumRuns([{ text: fixture('todo-skip-exit1.txt'), code: 0 }, pass])
  t.equal(skips.line, '6 passed, 0 failed, 2 skipped', 'skips of one run survive the other')
})

t.test('test groups: every file once; integration tests that time things run alone', async t => {
  const files = listTestFiles(fileURLToPath(new URL('../..', import.meta.url)))
  t.ok(files.includes('test/scripts/test-summary.ts'), 'finds this file')
  t.notOk(
    files.some(f => f.startsWith('test/fixtures/') || f.startsWith('test/helpers/')),
    'no fixtures or helpers (package.json tap.exclude)',
  )
  const g = groups(files)
  t.same(
    g.map(x => x.jobs),
    [2, 1],
  )
  t.same(
    g.map(x => x.timeoutS),
    [900, 1200],
    'per-file timeouts above the 300 s of tap for the heavy files of each group',
  )
  t.same([...g[0]!.files, ...g[1]!.files].sort(), files, 'each file in exactly one group')
  t.ok(
    g[1]!.files.every(f => f.startsWith('test/integration/')),
    'the one-at-a-time group is integration tests',
  )
  for (const f of ['test/integration/soak.ts', 'test/integration/shaper.ts', 'test/integration/large-tables.ts'])
    t.ok(g[1]!.files.includes(f), `${f} (measures time or memory) runs alone`)
  for (const f of SHARED_CPU_INTEGRATION) {
    t.ok(files.includes(f), `${f} exists`)
    t.ok(g[0]!.files.includes(f), `${f} shares the CPU`)
  }
  t.same(
    new Set(files.filter(f => f.startsWith('test/integration/'))).size,
    g[1]!.files.length + SHARED_CPU_INTEGRATION.length,
  )
})

t.test('test groups: the image test first of the timed ones, the longest shared files first', async t => {
  const g = groups(listTestFiles(fileURLToPath(new URL('../..', import.meta.url))))
  t.equal(g[1]!.files[0], 'test/integration/image.ts', 'the image test first (it waits for the background build)')
  t.same(
    g[0]!.files.slice(0, 4),
    ['test/integration/sanitizers.ts', 'test/integration/fuzz.ts', 'test/native/units.ts', 'test/deploy.ts'],
    'the longest shared files first',
  )
})
