// One function per `dns-shaper check` item: what a probe found becomes a row (status, finding, what
// to do). Pure: each reads only the probe results and the config it is given.
import type { Config } from '../config/types.js'
import type { ClashHandling } from '../kernel/release.js'
import type { NfqueueStats } from '../kernel/procfs.js'
import { CONNTRACK_SOURCES } from '../kernel/conntrack-stats.js'
import { CAP_NET_ADMIN, CAP_NET_RAW, hasCap, parseProcStatus, parseQdiscs, type RawRuleScan } from './parse.js'
import type { ConntrackSample, FeatureProbe, IptablesProbe } from './probes.js'
import { formatRate, type VerdictInput } from './verdict.js'
import { classifyDataplanes, type DataplaneInputs, type DataplaneReport } from './dataplane.js'

export type ItemStatus = 'ok' | 'warn' | 'fail' | 'info'
export interface CheckItem {
  id: string
  status: ItemStatus
  found: string
  /** What the operator should do; empty when nothing. */
  action: string
}

export type CheckConfig = Pick<Config, 'queue' | 'queues' | 'metricsListen' | 'rules' | 'dnsPort' | 'ipv6'> &
  Partial<Pick<Config, 'dnsIp' | 'dnsIpAuto'>>

export function item(id: string, status: ItemStatus, found: string, action = ''): CheckItem {
  return { id, status, found, action }
}

export function queueRange(first: number, count: number): number[] {
  return Array.from({ length: Math.max(1, count) }, (_, i) => first + i)
}

function queuesText(qs: number[]): string {
  return qs.length === 1 ? `queue ${qs[0]}` : `queues ${qs[0]}-${qs[qs.length - 1]}`
}

export function privilegesItem(status: string | Error, ipt: IptablesProbe, config: CheckConfig): CheckItem {
  const backend = ipt instanceof Error ? undefined : ipt.backend
  if (status instanceof Error) {
    return item('privileges', 'warn', `cannot read /proc/self/status: ${status.message}`, 'make sure /proc is mounted')
  }
  const ps = parseProcStatus(status)
  const admin = hasCap(ps.capEff, CAP_NET_ADMIN)
  const rawCap = hasCap(ps.capEff, CAP_NET_RAW)
  const found = `uid ${ps.uid ?? '?'}, ${admin ? '' : 'no '}CAP_NET_ADMIN, ${rawCap ? '' : 'no '}CAP_NET_RAW`
  if (!admin) {
    return item(
      'privileges',
      'fail',
      found,
      'run as root or grant CAP_NET_ADMIN (Kubernetes: securityContext.capabilities.add: [NET_ADMIN])',
    )
  }
  if (!rawCap) {
    // iptables-legacy talks to the kernel through a raw socket; nft uses netlink and needs only NET_ADMIN.
    const needed = config.rules === 'manage' && backend === 'legacy'
    return item(
      'privileges',
      needed ? 'fail' : 'warn',
      found,
      'grant CAP_NET_RAW: iptables-legacy needs it to read and write rules',
    )
  }
  return item('privileges', 'ok', found)
}

export function kernelItem(release: string | Error, handling: ClashHandling | undefined): CheckItem {
  if (handling !== undefined) return item('kernel', 'info', handling.summary)
  return item(
    'kernel',
    'warn',
    release instanceof Error
      ? `cannot read the kernel release: ${release.message}`
      : `unrecognised kernel release "${release.trim()}"`,
    'judge by the conntrack counters below',
  )
}

export function iptablesItem(ipt: IptablesProbe, config: CheckConfig): CheckItem {
  if (!(ipt instanceof Error)) return item('iptables', 'ok', `${ipt.backend} backend (${ipt.reason})`)
  if (config.rules === 'none')
    return item(
      'iptables',
      'info',
      `no usable iptables (${ipt.message}); --rules none: rules are yours to install`,
      'install them with `dns-shaper rules print`',
    )
  return item(
    'iptables',
    'fail',
    ipt.message,
    'install iptables (nft or legacy backend), or use --rules none and install `dns-shaper rules print` yourself',
  )
}

function featureItem(
  id: string,
  works: true | Error,
  okText: string,
  failStatus: ItemStatus,
  what: string,
  action: string,
): CheckItem {
  return works === true ? item(id, 'ok', okText) : item(id, failStatus, `${what} unusable: ${works.message}`, action)
}

/** NFQUEUE and xt_bpf: one item, or two when the probe ran. */
export function featureItems(feat: FeatureProbe | Error): CheckItem[] {
  if (feat instanceof Error) {
    return [
      item(
        'nfqueue',
        'fail',
        `cannot probe NFQUEUE: ${feat.message}`,
        'check that nfnetlink_queue and xt_NFQUEUE can be loaded (modprobe)',
      ),
    ]
  }
  return [
    featureItem(
      'nfqueue',
      feat.nfqueue,
      'NFQUEUE rules and queue binding work',
      'fail',
      'NFQUEUE',
      'modprobe nfnetlink_queue xt_NFQUEUE, or use a kernel built with them',
    ),
    featureItem(
      'xt_bpf',
      feat.xtBpf,
      'xt_bpf match works',
      'warn',
      'xt_bpf',
      'modprobe xt_bpf; without it the kernel cannot pre-filter, so every DNS packet goes to user space',
    ),
  ]
}

/** Is the queue free? Also tells whether tagged rules are live. */
export function queueItem(bound: NfqueueStats[] | Error, shaperQueues: ReadonlySet<number>, config: CheckConfig) {
  const wanted = queueRange(config.queue, config.queues)
  if (bound instanceof Error) {
    return item(
      'queue',
      'warn',
      `cannot read the NFQUEUE table: ${bound.message}`,
      'run as root so /proc/net/netfilter/nfnetlink_queue is readable',
    )
  }
  const boundHere = bound.filter(q => wanted.includes(q.queue))
  if (boundHere.length === 0) return item('queue', 'ok', `${queuesText(wanted)} free`)
  const who = boundHere.map(q => `queue ${q.queue} by portid ${q.portid}`).join(', ')
  const ours = boundHere.some(q => shaperQueues.has(q.queue))
    ? ' (a dns-shaper seems to run already: its rules are live)'
    : ''
  return item(
    'queue',
    'fail',
    `bound: ${who}${ours}`,
    'stop the other process (a portid is usually its PID) or choose another --queue',
  )
}

export function metricsItem(listen: true | Error | undefined, config: CheckConfig): CheckItem {
  if (listen === undefined) return item('metrics', 'info', 'metrics listener disabled (--metrics-listen "")')
  if (listen === true) return item('metrics', 'ok', `${config.metricsListen} free`)
  return item(
    'metrics',
    'fail',
    `cannot listen on ${config.metricsListen}: ${listen.message}`,
    'choose another --metrics-listen or stop the process using it',
  )
}

export interface ConntrackFinding {
  item: CheckItem
  loaded: boolean
  rates: VerdictInput['rates']
}

export function conntrackItem(
  ct: ConntrackSample | Error,
  handling: ClashHandling | undefined,
  sampleSeconds: number,
): ConntrackFinding {
  if (ct instanceof Error) {
    return {
      item: item(
        'conntrack',
        'warn',
        `cannot read conntrack statistics: ${ct.message}`,
        'run as root; the verdict then relies on the kernel version only',
      ),
      loaded: true,
      rates: undefined,
    }
  }
  const { reading } = ct
  if (!reading.loaded) {
    return {
      item: item('conntrack', 'info', 'nf_conntrack is not loaded in this network namespace (no nf_conntrack_count)'),
      loaded: false,
      rates: undefined,
    }
  }
  const s = reading.stats
  if (s === undefined) {
    // Loaded but unreadable (e.g. no CONFIG_NF_CONNTRACK_PROCFS and no ctnetlink): not "not needed".
    const why = CONNTRACK_SOURCES.map(src => `${src}: ${reading.sources[src].error ?? 'ok'}`).join('; ')
    return {
      item: item(
        'conntrack',
        'warn',
        `conntrack is loaded (entries ${reading.entries ?? '?'}) but its counters cannot be read (${why})`,
        'run as root (ctnetlink needs CAP_NET_ADMIN) or load nf_conntrack_netlink; the verdict relies on the kernel version only',
      ),
      loaded: true,
      rates: undefined,
    }
  }
  const via = reading.source === 'netlink' ? 'ctnetlink' : '/proc/net/stat/nf_conntrack'
  const clashCol = s.clashResolve === undefined ? 'no clash counter' : `clash_resolve ${s.clashResolve}`
  if (ct.rates === undefined) {
    return {
      item: item(
        'conntrack',
        'info',
        `entries ${s.entries ?? '?'}, insert_failed ${s.insertFailed ?? '?'}, drop ${s.drop ?? '?'}, ${clashCol} (totals of this netns, from ${via}; not sampled)`,
        'use --sample SECONDS to see rates',
      ),
      loaded: true,
      rates: undefined,
    }
  }
  const rates = ct.rates
  const r = (n: number | undefined) => (n === undefined ? 'n/a' : formatRate(n))
  const found = `insert_failed ${r(rates.insert_failed)}, drop ${r(rates.drop)}, clash_resolve ${r(rates.clash_resolve)} over ${sampleSeconds} s (this netns, from ${via}), entries ${s.entries ?? '?'}`
  const dropping =
    (rates.insert_failed ?? 0) > 0 &&
    (handling === undefined || handling.insertFailedMeansDrop || handling.level !== 'all')
  return {
    item: item(
      'conntrack',
      dropping ? 'warn' : 'ok',
      found,
      dropping ? 'clashing DNS packets are being dropped (5 s resolver timeouts): shaping removes the race' : '',
    ),
    loaded: true,
    rates: { insertFailed: rates.insert_failed, clashResolve: rates.clash_resolve },
  }
}

/** Is DNS exempt from conntrack? `untracked`: the NOTRACK scope ('' = any destination), undefined when tracked. */
export function dnsTrackingItem(
  scan: RawRuleScan | undefined,
  raw: string | Error,
  config: CheckConfig,
): { item: CheckItem; untracked: string | undefined } {
  if (scan === undefined) {
    return {
      item: item(
        'dns-tracking',
        'info',
        `cannot read the raw table: ${(raw as Error).message}`,
        'check by hand: iptables-save -t raw | grep -i notrack',
      ),
      untracked: undefined,
    }
  }
  if (scan.notrack.length === 0) {
    return { item: item('dns-tracking', 'ok', `udp/${config.dnsPort} is tracked by conntrack`), untracked: undefined }
  }
  const untracked = scan.notrackDestinations.join(', ')
  return {
    item: item(
      'dns-tracking',
      'info',
      `udp/${config.dnsPort} exempt from conntrack${untracked ? ` to ${untracked}` : ''} (${scan.notrack.length} NOTRACK rule${scan.notrack.length > 1 ? 's' : ''})`,
      'untracked DNS cannot race; shaping is only needed for traffic the NOTRACK rules miss',
    ),
    untracked,
  }
}

/** dns-shaper rules already installed: live (bound) or stale. */
export function shaperRulesItem(
  scan: RawRuleScan,
  shaperQueues: ReadonlySet<number>,
  bound: NfqueueStats[] | Error,
  config: CheckConfig,
): CheckItem {
  const n = scan.shaper.length
  const qs = [...shaperQueues].sort((a, b) => a - b)
  const live = !(bound instanceof Error) && bound.some(q => shaperQueues.has(q.queue))
  if (n === 0) return item('shaper-rules', 'ok', 'no dns-shaper rules installed')
  if (live)
    return item(
      'shaper-rules',
      'info',
      `${n} dns-shaper rule${n > 1 ? 's' : ''} for ${queuesText(qs)}, bound: a dns-shaper is running`,
    )
  return item(
    'shaper-rules',
    'warn',
    `${n} stale dns-shaper rule${n > 1 ? 's' : ''} for ${queuesText(qs)} with nothing bound: DNS passes unshaped (--queue-bypass)`,
    config.rules === 'manage'
      ? 'the daemon replaces them at start; or `dns-shaper rules remove`'
      : 'remove them with `dns-shaper rules remove`',
  )
}

export function tcItem(tc: string | Error): CheckItem {
  if (tc instanceof Error) return item('tc', 'info', `cannot list qdiscs: ${tc.message}`)
  const qd = parseQdiscs(tc)
  const devs = (kind: string) => [...new Set(qd.filter(q => q.kind === kind).map(q => q.dev))].join(', ')
  const netem = devs('netem')
  const prio = devs('prio')
  if (netem !== '') {
    return item(
      'tc',
      'warn',
      `netem on ${netem}${prio ? `, prio on ${prio}` : ''}`,
      'a tc delay (the tc workaround for the race) may already shape DNS; running both adds up the delays: keep one',
    )
  }
  if (prio !== '') return item('tc', 'info', `prio qdisc on ${prio} (no netem)`)
  return item('tc', 'ok', 'no netem or prio qdisc')
}

/**
 * One row per service dataplane found (what shaping does there and why), a row explaining a combination
 * or the absence of any, and rows for signs that point elsewhere or sources that could not be read.
 */
export function dataplaneItems(inputs: DataplaneInputs | Error): {
  items: CheckItem[]
  report: DataplaneReport | undefined
} {
  if (inputs instanceof Error)
    return {
      items: [item('dataplane', 'info', `cannot probe the service dataplane: ${inputs.message}`)],
      report: undefined,
    }
  const report = classifyDataplanes(inputs)
  const items = report.found.map(d =>
    item(
      'dataplane',
      d.shaping === 'useful' ? 'ok' : 'info',
      `${d.name} (${d.evidence.join(', ')})`,
      `shaping ${d.shaping}: ${d.why}`,
    ),
  )
  // Long findings go in rows without an action, so they do not push every ACTION column to the right.
  if (report.found.length === 0)
    items.push(
      item(
        'dataplane',
        'info',
        'no service dataplane detected (no kube-proxy chains or table, no IPVS, no Cilium or Calico eBPF)',
        'without a DNAT to several endpoints only same-tuple clashes remain, which kernels since 4.19 resolve; on a Kubernetes node run check in its network namespace (hostNetwork), with nft installed and /sys/fs/bpf mounted',
      ),
    )
  else if (report.found.length > 1) items.push(item('dataplane', 'info', report.summary))
  for (const n of report.notes) items.push(item('dataplane', 'info', n))
  if (report.unreadable.length > 0)
    items.push(item('dataplane', 'info', `could not read: ${report.unreadable.join('; ')}`))
  return { items, report }
}
