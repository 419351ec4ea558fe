// The one CIDR parser: `addr` or `addr/prefix`, IPv4 or IPv6, to the canonical text iptables-save prints.
// Pure; config load calls it once per --dns-ip value, so a bad one exits 2 before anything is bound.
// The only maker of a CidrText: the rules take only those.
import { isIP } from 'node:net'
import { ConfigError } from '../errors.js'
import type { Family } from './types.js'

export const CIDR_ACCEPTED =
  'IPv4 or IPv6 addresses with an optional /prefix, e.g. 198.51.100.10, 203.0.113.0/24, 2001:db8::53/128'

declare const checked: unique symbol
/** A CIDR in canonical text that parseCidr produced (no other code can build one). */
export type CidrText = string & { readonly [checked]: 'CidrText' }

export interface Cidr {
  family: Family
  /** Canonical form as iptables-save prints it: host bits cleared, explicit prefix, RFC 5952-ish IPv6. */
  text: CidrText
}

/** The family of a parsed CIDR's text (IPv6 text always has a colon, IPv4 never). */
export function cidrFamily(cidr: CidrText): Family {
  return cidr.includes(':') ? 'ipv6' : 'ipv4'
}

/** Parse `addr` or `addr/prefix`; undefined when it is not one. Host bits are cleared as iptables does. */
export function parseCidr(input: string): Cidr | undefined {
  const parts = input.split('/')
  if (parts.length > 2) return undefined
  const [addr = '', prefixText] = parts
  const version = addr.includes('%') ? 0 : isIP(addr)
  if (version === 0) return undefined
  const max = version === 4 ? 32 : 128
  let prefix = max
  if (prefixText !== undefined) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) return undefined
    prefix = Number(prefixText)
    if (prefix > max) return undefined
  }
  if (version === 4) {
    const bytes = addr.split('.').map(Number)
    return { family: 'ipv4', text: `${maskBytes(bytes, prefix).join('.')}/${prefix}` as CidrText }
  }
  const bytes = ipv6Bytes(addr)
  if (bytes === undefined) return undefined
  return { family: 'ipv6', text: `${formatIpv6(maskBytes(bytes, prefix))}/${prefix}` as CidrText }
}

function maskBytes(bytes: number[], prefix: number): number[] {
  return bytes.map((b, i) => {
    const bits = Math.max(0, Math.min(8, prefix - i * 8))
    return b & ((0xff << (8 - bits)) & 0xff)
  })
}

function ipv6Bytes(addr: string): number[] | undefined {
  let text = addr
  const tail: number[] = []
  const lastColon = text.lastIndexOf(':')
  if (text.slice(lastColon + 1).includes('.')) {
    // Embedded IPv4 (::ffff:192.0.2.1).
    for (const p of text.slice(lastColon + 1).split('.')) tail.push(Number(p))
    text = text.slice(0, lastColon + 1) + '0:0'
  }
  const halves = text.split('::')
  if (halves.length > 2) return undefined
  const groups = (s: string): string[] => (s === '' ? [] : s.split(':'))
  const head = groups(halves[0] ?? '')
  const rest = halves.length === 2 ? groups(halves[1] ?? '') : []
  const fill = 8 - head.length - rest.length
  if (halves.length === 1 ? fill !== 0 : fill < 0) return undefined
  const words = [...head, ...Array<string>(halves.length === 2 ? fill : 0).fill('0'), ...rest].map(g => parseInt(g, 16))
  const bytes: number[] = []
  for (const w of words) bytes.push(w >> 8, w & 0xff)
  if (tail.length === 4) bytes.splice(12, 4, ...tail)
  return bytes.length === 16 ? bytes : undefined
}

/** IPv6 text as glibc inet_ntop prints it (what ip6tables-save shows). */
export function formatIpv6(bytes: number[]): string {
  const words: number[] = []
  for (let i = 0; i < 16; i += 2) words.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0))
  let bestBase = -1
  let bestLen = 0
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && words[j] === 0) j++
    if (j - i > bestLen) {
      bestBase = i
      bestLen = j - i
    }
    i = j
  }
  if (bestLen < 2) bestBase = -1
  if (bestBase === 0 && (bestLen === 6 || (bestLen === 5 && words[5] === 0xffff))) {
    const v4 = bytes.slice(12, 16).join('.')
    return bestLen === 6 ? `::${v4}` : `::ffff:${v4}`
  }
  let out = ''
  for (let i = 0; i < 8; i++) {
    if (i === bestBase) {
      out += '::'
      i += bestLen - 1
      continue
    }
    if (out !== '' && !out.endsWith(':')) out += ':'
    out += (words[i] ?? 0).toString(16)
  }
  return out
}

/** parseCidr for a flag value: the canonical text, or a ConfigError naming the flag. */
export function cidrFlag(text: string, flag: string): CidrText {
  const c = parseCidr(text)
  if (c === undefined) throw new ConfigError(flag, `${JSON.stringify(text)} is not an address or CIDR`, CIDR_ACCEPTED)
  return c.text
}
