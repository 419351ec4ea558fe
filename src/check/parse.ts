// Pure parsers of what the `check` probes read: /proc/self/status, iptables-save of the raw table,
// `tc qdisc show`, a process's argv. No I/O.
import { CHAIN } from '../rules/plan.js'

export const CAP_NET_ADMIN = 12
export const CAP_NET_RAW = 13
/** Creating a network namespace (the throwaway one the NFQUEUE and xt_bpf probes use) needs it. */
export const CAP_SYS_ADMIN = 21

export interface ProcStatus {
  uid: number | undefined
  capEff: bigint
}

/** Effective uid and capability set from /proc/self/status. */
export function parseProcStatus(text: string): ProcStatus {
  const uid = /^Uid:\s+\d+\s+(\d+)/m.exec(text)
  const cap = /^CapEff:\s+([0-9a-f]+)/im.exec(text)
  return { uid: uid ? Number(uid[1]) : undefined, capEff: cap ? BigInt('0x' + cap[1]) : 0n }
}

export function hasCap(capEff: bigint, cap: number): boolean {
  return ((capEff >> BigInt(cap)) & 1n) === 1n
}

export interface RawRuleScan {
  /** Rules that exempt udp DNS from conntrack. */
  notrack: string[]
  /** Destinations the NOTRACK rules are limited to; empty when one of them covers any destination. */
  notrackDestinations: string[]
  /** Rules tagged with a `dns-shaper:` comment or in its chain, and the queues they send to. */
  shaper: { rule: string; queues: number[] }[]
}

function portListHas(spec: string, port: number): boolean {
  return spec.split(',').some(p => {
    const [lo, hi] = p.split(':').map(Number)
    return hi === undefined ? lo === port : lo! <= port && port <= hi
  })
}

/** Scans iptables-save output of the raw table (both backends print the same format). */
export function scanRawRules(text: string, dnsPort: number): RawRuleScan {
  const scan: RawRuleScan = { notrack: [], notrackDestinations: [], shaper: [] }
  let anyDest = false
  for (const raw of text.split('\n')) {
    const rule = raw.trim()
    if (!rule.startsWith('-A ')) continue
    // Tagged jumps, and every rule of dns-shaper's own chain: the NFQUEUE rules live there untagged.
    if (/--comment\s+"?dns-shaper:/.test(rule) || rule.startsWith(`-A ${CHAIN} `)) {
      const queues: number[] = []
      const num = /--queue-num\s+(\d+)/.exec(rule)
      if (num) queues.push(Number(num[1]))
      const bal = /--queue-balance\s+(\d+):(\d+)/.exec(rule)
      if (bal) for (let q = Number(bal[1]); q <= Number(bal[2]); q++) queues.push(q)
      if (!num && !bal && /-j NFQUEUE/.test(rule)) queues.push(0) // NFQUEUE without a number means queue 0
      scan.shaper.push({ rule, queues })
      continue
    }
    const untracks = /-j NOTRACK\b/.test(rule) || /-j CT\b.*--notrack\b/.test(rule)
    if (!untracks || /!\s+-p/.test(rule) || !/-p udp\b/.test(rule)) continue
    const dport = /(?<!!\s)--dports?\s+(\S+)/.exec(rule)
    if (dport && !portListHas(dport[1]!, dnsPort)) continue
    // A negated port, or only a source port (replies): not a rule that exempts every query.
    if (!dport && /--[ds]ports?\s/.test(rule)) continue
    scan.notrack.push(rule)
    const dest = /(?<!!\s)-d\s+(\S+)/.exec(rule)
    if (dest) scan.notrackDestinations.push(dest[1]!)
    else anyDest = true
  }
  if (anyDest) scan.notrackDestinations = []
  else scan.notrackDestinations = [...new Set(scan.notrackDestinations)]
  return scan
}

/** `tc qdisc show` lines as {kind, dev}. */
export function parseQdiscs(text: string): { kind: string; dev: string }[] {
  const out: { kind: string; dev: string }[] = []
  for (const line of text.split('\n')) {
    const m = /^qdisc\s+(\S+)\s+\S+\s+dev\s+(\S+)/.exec(line.trim())
    if (m) out.push({ kind: m[1]!, dev: m[2]! })
  }
  return out
}

/**
 * Whether a process's argv is the dns-shaper daemon: `[node] .../dns-shaper|cli.js run ...` (the
 * image runs /usr/local/bin/dns-shaper, a checkout node dist/cli.js).
 */
export function isDaemonArgv(argv: readonly string[]): boolean {
  const i = argv.findIndex(a => /(^|\/)(dns-shaper|cli\.js)$/.test(a))
  return i >= 0 && argv[i + 1] === 'run'
}

/** The --metrics-listen value in a daemon's argv (`--metrics-listen X` or `--metrics-listen=X`), if given. */
export function listenFromArgv(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--metrics-listen') return argv[i + 1]
    if (a.startsWith('--metrics-listen=')) return a.slice('--metrics-listen='.length)
  }
  return undefined
}
