// Scalar flag values: integers, milliseconds, on/off, one of a set, comma lists. Each throws a
// ConfigError naming the flag and what it accepts. Pure.
import { ConfigError } from '../errors.js'

/** A flag value as it arrives: text from argv, env or the file, or a JSON boolean from the file. */
export type RawValue = string | boolean

export function int(raw: RawValue, flag: string, lo: number, hi: number): number {
  const s = String(raw).trim()
  if (!/^\d+$/.test(s) || Number(s) < lo || Number(s) > hi) {
    throw new ConfigError(flag, `"${s}" is not a valid value`, `an integer ${lo}..${hi}`)
  }
  return Number(s)
}

export function ms(raw: RawValue, flag: string, hi: number): number {
  const s = String(raw).trim()
  if (!/^\d+(\.\d+)?$/.test(s) || Number(s) > hi) {
    throw new ConfigError(flag, `"${s}" is not a valid value`, `milliseconds 0..${hi}, fractions allowed (e.g. 2.5)`)
  }
  return Number(s)
}

export function bool(raw: RawValue, flag: string): boolean {
  if (typeof raw === 'boolean') return raw
  const s = raw.trim().toLowerCase()
  if (['1', 'true', 'on', 'yes'].includes(s)) return true
  if (['0', 'false', 'off', 'no'].includes(s)) return false
  throw new ConfigError(flag, `"${raw}" is not a valid value`, 'on|off')
}

export function oneOf<T extends string>(raw: RawValue, flag: string, values: readonly T[]): T {
  const s = String(raw).trim().toLowerCase()
  if (!(values as readonly string[]).includes(s)) {
    throw new ConfigError(flag, `"${String(raw)}" is not a valid value`, values.join('|'))
  }
  return s as T
}

export function list(raw: RawValue): string[] {
  return String(raw)
    .split(',')
    .map(s => s.trim())
    .filter(s => s.length > 0)
}
