// Where the harness finds the repository, the built product (dist/) and the harness build (dist-harness/),
// whether it runs from source (tap loads *.ts) or compiled (dist-harness/**/*.js). Paths only: it must not build anything.
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The checkout: the nearest folder above `moduleUrl` that holds package.json (dist-harness/ holds none). */
export function repoRoot(moduleUrl: string = import.meta.url): string {
  let dir = dirname(fileURLToPath(moduleUrl))
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir
    const up = dirname(dir)
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(moduleUrl)}`)
    dir = up
  }
}

/** Output folder of the one harness build (`npm run harness:build`: harness/, lab/ and bench/); it mirrors the tree. */
export const HARNESS_DIST = 'dist-harness'
/** The built product CLI the harness runs in its namespaces. */
export const CLI_PATH = join(repoRoot(), 'dist/cli.js')

/** The compiled form of a repository-relative source file, e.g. 'harness/probe.ts' -> <repo>/dist-harness/harness/probe.js. */
export function builtPath(source: string, root: string = repoRoot()): string {
  return join(root, HARNESS_DIST, source.replace(/\.ts$/, '.js'))
}
