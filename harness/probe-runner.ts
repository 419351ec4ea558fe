// Runs the compiled probe (dist-harness/harness/probe.js) inside a lab namespace and returns its parsed JSON result.
// It must not measure anything itself: timing happens inside the namespace, in the probe process.

import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { builtPath, repoRoot } from './paths.js'
import { LabError } from './netns.js'
import type { Netns } from './netns.js'
import { probeArgv, probeTimeBoundMs } from './probe-args.js'
import type { ProbeOptions, ProbeResult } from './probe-lib.js'

/**
 * Path of the runnable probe. Compiled (dist-harness/harness/*.js): the sibling probe.js. Run from source
 * (tap loads .ts): <repo>/dist-harness/harness/probe.js, which `npm run harness:build` produces.
 * DNS_SHAPER_PROBE_SCRIPT overrides both.
 */
export function resolveProbeScript(moduleUrl: string = import.meta.url, env: NodeJS.ProcessEnv = process.env): string {
  const override = env['DNS_SHAPER_PROBE_SCRIPT']
  if (override) return override
  if (moduleUrl.endsWith('.js')) return fileURLToPath(new URL('./probe.js', moduleUrl))
  return builtPath('harness/probe.ts', repoRoot(moduleUrl))
}

export interface RunProbeInOptions {
  /** Probe script path (default resolveProbeScript()). */
  script?: string
  /** Node binary (default this process's). */
  node?: string
}

/** Runs `node probe.js ...` inside `ns`, bounded in time, and parses its JSON. */
export async function runProbeIn(
  ns: Netns,
  opts: Partial<ProbeOptions> & { server: string },
  run: RunProbeInOptions = {},
): Promise<ProbeResult> {
  const script = run.script ?? resolveProbeScript()
  if (!existsSync(script)) {
    throw new LabError(`probe script ${script} not found`, { hint: 'build it first: npm run harness:build' })
  }
  const argv = [run.node ?? process.execPath, script, ...probeArgv(opts)]
  const r = await ns.exec(argv, { timeoutMs: probeTimeBoundMs(opts) })
  if (r.code !== 0) {
    throw new LabError(
      `probe in ${ns.name} failed (exit ${r.code}${r.timedOut ? ', timed out' : ''}): ${r.stderr.trim()}`,
      {
        argv: r.argv,
        stderr: r.stderr,
        exitCode: r.code,
        hint: 'check the probe flags and that the lab is up',
      },
    )
  }
  try {
    return JSON.parse(r.stdout) as ProbeResult
  } catch {
    throw new LabError(`probe in ${ns.name} printed no JSON: ${r.stdout.slice(0, 200)}`, {
      argv: r.argv,
      stderr: r.stderr,
    })
  }
}
