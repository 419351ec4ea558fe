// QTYPE names <-> numbers. dns-packet's table is the source; it predates SVCB/HTTPS (RFC 9460),
// so those two are added here.
import { createRequire } from 'node:module'

const dnsTypes = createRequire(import.meta.url)('dns-packet/types') as {
  toType(name: string): number
  toString(type: number): string
}

const extra: Record<string, number> = { SVCB: 64, HTTPS: 65 }

/** Parses "AAAA", "aaaa", "28" or "TYPE28"; returns undefined when it is neither a known name nor 1..65535. */
export function parseQtype(text: string): number | undefined {
  const s = text.trim().toUpperCase()
  if (/^\d+$/.test(s) || /^TYPE\d+$/.test(s)) {
    const n = Number(s.replace('TYPE', ''))
    return n >= 1 && n <= 65535 ? n : undefined
  }
  if (s in extra) return extra[s]
  const n = dnsTypes.toType(s)
  return n > 0 ? n : undefined
}

export function qtypeName(type: number): string {
  for (const [name, n] of Object.entries(extra)) if (n === type) return name
  const s = dnsTypes.toString(type)
  return s.startsWith('UNKNOWN') ? `TYPE${type}` : s
}

/** QTYPE A: in pair mode it releases its AAAA, so it reaches the queue whenever anything is held. */
export const QTYPE_A = 1

/**
 * The one answer to "which query types reach the queue": every held type, in the order given, and in
 * pair mode A first (pair mode releases a held AAAA right behind its A; an A decided in the kernel
 * would leave the AAAA waiting for its full deadline). The rules, the kernel filter and their tests
 * all ask this function.
 */
export function queuedQtypes(held: Iterable<number>, pair: boolean): number[] {
  const types = [...new Set(held)]
  if (pair && types.length > 0 && !types.includes(QTYPE_A)) types.unshift(QTYPE_A)
  return types
}
