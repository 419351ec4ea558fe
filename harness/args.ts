// Option parsing for the labs and the benchmark: node:util parseArgs (strict, no positionals) with one
// message per bad flag that names it, and the bounded number checks they share. Pure: no exit, no output.
import { parseArgs } from 'node:util'

export interface FlagDef {
  type: 'string' | 'boolean'
  short?: string
  multiple?: boolean
  /** What the value is, for "--kernel needs a bzImage path" when it is missing or looks like a flag. */
  needs?: string
}
export type Flags = Record<string, FlagDef>

/** A flag that takes a value; `needs` says what it is ("--out needs a directory"). */
export const valued = (needs: string): FlagDef => ({ type: 'string', needs })
/** A flag without a value. */
export const toggle: FlagDef = { type: 'boolean' }
export type FlagValues = Record<string, string | boolean | string[] | undefined>

/** Flag values, or a message naming the flag: "unknown flag --x", "--kernel needs a bzImage path". */
export function parseFlags(argv: readonly string[], flags: Flags): { values: FlagValues } | { error: string } {
  const options = Object.fromEntries(
    Object.entries(flags).map(([name, d]) => [
      name,
      { type: d.type, ...(d.short !== undefined ? { short: d.short } : {}), ...(d.multiple ? { multiple: true } : {}) },
    ]),
  )
  try {
    const { values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false })
    return { values: values as FlagValues }
  } catch (e) {
    const code = (e as { code?: unknown }).code
    const message = e instanceof Error ? e.message : String(e)
    const flag = /'(-{1,2}[^' ]+)/.exec(message)?.[1] ?? ''
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return { error: `unknown flag ${flag}` }
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL')
      return { error: `unexpected argument ${/'([^']*)'/.exec(message)?.[1] ?? ''}` }
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const def = flags[flag.replace(/^-+/, '')]
      if (def?.type === 'boolean') return { error: `${flag} takes no value` }
      return { error: `${flag} needs ${def?.needs ?? 'a value'}` }
    }
    return { error: message }
  }
}

/** A whole number min..max from a flag's text; a string is the message naming the flag. */
export function intFlag(flag: string, v: string | undefined, min: number, max: number): number | string {
  const n = Number(v)
  return v !== undefined && /^[0-9]+$/.test(v) && n >= min && n <= max ? n : `${flag} needs an integer ${min}..${max}`
}

/** `needs` text of an integer flag, matching intFlag's message. */
export const intNeeds = (min: number, max: number): string => `an integer ${min}..${max}`

/** A string flag's value (the last one when repeated), undefined when absent. */
export function str(values: FlagValues, name: string): string | undefined {
  const v = values[name]
  return typeof v === 'string' ? v : Array.isArray(v) ? v.at(-1) : undefined
}
