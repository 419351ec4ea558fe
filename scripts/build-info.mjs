// Records the commit a build is made from in dist/build-info.json, which src/version.ts reads at run
// time (`dns-shaper version`, dns_shaper_build_info{commit}). Run after tsc (package.json's build and
// prepare do). The commit is $REVISION when given (an image build, whose context has no .git: pass it
// as a build argument), else `git rev-parse HEAD` of this checkout, with "-dirty" if tracked files
// differ, else nothing is written and the version says "unknown". Writes that one file only.
import { execFileSync } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { fileURLToPath, URL } from 'node:url'

const root = fileURLToPath(new URL('../', import.meta.url))
const out = process.argv[2] ?? `${root}dist/build-info.json`

function gitCommit() {
  const git = args => execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
  try {
    const head = git(['rev-parse', 'HEAD']).trim()
    const dirty = git(['status', '--porcelain', '--untracked-files=no']).trim() !== ''
    return `${head}${dirty ? '-dirty' : ''}`
  } catch {
    return undefined
  }
}

const commit = (process.env.REVISION ?? '').trim() || (existsSync(`${root}.git`) ? gitCommit() : undefined)
if (commit === undefined || !/^[0-9a-f]{7,64}(-dirty)?$/.test(commit)) {
  process.stderr.write(`build-info: no commit recorded (${commit ?? 'no REVISION and no git checkout'})\n`)
} else {
  writeFileSync(out, `${JSON.stringify({ commit })}\n`)
}
