// Pure parts of the namespace wrapper: lab ids and namespace names, the argv of `ip netns exec` and sysctl,
// resolv.conf text, `ip netns list` parsing. No I/O here (netns.ts runs them).
import { randomBytes } from 'node:crypto'
import { LabError } from './lab-error.js'
import { netnsWrap } from './product.js'

/** Every namespace this library creates starts with this, so leftovers are easy to find. */
export const LAB_PREFIX = 'dnss-'
/** Linux IFNAMSIZ - 1: names are kept within it so they can double as interface names. */
export const MAX_NAME_LENGTH = 15

/** Short random token of [0-9a-z]. */
export function randomToken(length: number, rand: (n: number) => Buffer = randomBytes): string {
  const alphabet = '0123456789abcdefghijklmnopqrstuvwxyz'
  const bytes = rand(length)
  let s = ''
  for (let i = 0; i < length; i++) s += alphabet[(bytes[i] ?? 0) % alphabet.length]
  return s
}

/**
 * A lab id unique per run: `dnss-<pid base36>-<3 random>`, at most 14 chars, so one role
 * character can be appended and the namespace name still fits an interface name.
 */
export function makeLabId(opts: { pid?: number; prefix?: string; random?: string } = {}): string {
  const prefix = opts.prefix ?? LAB_PREFIX
  const pid = (opts.pid ?? process.pid).toString(36)
  const id = `${prefix}${pid}-${opts.random ?? randomToken(3)}`
  if (id.length > MAX_NAME_LENGTH - 1) {
    throw new LabError(`lab id "${id}" is longer than ${MAX_NAME_LENGTH - 1} chars`, { hint: 'use a shorter prefix' })
  }
  return id
}

/** Namespace names become file names under /run/netns and /etc/netns: refuse anything path-like. */
export function validateName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name) || name.length > MAX_NAME_LENGTH) {
    throw new LabError(`invalid namespace name "${name}"`, {
      hint: `use [A-Za-z0-9_.-], at most ${MAX_NAME_LENGTH} chars, not starting with a dot or dash`,
    })
  }
}

/** argv that runs `argv` inside namespace `ns`. */
export function nsExecArgv(ns: string, argv: readonly string[]): string[] {
  return [...netnsWrap(ns), ...argv]
}

/** argv that sets one sysctl inside namespace `ns` (never in the root namespace). */
export function sysctlArgv(ns: string, key: string, value: string | number): string[] {
  if (!/^[a-z0-9_./-]+$/i.test(key)) throw new LabError(`invalid sysctl key "${key}"`)
  return nsExecArgv(ns, ['sysctl', '-q', '-w', `${key}=${value}`])
}

/** resolv.conf text for a namespace. */
export function resolvConfText(
  nameservers: readonly string[],
  opts: { search?: readonly string[]; options?: readonly string[] } = {},
): string {
  const lines: string[] = ['# written by dns-shaper lab; removed with its namespace']
  if (opts.search && opts.search.length > 0) lines.push(`search ${opts.search.join(' ')}`)
  for (const ns of nameservers) lines.push(`nameserver ${ns}`)
  if (opts.options && opts.options.length > 0) lines.push(`options ${opts.options.join(' ')}`)
  return lines.join('\n') + '\n'
}

/** Namespace names from `ip netns list` output ("name (id: 3)" lines). */
export function parseNetnsList(stdout: string): string[] {
  return stdout
    .split('\n')
    .map(l => l.trim().split(/\s+/)[0] ?? '')
    .filter(n => n.length > 0)
}
