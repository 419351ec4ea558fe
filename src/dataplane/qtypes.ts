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
