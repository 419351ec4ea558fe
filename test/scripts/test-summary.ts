// scripts/test-summary.mjs on captured tap output (test/fixtures/tap-summary/*-exitN.txt: tap's stdout
// and its exit code): skip and todo read apart, a non-zero exit after the counts never reads as a pass.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
// @ts-expect-error -- a plain .mjs script without types; its exports are checked by these tests
import { parseCounts, summarize } from '../../scripts/test-summary.mjs'

type Summary = { notes: string[]; line: string; exitCode: number }
const fixture = (name: string): string =>
  readFileSync(fileURLToPath(new URL(`../fixtures/tap-summary/${name}`, import.meta.url)), 'utf8')
const sum = summarize as (text: string, code: number, lint?: { passed: number; failed: number }) => Summary

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
