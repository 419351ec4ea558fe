// Builds the libFuzzer targets (fuzz/build.sh) and runs each briefly (fuzz/run.sh): the parser from the
// test vectors, the decision core against its reference model from the known-bug seeds. Skipped with
// the reason when clang or its libFuzzer runtime is missing; CI installs them
// (Debian: apt-get install clang libclang-rt-14-dev).
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))
const secs = Number(process.env.DNS_SHAPER_FUZZ_SECS ?? 20)
const coreSecs = Number(process.env.DNS_SHAPER_CORE_FUZZ_SECS ?? 20)
const cxx = process.env.CXX_FUZZ ?? 'clang++'

/** Why the fuzzer cannot be built here, or undefined when it can. */
function missing(dir: string): string | undefined {
  const v = spawnSync(cxx, ['--version'], { encoding: 'utf8' })
  if (v.error || v.status !== 0) return `${cxx} not found (apt-get install clang libclang-rt-14-dev)`
  const src = join(dir, 'probe.cc')
  writeFileSync(src, 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n')
  const c = spawnSync(cxx, ['-fsanitize=fuzzer,address,undefined', src, '-o', join(dir, 'probe')], { encoding: 'utf8' })
  if (c.status !== 0)
    return `libFuzzer/ASan runtime missing for ${cxx} (apt-get install libclang-rt-14-dev): ${c.stderr.trim().split('\n').pop()}`
  return undefined
}

const out = mkdtempSync(join(tmpdir(), 'dns-shaper-fuzz-'))
t.teardown(() => rmSync(out, { recursive: true, force: true }))
const why = missing(out)

function runFuzzer(target: string, seconds: number, seedLine: RegExp): (t: Test) => Promise<void> {
  return async t => {
    const r = spawnSync(join(root, 'fuzz', 'run.sh'), [String(seconds), target], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, FUZZ_OUT: join(out, target) },
      timeout: (seconds + 90) * 1000,
      maxBuffer: 64 << 20,
    })
    const log = `${r.stdout}\n${r.stderr}`
    const tail = log.split('\n').slice(-40).join('\n')
    t.equal(r.signal, null, 'not killed')
    t.equal(r.status, 0, 'fuzzer exits 0', { tail })
    t.notMatch(log, /ERROR: (AddressSanitizer|libFuzzer)|runtime error:|deadly signal|check failed/, 'no report', {
      tail,
    })
    t.match(log, seedLine, 'seeded')
    const execs = /stat::number_of_executed_units:\s*(\d+)/.exec(log)
    const rate = /stat::average_exec_per_sec:\s*(\d+)/.exec(log)
    t.ok(execs && Number(execs[1]) > 0, 'executed inputs')
    t.comment(`${target}: executed ${execs?.[1]} inputs at ${rate?.[1]} exec/s`)
    t.same(readdirSync(join(out, target, 'crashes')), [], 'no crash artifacts')
  }
}

t.test(
  `parser fuzzer runs ${secs}s clean`,
  { skip: why ?? false, timeout: (secs + 120) * 1000 },
  runFuzzer('parse', secs, /seed-corpus: \d+ files/),
)

t.test(
  `decision-core fuzzer matches its model for ${coreSecs}s`,
  { skip: why ?? false, timeout: (coreSecs + 120) * 1000 },
  runFuzzer('core', coreSecs, /core-seed-corpus: [1-9]\d* files/),
)
