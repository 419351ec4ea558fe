// Scalar flag values: integers, milliseconds, on/off, one of a set, comma lists. Each throws a
// ConfigError naming the flag and what it accepts. Pure.
import { ConfigError } from '../errors.js'
import type { Hook, Hooks } from './types.js'

/** A flag value as it arrives: text from argv, env or the file, or a JSON boolean from the file. */
export type RawValue = string | boolean

export function int(raw: RawValue, flag: string, lo: number, hi: number): number {
  const s = String(raw).trim()
  if (!/^\d+$/.test(s) || Number(s) < lo || Number(s) > hi) {
    throw new ConfigError(flag, `"${s}" is not a valid value`, `an integer ${lo}..${hi}`)
  }
  return Number(s)
}

declare const checked: unique symbol
/** A queue number 0..65535 (--queue); only queueNumber makes one. */
export type QueueNumber = number & { readonly [checked]: 'QueueNumber' }
/** A count of queues 1..64 (--queues); only queueCount makes one. */
export type QueueCount = number & { readonly [checked]: 'QueueCount' }
/** A UDP port 1..65535 (--dns-port); only port makes one. */
export type Port = number & { readonly [checked]: 'Port' }

export const MAX_QUEUE = 65535
export const MAX_QUEUES = 64

export function queueNumber(raw: RawValue, flag: string): QueueNumber {
  return int(raw, flag, 0, MAX_QUEUE) as QueueNumber
}

export function queueCount(raw: RawValue, flag: string): QueueCount {
  return int(raw, flag, 1, MAX_QUEUES) as QueueCount
}

export function port(raw: RawValue, flag: string): Port {
  return int(raw, flag, 1, 65535) as Port
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

/** --hooks: prerouting and/or output, at least one, each once. */
export function hookList(raw: RawValue, flag: string): Hooks {
  const hooks = list(raw).map(h => oneOf<Hook>(h, flag, ['prerouting', 'output']))
  if (hooks.length === 0)
    throw new ConfigError(flag, 'no hook given (use --rules none to install no rules)', 'prerouting,output')
  return [...new Set(hooks)] as unknown as Hooks
}
