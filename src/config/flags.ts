// Command-line flags: argv to --flag values and positionals, rejecting unknown flags. Knows no flag's meaning.
import { ConfigError } from '../errors.js'

export interface ParsedArgs {
  values: Map<string, string | boolean>
  positionals: string[]
}

/** Splits argv into --flag values (`--flag v`, `--flag=v`, boolean `--flag`, `--no-flag`) and positionals. */
export function parseFlags(
  argv: readonly string[],
  known: readonly string[],
  booleans: ReadonlySet<string>,
): ParsedArgs {
  const values = new Map<string, string | boolean>()
  const positionals: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string
    if (!a.startsWith('--')) {
      positionals.push(a)
      continue
    }
    let [name, value] = a.slice(2).split(/=(.*)/s, 2) as [string, string | undefined]
    let negated = false
    if (!known.includes(name) && name.startsWith('no-') && booleans.has(name.slice(3))) {
      name = name.slice(3)
      negated = true
    }
    if (!known.includes(name)) {
      throw new ConfigError(`--${name}`, 'unknown flag', known.map(k => `--${k}`).join(' '))
    }
    if (negated) {
      values.set(name, false)
      continue
    }
    if (value === undefined) {
      const next = argv[i + 1]
      if (
        booleans.has(name) &&
        (next === undefined || next.startsWith('--') || !/^(on|off|true|false|yes|no|1|0)$/i.test(next))
      ) {
        value = 'true'
      } else {
        if (next === undefined) throw new ConfigError(`--${name}`, 'needs a value')
        value = next
        i++
      }
    }
    values.set(name, value)
  }
  return { values, positionals }
}
