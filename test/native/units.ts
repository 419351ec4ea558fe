// Builds the native unit tests (test/native/*_test.cc: decision core, pair table, verdict batch,
// netlink message reading and intake) into a plain binary and runs it: no root, no netns, no socket. Each case
// the binary prints becomes one assertion here. Uses ASan+UBSan when the compiler has them.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))
const cxx = process.env.CXX ?? 'g++'
// Test binaries link their own sanitizer runtime: the preload scripts/asan-test.sh gives node must
// not reach the compiler or them.
const env: NodeJS.ProcessEnv = { ...process.env }
delete env.LD_PRELOAD

const dir = mkdtempSync(join(tmpdir(), 'dnss-units-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

function sanitizers(): string[] {
  const src = join(dir, 'probe.cc')
  writeFileSync(src, 'int main() { return 0; }\n')
  const flags = ['-fsanitize=address,undefined', '-fno-sanitize-recover=all', '-fno-omit-frame-pointer']
  const r = spawnSync(cxx, [...flags, src, '-o', join(dir, 'probe')], { encoding: 'utf8', env })
  return r.status === 0 ? flags : []
}

const sources = ['decision_core.cc', 'parse.cc', 'nfq.cc'].map(f => join(root, 'native', f))
const tests = readdirSync(join(root, 'test', 'native')).filter(f => f.endsWith('_test.cc'))
const san = sanitizers()
if (san.length === 0) t.comment(`no sanitizer runtime for ${cxx}: unit tests run without ASan/UBSan`)

for (const test of tests) {
  t.test(test, async t => {
    const bin = join(dir, test.replace(/\.cc$/, ''))
    const c = spawnSync(
      cxx,
      ['-std=c++17', '-g', '-O1', '-Wall', '-Wextra', ...san, ...sources, join(root, 'test', 'native', test)].concat([
        '-o',
        bin,
        '-lmnl',
        '-lnetfilter_queue',
      ]),
      { encoding: 'utf8', env, timeout: 180_000 },
    )
    if (c.status !== 0) {
      t.fail(`${cxx} failed`, { stderr: c.stderr.slice(-4000) })
      return
    }
    const r = spawnSync(bin, [], { encoding: 'utf8', env, timeout: 60_000 })
    const lines = r.stdout.split('\n')
    const plan = /^1\.\.(\d+)$/m.exec(r.stdout)
    let cases = 0
    for (let i = 0; i < lines.length; i++) {
      const m = /^(not )?ok \d+ - (.*)$/.exec(lines[i]!)
      if (!m) continue
      cases++
      const why: string[] = []
      for (let j = i + 1; j < lines.length && lines[j]!.startsWith('  # '); j++) why.push(lines[j]!.slice(4))
      t.ok(!m[1], m[2]!, why.length ? { failed: why } : {})
    }
    t.ok(plan && Number(plan[1]) === cases && cases > 0, `ran all ${plan?.[1]} cases`)
    t.equal(r.signal, null, 'not killed (a sanitizer report aborts)', { stderr: r.stderr.slice(-4000) })
    t.notMatch(r.stderr, /ERROR: AddressSanitizer|runtime error:/, 'no sanitizer report')
  })
}
