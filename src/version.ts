// The running build's version (package.json, which sits one level above src/ and dist/ alike), the
// commit it was built from (dist/build-info.json beside that package.json, written at build time by
// scripts/build-info.mjs) and the Node.js runtime, for `version`, dns_shaper_build_info and the start
// log line. Reads two files once; never asks git at run time (an image has no .git).
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

const require = createRequire(import.meta.url)
const PACKAGE_JSON = require.resolve('../package.json')

export const VERSION: string = (require(PACKAGE_JSON) as { version: string }).version

/** What a build records, relative to the package root (scripts/build-info.mjs writes it). */
export const BUILD_INFO_FILE = 'dist/build-info.json'
/** Shown when the build recorded no commit (compiled by hand, without scripts/build-info.mjs). */
export const UNKNOWN_COMMIT = 'unknown'

/** The commit in a build-info.json text, or UNKNOWN_COMMIT if the text is not one. */
export function commitFrom(text: string | undefined): string {
  if (text === undefined) return UNKNOWN_COMMIT
  try {
    const c = (JSON.parse(text) as { commit?: unknown }).commit
    return typeof c === 'string' && /^[0-9a-f]{7,64}(-dirty)?$/.test(c) ? c : UNKNOWN_COMMIT
  } catch {
    return UNKNOWN_COMMIT
  }
}

function readBuildInfo(): string | undefined {
  try {
    return readFileSync(join(dirname(PACKAGE_JSON), BUILD_INFO_FILE), 'utf8')
  } catch {
    return undefined
  }
}

/** The git commit this build was made from: hex, "-dirty" if the tree had changes, or "unknown". */
export const COMMIT: string = commitFrom(readBuildInfo())
/** Node.js version without the leading "v", as node_exporter-style build_info labels carry it. */
export const NODE_VERSION: string = process.versions.node

/** One line for `dns-shaper version` and `-v`: version, commit, runtime. */
export const versionLine = (): string => `dns-shaper ${VERSION} (commit ${COMMIT}, node ${NODE_VERSION})`
