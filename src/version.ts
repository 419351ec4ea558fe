// The running build's version (package.json, which sits one level above src/ and dist/ alike) and the
// Node.js runtime, for dns_shaper_build_info and the start log line. Reads one file once; no logic.
import { createRequire } from 'node:module'

export const VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version
/** Node.js version without the leading "v", as node_exporter-style build_info labels carry it. */
export const NODE_VERSION: string = process.versions.node
