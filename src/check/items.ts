// One function per `dns-shaper check` item: what a probe found becomes a row (status, finding, what
// to do). Pure: each reads only the probe results and the config it is given.
import type { Config } from '../config/types.js'
import type { ClashHandling } from '../kernel/release.js'
import type { NfqueueStats } from '../kernel/procfs.js'
import { CAP_NET_ADMIN, CAP_NET_RAW, hasCap, parseProcStatus, parseQdiscs, type RawRuleScan } from './parse.js'
import { NotProbed, type FeatureProbe, type IptablesProbe, type RunningDaemon } from './probes.js'
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
  if (qs.length === 0) return 'no queue'
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

/** The running daemon, if it answers its health endpoint with 200: what `check` beside it may rely on. */
export function healthyDaemon(d: RunningDaemon | undefined): RunningDaemon | undefined {
  return d?.health?.status === 200 ? d : undefined
}

const SYSADMIN_ADVICE =
  'to probe it, run `dns-shaper check` on the node as root, or in a pod with CAP_SYS_ADMIN (kubectl debug node/NODE --profile=sysadmin)'

/** What to say about NFQUEUE and xt_bpf when they could not be probed here (no CAP_SYS_ADMIN). */
function notProbedItems(e: NotProbed, daemon: RunningDaemon | undefined): CheckItem[] {
  const d = healthyDaemon(daemon)
  return [
    d
      ? item(
          'nfqueue',
          'ok',
          `in use by the running dns-shaper (pid ${d.pid}: queue bound, /healthz ${d.health!.status}); ${e.message}`,
        )
      : item('nfqueue', 'warn', e.message, SYSADMIN_ADVICE),
    item(
      'xt_bpf',
      'info',
      e.message,
      d ? `the daemon's start log names its kernel filter; ${SYSADMIN_ADVICE}` : SYSADMIN_ADVICE,
    ),
  ]
}

/** NFQUEUE and xt_bpf: one item, or two when the probe ran (or could not, for lack of privilege). */
export function featureItems(feat: FeatureProbe | Error, daemon?: RunningDaemon): CheckItem[] {
  if (!(feat instanceof Error) && feat.nfqueue instanceof NotProbed) return notProbedItems(feat.nfqueue, daemon)
  if (feat instanceof Error) {
    return [
      item('nfqueue', 'fail', `cannot probe NFQUEUE: ${feat.message}`, 'see the error: NFQUEUE itself was not tried'),
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

/** Is the queue free? Also tells whether tagged rules are live, and whether the holder is the running dns-shaper. */
export function queueItem(
  bound: NfqueueStats[] | Error,
  shaperQueues: ReadonlySet<number>,
  config: CheckConfig,
  daemon?: RunningDaemon,
) {
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
  // Beside the daemon (`kubectl exec` into its pod), the queue is busy because the daemon holds it:
  // the owner's netlink portid is the daemon's pid, or the daemon answers healthy with its rules live.
  const d = daemon
  const owned = d !== undefined && boundHere.every(q => q.portid === d.pid)
  const healthyWithRules = healthyDaemon(d) !== undefined && boundHere.every(q => shaperQueues.has(q.queue))
  if (d !== undefined && (owned || healthyWithRules)) {
    const how = owned ? `its pid ${d.pid} is the queue's owner` : `pid ${d.pid}, /healthz ${d.health!.status}`
    return item('queue', 'ok', `${queuesText(boundHere.map(q => q.queue))} in use by the running dns-shaper (${how})`)
  }
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

export function metricsItem(listen: true | Error | undefined, config: CheckConfig, daemon?: RunningDaemon): CheckItem {
  const h = daemon?.health
  // The daemon's own listener answered: in use by it, whether or not this check's address is the same.
  // Answering 503 it is still the daemon's port, but the daemon is not well: say so, not "busy".
  if (daemon && h && (h.listen !== config.metricsListen || listen instanceof Error)) {
    const found = `${h.listen} in use by the running dns-shaper (pid ${daemon.pid}, /healthz ${h.status}: ${h.body.slice(0, 80)})`
    return h.status === 200
      ? item('metrics', 'ok', found)
      : item(
          'metrics',
          'warn',
          found,
          'the daemon is not healthy: read its log (kubectl logs) and docs/troubleshooting.md',
        )
  }
  if (listen === undefined) return item('metrics', 'info', 'metrics listener disabled (--metrics-listen "")')
  if (listen === true) return item('metrics', 'ok', `${config.metricsListen} free`)
  return item(
    'metrics',
    'fail',
    `cannot listen on ${config.metricsListen}: ${listen.message}`,
    'choose another --metrics-listen or stop the process using it',
  )
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
