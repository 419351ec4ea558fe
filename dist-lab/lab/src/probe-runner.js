// Runs the compiled probe (dist-lab/lab/src/probe.js) inside a lab namespace and returns its parsed JSON result.
// It must not measure anything itself: timing happens inside the namespace, in the probe process.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LAB_DIST, repoRoot } from './paths.js';
import { LabError } from './netns.js';
import { probeArgv, probeTimeBoundMs } from './dns-probe-lib.js';
/**
 * Path of the runnable probe. Compiled (dist-lab/lab/src/*.js): the sibling probe.js. Run from source
 * (tap loads .ts): <repo>/dist-lab/lab/src/probe.js, which `npm run lab:build` produces.
 * DNS_SHAPER_PROBE_SCRIPT overrides both.
 */
export function resolveProbeScript(moduleUrl = import.meta.url, env = process.env) {
    const override = env['DNS_SHAPER_PROBE_SCRIPT'];
    if (override)
        return override;
    if (moduleUrl.endsWith('.js'))
        return fileURLToPath(new URL('./probe.js', moduleUrl));
    return join(repoRoot(moduleUrl), LAB_DIST, 'probe.js');
}
/** Runs `node probe.js ...` inside `ns`, bounded in time, and parses its JSON. */
export async function runProbeIn(ns, opts, run = {}) {
    const script = run.script ?? resolveProbeScript();
    if (!existsSync(script)) {
        throw new LabError(`probe script ${script} not found`, { hint: 'build it first: npx tsc -p tsconfig.build.json' });
    }
    const argv = [run.node ?? process.execPath, script, ...probeArgv(opts)];
    const r = await ns.exec(argv, { timeoutMs: probeTimeBoundMs(opts) });
    if (r.code !== 0) {
        throw new LabError(`probe in ${ns.name} failed (exit ${r.code}${r.timedOut ? ', timed out' : ''}): ${r.stderr.trim()}`, {
            argv: r.argv,
            stderr: r.stderr,
            exitCode: r.code,
            hint: 'check the probe flags and that the lab is up',
        });
    }
    try {
        return JSON.parse(r.stdout);
    }
    catch {
        throw new LabError(`probe in ${ns.name} printed no JSON: ${r.stdout.slice(0, 200)}`, {
            argv: r.argv,
            stderr: r.stderr,
        });
    }
}
//# sourceMappingURL=probe-runner.js.map