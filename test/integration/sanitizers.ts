// The addon and its tests under AddressSanitizer and UndefinedBehaviorSanitizer: builds a sanitized
// copy of the addon (scripts/asan-test.sh) and runs test/native/*.ts against it. Any report aborts.
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const script = fileURLToPath(new URL('../../scripts/asan-test.sh', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'dnss-asan-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

t.test('native tests pass with the ASan+UBSan addon', async t => {
  // tap's own NODE_OPTIONS hooks would make the inner run report into this one.
  const env: NodeJS.ProcessEnv = { ASAN_BUILD_DIR: dir }
  for (const [k, v] of Object.entries(process.env)) if (!/^(TAP|_TAP|NODE_OPTIONS$)/.test(k)) env[k] = v
  const r = await new Promise<{ code: number | null; out: string }>(resolve => {
    execFile('bash', [script], { env, timeout: 600_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: stdout + stderr })
    })
  })
  if (r.code === 127 && !process.env.CI) {
    // Outside CI a machine without libasan just cannot run this; CI installs it and must run it.
    t.comment(`skipped: no sanitizer runtime: ${r.out.trim().split('\n').at(-1) ?? ''}`)
    return
  }
  const summary = /# \{ total: (\d+), pass: (\d+)(?:, fail: (\d+))?/.exec(r.out)
  t.equal(r.code, 0, `asan-test.sh exits 0${r.code ? `:\n${r.out.slice(-3000)}` : ''}`)
  t.ok(summary, 'the inner tap run finished')
  t.ok(Number(summary?.[1]) > 100, `ran the native tests (${summary?.[1]} assertions)`)
  t.equal(Number(summary?.[3] ?? 0), 0, 'none failed')
  t.notMatch(r.out, /ERROR: AddressSanitizer|runtime error:/, 'no sanitizer report')
})
