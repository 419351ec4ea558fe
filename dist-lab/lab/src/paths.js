// Where the lab finds the repository, the built product and its own build, whether it runs from source
// (tap loads lab/src/*.ts) or compiled (dist-lab/lab/src/*.js). Paths only: it must not build anything.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
/** The checkout: the nearest folder above `moduleUrl` that holds package.json (dist-lab/ holds none). */
export function repoRoot(moduleUrl = import.meta.url) {
    let dir = dirname(fileURLToPath(moduleUrl));
    for (;;) {
        if (existsSync(join(dir, 'package.json')))
            return dir;
        const up = dirname(dir);
        if (up === dir)
            throw new Error(`no package.json above ${fileURLToPath(moduleUrl)}`);
        dir = up;
    }
}
/** Output folder of `tsc -p lab/tsconfig.json`; it mirrors the source tree (lab/src, and the src/ files the lab imports). */
export const LAB_DIST = 'dist-lab/lab/src';
/** The built product CLI the lab runs in its namespaces. */
export const CLI_PATH = join(repoRoot(), 'dist/cli.js');
//# sourceMappingURL=paths.js.map