// Summarises repeated `npm run bench -- --compare DIR --out RUN_DIR` runs: reads each RUN_DIR/latest.json
// and prints (or writes, with --out FILE) the now/before ratio table of bench/lib/compare.ts.
//   usage: node dist-harness/bench/compare.js RUN_DIR... [--out FILE]   (npm run bench:compare -- ...)
// Reads files only: no lab, no root.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { compareMarkdown, compareRuns } from './lib/compare.js'
import type { BenchReport } from './lib/report.js'

const argv = process.argv.slice(2)
const outAt = argv.indexOf('--out')
const out = outAt >= 0 ? argv[outAt + 1] : undefined
const dirs = argv.filter((_, i) => outAt < 0 || (i !== outAt && i !== outAt + 1))
if (dirs.length === 0 || (outAt >= 0 && !out)) {
  process.stderr.write(
    'usage: compare RUN_DIR... [--out FILE]  (each RUN_DIR holds a latest.json of a --compare run)\n',
  )
  process.exit(2)
}
const reports = dirs.map(d => JSON.parse(readFileSync(join(d, 'latest.json'), 'utf8')) as BenchReport)
const rows = compareRuns(reports)
if (rows.length === 0) {
  process.stderr.write(
    'no dns-shaper variant ran beside an @before twin in these runs: run the bench with --compare DIR\n',
  )
  process.exit(1)
}
const md = compareMarkdown(reports, rows)
if (out) writeFileSync(out, md)
else process.stdout.write(md)
