// src/version.ts: the version comes from package.json, the commit from what the build recorded
// (scripts/build-info.mjs), the runtime from process.versions.
import t from 'tap'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { NODE_VERSION, VERSION } from '../src/version.js'

t.test('VERSION is package.json version; NODE_VERSION has no leading v', async t => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  t.equal(VERSION, pkg.version)
  t.match(VERSION, /^\d+\.\d+\.\d+/)
  t.equal(NODE_VERSION, process.version.slice(1))
  t.notMatch(NODE_VERSION, /^v/)
})

t.test('the commit: recorded at build time in dist/build-info.json, read back, "unknown" without it', async t => {
  const { commitFrom, COMMIT, UNKNOWN_COMMIT, versionLine, BUILD_INFO_FILE } = await import('../src/version.js')
  t.equal(
    commitFrom('{"commit":"0123456789abcdef0123456789abcdef01234567"}'),
    '0123456789abcdef0123456789abcdef01234567',
  )
  t.equal(commitFrom('{"commit":"abc1234-dirty"}'), 'abc1234-dirty')
  for (const bad of [undefined, '', 'nope', '{"commit": 5}', '{"commit":"$(rm -rf /)"}', '{}'])
    t.equal(commitFrom(bad), UNKNOWN_COMMIT, `${String(bad)}: unknown`)
  const file = new URL(`../${BUILD_INFO_FILE}`, import.meta.url)
  t.equal(COMMIT, existsSync(file) ? commitFrom(readFileSync(file, 'utf8')) : UNKNOWN_COMMIT, 'what the build recorded')
  t.match(versionLine(), new RegExp(`^dns-shaper ${VERSION} \\(commit ${COMMIT}, node ${NODE_VERSION}\\)$`))
})

t.test('scripts/build-info.mjs: REVISION when given (an image build), else the checkout HEAD', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'dns-shaper-build-info-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const script = fileURLToPath(new URL('../scripts/build-info.mjs', import.meta.url))
  const out = join(dir, 'build-info.json')
  const run = (env: NodeJS.ProcessEnv) =>
    spawnSync(process.execPath, [script, out], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' })
  t.equal(run({ REVISION: 'feedc0de1234' }).status, 0)
  t.same(JSON.parse(readFileSync(out, 'utf8')), { commit: 'feedc0de1234' })
  rmSync(out)
  t.equal(run({ REVISION: 'not a commit' }).status, 0)
  t.notOk(existsSync(out), 'nothing recorded rather than garbage')
  const head = spawnSync('git', ['rev-parse', 'HEAD'], {
    encoding: 'utf8',
    cwd: fileURLToPath(new URL('..', import.meta.url)),
  })
  if (head.status !== 0) {
    t.comment('not a git checkout: the HEAD case is not checked')
    return
  }
  t.equal(run({}).status, 0)
  t.match(
    JSON.parse(readFileSync(out, 'utf8')),
    { commit: new RegExp(`^${head.stdout.trim()}(-dirty)?$`) },
    'HEAD of this checkout',
  )
})
