// Test helper for integration tests that need one lab and a scratch directory for the whole file:
// created before the first test, both deleted after the last (whatever failed). Also the environment
// a daemon under test should see: the test runner's own DNS_SHAPER_* settings left out.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLab, type Lab } from '../../harness/topology.js'

export function labFixture(prefix: string): { lab: () => Lab; work: string } {
  const work = mkdtempSync(join(tmpdir(), prefix))
  let lab: Lab | undefined
  t.before(async () => {
    lab = await createLab()
  })
  t.teardown(async () => {
    await lab?.destroy()
    rmSync(work, { recursive: true, force: true })
  })
  return {
    lab: () => {
      if (!lab) throw new Error('the lab is created in t.before: use it inside a test')
      return lab
    },
    work,
  }
}

/** process.env without DNS_SHAPER_* (CI exports some for the test runner itself), plus `extra`. */
export function daemonEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DNS_SHAPER_'))),
    ...extra,
  }
}
