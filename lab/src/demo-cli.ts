// `npm run demo`: the lab's entry for the demo (lab/src/demo.ts); parses its flags and exits. The product
// CLI no longer carries it, so nothing in dist/ imports the lab; this never ships.
import { pathToFileURL } from 'node:url'
import { parseFlags } from '../../src/config/flags.js'
import { ms } from '../../src/config/values.js'
import { ConfigError, errorMessage, exitCodeFor } from '../../src/errors.js'
import { runDemo, type DemoIo } from './demo.js'

/** The demo's flags, checked before anything is built (exit 2 on a bad one, as for every command). */
export function parseDemoFlags(argv: readonly string[]): { delayMs: number } {
  const { values, positionals } = parseFlags(argv, ['delay'], new Set())
  if (positionals.length > 0)
    throw new ConfigError(positionals[0] as string, 'unexpected argument', 'npm run demo -- [--delay MS]')
  const d = values.get('delay')
  return { delayMs: d === undefined ? 5 : ms(d, '--delay', 10000) }
}

/** Returns the exit code: 2 for a bad flag (nothing built), else the demo's own. */
export async function demoMain(argv: readonly string[], io: DemoIo, run = runDemo): Promise<number> {
  try {
    const { delayMs } = parseDemoFlags(argv)
    return await run(['--delay', String(delayMs)], io)
  } catch (e) {
    io.err(`demo: ${errorMessage(e)}\n`)
    return exitCodeFor(e)
  }
}

// Run as `node dist-lab/lab/src/demo-cli.js` (npm run demo); imported by its test, it only exports.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const io: DemoIo = { out: s => process.stdout.write(s), err: s => process.stderr.write(s) }
  void demoMain(process.argv.slice(2), io).then(code => process.exit(code))
}
