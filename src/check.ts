// `dns-shaper check`: can the shaper run here, and does this node need it? Probes are injected so the
// logic runs without root; the verdict is a pure function. Must not change the system (read-only probes).
import { execFile } from 'node:child_process'
import { createServer } from 'node:net'
import { release as osRelease } from 'node:os'
import type { Config } from './config-types.js'
import { clashHandling, parseKernelRelease, type ClashHandling, type KernelVersion } from './kernel.js'
import {
  clashResolveDelta,
  conntrackDelta,
  DEFAULT_PROC_ROOT,
  readConntrackStats,
  readNfqueueStats,
  type ConntrackStats,
  type NfqueueStats,
} from './procfs.js'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'

export type ItemStatus = 'ok' | 'warn' | 'fail' | 'info'
export interface CheckItem {
  id: string
  status: ItemStatus
  found: string
  /** What the operator should do; empty when nothing. */
  action: string
}

/** The rule manager's backend detection (it owns it): a backend with the reason it was chosen, or why none works. */
export type IptablesProbe = { backend: 'nft' | 'legacy'; reason: string } | Error
/** Whether NFQUEUE and xt_bpf rules can actually be used (the lead's throwaway-netns probe). */
export interface FeatureProbe {
  nfqueue: true | Error
  xtBpf: true | Error
}

export interface CheckProbes {
  /** Text of /proc/self/status (Uid, CapEff). */
  selfStatus(): Promise<string>
  /** `uname -r`. */
  kernelRelease(): Promise<string>
  iptables(): Promise<IptablesProbe>
  features(): Promise<FeatureProbe>
  nfqueueStats(): Promise<NfqueueStats[]>
  conntrackStats(): Promise<ConntrackStats | undefined>
  /** Try to listen on host:port and close again. */
  listen(hostPort: string): Promise<true | Error>
  /** `iptables-save -t raw` (and ip6tables) output. */
  rawRules(): Promise<string | Error>
  /** `tc qdisc show` output. */
  tcQdiscs(): Promise<string | Error>
  sleep(ms: number): Promise<void>
}

export type CheckConfig = Pick<Config, 'queue' | 'queues' | 'metricsListen' | 'rules' | 'dnsPort' | 'ipv6'>

export const DEFAULT_SAMPLE_SECONDS = 10
export const CAP_NET_ADMIN = 12
export const CAP_NET_RAW = 13

// ---------- pure parsers ----------

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
  /** Rules tagged with a `dns-shaper:` comment, and the queues they send to. */
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
    if (/--comment\s+"?dns-shaper:/.test(rule)) {
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

// ---------- verdict (pure) ----------

export type Need = 'recommended' | 'optional' | 'not-needed' | 'unknown'

export interface VerdictInput {
  /** Release string as reported, for the text. */
  release: string
  /** undefined: the release could not be parsed. */
  kernel: ClashHandling | undefined
  conntrackLoaded: boolean
  /** undefined: DNS is tracked; otherwise the scope of the NOTRACK rules ('' = any destination). */
  dnsUntracked: string | undefined
  /** Per-second increases over the sample; undefined when not sampled. */
  rates: { insertFailed: number | undefined; clashResolve: number | undefined } | undefined
  /** Fail items, as "id: found". */
  blockers: string[]
}

export interface Verdict {
  need: Need
  ready: boolean
  blockers: string[]
  line: string
}

export function formatRate(perSecond: number): string {
  const r = perSecond >= 10 ? Math.round(perSecond) : Math.round(perSecond * 100) / 100
  return `${r}/s`
}

function decideNeed(v: VerdictInput): { need: Need; text: string } {
  if (v.dnsUntracked !== undefined) {
    const scope = v.dnsUntracked === '' ? '' : ` (to ${v.dnsUntracked})`
    return { need: 'not-needed', text: `not needed: DNS is not tracked${scope}` }
  }
  if (!v.conntrackLoaded)
    return { need: 'not-needed', text: 'not needed: conntrack is not loaded in this network namespace' }
  const k = v.kernel
  const failed = v.rates?.insertFailed
  // On 5.6–5.9 insert_failed also counts resolved clashes, so a rising value there is not proof of drops.
  if (failed !== undefined && failed > 0 && (k === undefined || k.insertFailedMeansDrop || k.level !== 'all')) {
    return {
      need: 'recommended',
      text: `shaping recommended: insert_failed rising (${formatRate(failed)}): the kernel is dropping clashing DNS packets`,
    }
  }
  if (k?.level === 'drop')
    return {
      need: 'recommended',
      text: `shaping recommended: kernel ${v.release} drops clashing UDP conntrack entries`,
    }
  if (k?.level === 'same-tuple') {
    return {
      need: 'recommended',
      text: `shaping recommended: kernel ${v.release} drops clashes DNATed to different endpoints`,
    }
  }
  if (k?.level === 'all') {
    const seen = v.rates === undefined ? undefined : (v.rates.clashResolve ?? v.rates.insertFailed)
    return {
      need: 'optional',
      text: `optional: the kernel resolves clashes (${seen === undefined ? 'not sampled' : `${formatRate(seen)} seen`})`,
    }
  }
  return {
    need: 'unknown',
    text: `unknown: cannot tell clash handling from kernel release "${v.release}"; ${failed === undefined ? 'sample' : 'keep watching'} insert_failed`,
  }
}

export function decideVerdict(v: VerdictInput): Verdict {
  const { need, text } = decideNeed(v)
  const ready = v.blockers.length === 0
  return { need, ready, blockers: v.blockers, line: ready ? text : `cannot run: ${v.blockers.join('; ')} — ${text}` }
}

// ---------- the check ----------

export interface CheckReport {
  ready: boolean
  exitCode: 0 | 1
  verdict: Verdict
  items: CheckItem[]
  kernel: (Omit<KernelVersion, 'release'> & { release: string; clash: ClashHandling['level'] }) | { release: string }
  conntrack:
    | { loaded: false }
    | {
        loaded: true
        entries: number | undefined
        totals: Record<string, number>
        sampleSeconds: number
        ratesPerSecond: Record<string, number> | undefined
      }
}

async function settle<T>(p: () => Promise<T>): Promise<T | Error> {
  try {
    return await p()
  } catch (e: unknown) {
    return e instanceof Error ? e : new Error(String(e))
  }
}

function range(first: number, count: number): number[] {
  return Array.from({ length: Math.max(1, count) }, (_, i) => first + i)
}

function queuesText(qs: number[]): string {
  return qs.length === 1 ? `queue ${qs[0]}` : `queues ${qs[0]}-${qs[qs.length - 1]}`
}

async function sampleConntrack(probes: CheckProbes, seconds: number) {
  const first = await probes.conntrackStats()
  if (first === undefined || seconds <= 0) return { first, rates: undefined }
  await probes.sleep(seconds * 1000)
  const second = await probes.conntrackStats()
  if (second === undefined) return { first, rates: undefined }
  const rates: Record<string, number> = {}
  for (const col of second.columns) {
    if (col === 'entries') continue
    const d = conntrackDelta(first, second, col)
    if (d !== undefined) rates[col] = d / seconds
  }
  const clash = clashResolveDelta(first, second)
  if (clash !== undefined) rates.clash_resolve = clash / seconds
  return { first: second, rates }
}

export async function runCheck(
  config: CheckConfig,
  probes: CheckProbes,
  opts: { sampleSeconds?: number } = {},
): Promise<CheckReport> {
  const sampleSeconds = opts.sampleSeconds ?? DEFAULT_SAMPLE_SECONDS
  // The conntrack sample sleeps; run every other probe meanwhile.
  const [status, release, ipt, feat, bound, listen, raw, tc, ct] = await Promise.all([
    settle(() => probes.selfStatus()),
    settle(() => probes.kernelRelease()),
    settle(() => probes.iptables()),
    settle(() => probes.features()),
    settle(() => probes.nfqueueStats()),
    config.metricsListen === '' ? Promise.resolve(undefined) : settle(() => probes.listen(config.metricsListen)),
    settle(() => probes.rawRules()),
    settle(() => probes.tcQdiscs()),
    settle(() => sampleConntrack(probes, sampleSeconds)),
  ])
  const items: CheckItem[] = []
  const add = (id: string, st: ItemStatus, found: string, action = '') => items.push({ id, status: st, found, action })

  // privileges
  const backend = ipt instanceof Error ? undefined : ipt.backend
  if (status instanceof Error) {
    add('privileges', 'warn', `cannot read /proc/self/status: ${status.message}`, 'make sure /proc is mounted')
  } else {
    const ps = parseProcStatus(status)
    const admin = hasCap(ps.capEff, CAP_NET_ADMIN)
    const rawCap = hasCap(ps.capEff, CAP_NET_RAW)
    const found = `uid ${ps.uid ?? '?'}, ${admin ? '' : 'no '}CAP_NET_ADMIN, ${rawCap ? '' : 'no '}CAP_NET_RAW`
    if (!admin) {
      add(
        'privileges',
        'fail',
        found,
        'run as root or grant CAP_NET_ADMIN (Kubernetes: securityContext.capabilities.add: [NET_ADMIN])',
      )
    } else if (!rawCap) {
      // iptables-legacy talks to the kernel through a raw socket; nft uses netlink and needs only NET_ADMIN.
      const needed = config.rules === 'manage' && backend === 'legacy'
      add(
        'privileges',
        needed ? 'fail' : 'warn',
        found,
        'grant CAP_NET_RAW: iptables-legacy needs it to read and write rules',
      )
    } else {
      add('privileges', 'ok', found)
    }
  }

  // kernel
  const version = release instanceof Error ? undefined : parseKernelRelease(release)
  const releaseText = release instanceof Error ? 'unknown' : release.trim()
  const handling = version === undefined ? undefined : clashHandling(version)
  if (handling === undefined) {
    add(
      'kernel',
      'warn',
      release instanceof Error
        ? `cannot read the kernel release: ${release.message}`
        : `unrecognised kernel release "${releaseText}"`,
      'judge by the conntrack counters below',
    )
  } else {
    add('kernel', 'info', handling.summary)
  }

  // iptables
  if (ipt instanceof Error) {
    if (config.rules === 'none')
      add(
        'iptables',
        'info',
        `no usable iptables (${ipt.message}); --rules none: rules are yours to install`,
        'install them with `dns-shaper rules print`',
      )
    else
      add(
        'iptables',
        'fail',
        ipt.message,
        'install iptables (nft or legacy backend), or use --rules none and install `dns-shaper rules print` yourself',
      )
  } else {
    add('iptables', 'ok', `${ipt.backend} backend (${ipt.reason})`)
  }

  // NFQUEUE / xt_bpf
  if (feat instanceof Error) {
    add(
      'nfqueue',
      'fail',
      `cannot probe NFQUEUE: ${feat.message}`,
      'check that nfnetlink_queue and xt_NFQUEUE can be loaded (modprobe)',
    )
  } else {
    if (feat.nfqueue === true) add('nfqueue', 'ok', 'NFQUEUE rules and queue binding work')
    else
      add(
        'nfqueue',
        'fail',
        `NFQUEUE unusable: ${feat.nfqueue.message}`,
        'modprobe nfnetlink_queue xt_NFQUEUE, or use a kernel built with them',
      )
    if (feat.xtBpf === true) add('xt_bpf', 'ok', 'xt_bpf match works')
    else
      add(
        'xt_bpf',
        'warn',
        `xt_bpf unusable: ${feat.xtBpf.message}`,
        'modprobe xt_bpf; without it the kernel cannot pre-filter, so every DNS packet goes to user space',
      )
  }

  // queue free; also tells whether tagged rules are live
  const wanted = range(config.queue, config.queues)
  const boundHere = bound instanceof Error ? [] : bound.filter(q => wanted.includes(q.queue))
  const scan = raw instanceof Error ? undefined : scanRawRules(raw, config.dnsPort)
  const shaperQueues = new Set(scan?.shaper.flatMap(r => r.queues) ?? [])
  if (bound instanceof Error) {
    add(
      'queue',
      'warn',
      `cannot read the NFQUEUE table: ${bound.message}`,
      'run as root so /proc/net/netfilter/nfnetlink_queue is readable',
    )
  } else if (boundHere.length > 0) {
    const who = boundHere.map(q => `queue ${q.queue} by portid ${q.portid}`).join(', ')
    const ours = boundHere.some(q => shaperQueues.has(q.queue))
      ? ' (a dns-shaper seems to run already: its rules are live)'
      : ''
    add(
      'queue',
      'fail',
      `bound: ${who}${ours}`,
      'stop the other process (a portid is usually its PID) or choose another --queue',
    )
  } else {
    add('queue', 'ok', `${queuesText(wanted)} free`)
  }

  // metrics address
  if (listen === undefined) add('metrics', 'info', 'metrics listener disabled (--metrics-listen "")')
  else if (listen === true) add('metrics', 'ok', `${config.metricsListen} free`)
  else
    add(
      'metrics',
      'fail',
      `cannot listen on ${config.metricsListen}: ${listen.message}`,
      'choose another --metrics-listen or stop the process using it',
    )

  // conntrack counters
  let rates: VerdictInput['rates']
  let ctReport: CheckReport['conntrack'] = { loaded: false }
  let conntrackLoaded = true
  if (ct instanceof Error) {
    add(
      'conntrack',
      'warn',
      `cannot read conntrack statistics: ${ct.message}`,
      'run as root; the verdict then relies on the kernel version only',
    )
  } else if (ct.first === undefined) {
    conntrackLoaded = false
    add('conntrack', 'info', 'nf_conntrack is not loaded in this network namespace (no /proc/net/stat/nf_conntrack)')
  } else {
    const s = ct.first
    ctReport = {
      loaded: true,
      entries: s.entries,
      totals: s.totals,
      sampleSeconds: ct.rates ? sampleSeconds : 0,
      ratesPerSecond: ct.rates,
    }
    const clashCol = s.clashResolve === undefined ? 'no clash counter' : `clash_resolve ${s.clashResolve}`
    if (ct.rates === undefined) {
      add(
        'conntrack',
        'info',
        `entries ${s.entries ?? '?'}, insert_failed ${s.insertFailed ?? '?'}, drop ${s.drop ?? '?'}, ${clashCol} (totals of this netns; not sampled)`,
        'use --sample SECONDS to see rates',
      )
    } else {
      rates = { insertFailed: ct.rates.insert_failed, clashResolve: ct.rates.clash_resolve }
      const r = (n: number | undefined) => (n === undefined ? 'n/a' : formatRate(n))
      const found = `insert_failed ${r(ct.rates.insert_failed)}, drop ${r(ct.rates.drop)}, clash_resolve ${r(ct.rates.clash_resolve)} over ${sampleSeconds} s (this netns), entries ${s.entries ?? '?'}`
      const dropping =
        (ct.rates.insert_failed ?? 0) > 0 &&
        (handling === undefined || handling.insertFailedMeansDrop || handling.level !== 'all')
      add(
        'conntrack',
        dropping ? 'warn' : 'ok',
        found,
        dropping ? 'clashing DNS packets are being dropped (5 s resolver timeouts): shaping removes the race' : '',
      )
    }
  }

  // DNS untracked?
  let dnsUntracked: string | undefined
  if (scan === undefined) {
    add(
      'dns-tracking',
      'info',
      `cannot read the raw table: ${(raw as Error).message}`,
      'check by hand: iptables-save -t raw | grep -i notrack',
    )
  } else if (scan.notrack.length > 0) {
    dnsUntracked = scan.notrackDestinations.join(', ')
    add(
      'dns-tracking',
      'info',
      `udp/${config.dnsPort} exempt from conntrack${dnsUntracked ? ` to ${dnsUntracked}` : ''} (${scan.notrack.length} NOTRACK rule${scan.notrack.length > 1 ? 's' : ''})`,
      'untracked DNS cannot race; shaping is only needed for traffic the NOTRACK rules miss',
    )
  } else {
    add('dns-tracking', 'ok', `udp/${config.dnsPort} is tracked by conntrack`)
  }

  // existing shaper rules
  if (scan !== undefined) {
    const n = scan.shaper.length
    const qs = [...shaperQueues].sort((a, b) => a - b)
    const live = !(bound instanceof Error) && bound.some(q => shaperQueues.has(q.queue))
    if (n === 0) add('shaper-rules', 'ok', 'no dns-shaper rules installed')
    else if (live)
      add(
        'shaper-rules',
        'info',
        `${n} dns-shaper rule${n > 1 ? 's' : ''} for ${queuesText(qs)}, bound: a dns-shaper is running`,
      )
    else {
      add(
        'shaper-rules',
        'warn',
        `${n} stale dns-shaper rule${n > 1 ? 's' : ''} for ${queuesText(qs)} with nothing bound: DNS passes unshaped (--queue-bypass)`,
        config.rules === 'manage'
          ? 'the daemon replaces them at start; or `dns-shaper rules remove`'
          : 'remove them with `dns-shaper rules remove`',
      )
    }
  }

  // tc
  if (tc instanceof Error) {
    add('tc', 'info', `cannot list qdiscs: ${tc.message}`)
  } else {
    const qd = parseQdiscs(tc)
    const netem = qd.filter(q => q.kind === 'netem')
    const prio = qd.filter(q => q.kind === 'prio')
    if (netem.length > 0) {
      add(
        'tc',
        'warn',
        `netem on ${[...new Set(netem.map(q => q.dev))].join(', ')}${prio.length ? `, prio on ${[...new Set(prio.map(q => q.dev))].join(', ')}` : ''}`,
        'a tc delay (the tc workaround for the race) may already shape DNS; running both adds up the delays: keep one',
      )
    } else if (prio.length > 0) {
      add('tc', 'info', `prio qdisc on ${[...new Set(prio.map(q => q.dev))].join(', ')} (no netem)`)
    } else {
      add('tc', 'ok', 'no netem or prio qdisc')
    }
  }

  const blockers = items.filter(i => i.status === 'fail').map(i => `${i.id}: ${i.found}`)
  const verdict = decideVerdict({
    release: releaseText,
    kernel: handling,
    conntrackLoaded,
    dnsUntracked,
    rates,
    blockers,
  })
  return {
    ready: verdict.ready,
    exitCode: verdict.ready ? 0 : 1,
    verdict,
    items,
    kernel:
      version === undefined || handling === undefined
        ? { release: releaseText }
        : { ...version, clash: handling.level },
    conntrack: ctReport,
  }
}

// ---------- rendering ----------

export function renderText(report: CheckReport): string {
  const head = { status: 'STATUS', id: 'CHECK', found: 'FOUND', action: 'ACTION' }
  const rows = [head, ...report.items.map(i => ({ status: i.status, id: i.id, found: i.found, action: i.action }))]
  const ws = Math.max(...rows.map(r => r.status.length))
  const wi = Math.max(...rows.map(r => r.id.length))
  // Only rows with an action need their FOUND padded: a long finding without one must not push ACTION away.
  const wf = Math.max(...rows.filter(r => r.action).map(r => r.found.length))
  const lines = rows.map(r =>
    `${r.status.padEnd(ws)}  ${r.id.padEnd(wi)}  ${r.action ? `${r.found.padEnd(wf)}  ${r.action}` : r.found}`.trimEnd(),
  )
  return `${lines.join('\n')}\n\nverdict: ${report.verdict.line}\n`
}

export function renderJson(report: CheckReport): string {
  return JSON.stringify(report, null, 2) + '\n'
}

// ---------- real probes ----------

export type Runner = (argv: string[]) => Promise<string>

const defaultRunner: Runner = argv =>
  new Promise((resolve, reject) => {
    execFile(argv[0]!, argv.slice(1), { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${argv.join(' ')}: ${(stderr || err.message).trim()}`))
      else resolve(stdout)
    })
  })

/** host:port with IPv6 in brackets ("[::1]:9400"). */
export function splitHostPort(hostPort: string): { host: string; port: number } {
  const i = hostPort.lastIndexOf(':')
  const host = hostPort.slice(0, i).replace(/^\[(.*)\]$/, '$1')
  return { host, port: Number(hostPort.slice(i + 1)) }
}

export function listenProbe(hostPort: string): Promise<true | Error> {
  const { host, port } = splitHostPort(hostPort)
  return new Promise(resolve => {
    const srv = createServer()
    srv.once('error', e => resolve(e))
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve(true)))
  })
}

export interface SystemProbeOptions {
  procRoot?: string
  ipv6?: boolean
  iptables: () => Promise<IptablesProbe>
  features: () => Promise<FeatureProbe>
  /** Defaults to `iptables-save -t raw` (+ `ip6tables-save -t raw`); pass the backend-specific one if known. */
  rawRules?: () => Promise<string>
  run?: Runner
}

export function systemProbes(o: SystemProbeOptions): CheckProbes {
  const root = o.procRoot ?? DEFAULT_PROC_ROOT
  const run = o.run ?? defaultRunner
  const errOr = async (f: () => Promise<string>) => {
    try {
      return await f()
    } catch (e: unknown) {
      return e instanceof Error ? e : new Error(String(e))
    }
  }
  return {
    selfStatus: () => readFile(join(root, 'self/status'), 'utf8'),
    kernelRelease: async () => osRelease(),
    iptables: o.iptables,
    features: o.features,
    nfqueueStats: () => readNfqueueStats(root),
    conntrackStats: () => readConntrackStats(root),
    listen: listenProbe,
    rawRules: () =>
      errOr(
        o.rawRules ??
          (async () => {
            const v4 = await run(['iptables-save', '-t', 'raw'])
            return o.ipv6 === false ? v4 : v4 + (await run(['ip6tables-save', '-t', 'raw']).catch(() => ''))
          }),
      ),
    tcQdiscs: () => errOr(() => run(['tc', 'qdisc', 'show'])),
    sleep: ms => new Promise(r => setTimeout(r, ms)),
  }
}
