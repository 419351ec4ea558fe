// Test helper: which paths of an installed product (npm package, image /app) are lab or test code.
// Pure; the product must contain only what `dns-shaper run|rules|check` executes.
import { readdirSync } from 'node:fs'
import { join } from 'node:path'

/** Module names of the harness and the lab (harness/, lab/) and of test-only code that once lived in src/. */
const LAB_OR_TEST_MODULE =
  /^(demo|netns|topology|unbound|race|race-cli|probe|probe-runner|probe-lib|dns-probe-lib|cbpf-interp)\.(js|ts|d\.ts)(\.map)?$/

/** The paths (relative, '/'-separated) that are lab or test code. */
export function labOrTestPaths(paths: readonly string[]): string[] {
  return paths.filter(p => {
    const parts = p.split('/')
    if (
      parts.some(
        s =>
          s === 'lab' || s === 'harness' || s === 'dist-harness' || s === 'dist-lab' || s === 'test' || s === 'tests',
      )
    )
      return true
    return LAB_OR_TEST_MODULE.test(parts[parts.length - 1] ?? '')
  })
}

/** Every file below `root` (relative paths), skipping the folders named in `skip`. */
export function listFiles(root: string, skip: ReadonlySet<string> = new Set()): string[] {
  const out: string[] = []
  const walk = (rel: string): void => {
    for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
      const p = rel === '' ? e.name : `${rel}/${e.name}`
      if (e.isDirectory()) {
        if (!skip.has(e.name)) walk(p)
      } else out.push(p)
    }
  }
  walk('')
  return out
}
