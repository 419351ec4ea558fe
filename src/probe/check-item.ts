// The race probe as a `dns-shaper check` row: what it measured, and what to do about it. Pure.
import type { CheckItem, ItemStatus } from '../check/items.js'
import type { ProbeResult } from './run.js'

const ACTIONS: Record<string, { status: ItemStatus; action: string }> = {
  drops: {
    status: 'warn',
    action: 'run dns-shaper on this node (measured here: the probe outranks the kernel version table)',
  },
  resolves: { status: 'ok', action: '' },
  'no-privilege': {
    status: 'warn',
    action: 'run check --probe as root, or grant CAP_SYS_ADMIN for it (Kubernetes: deploy/variants/survey)',
  },
  'one-cpu': { status: 'info', action: 'run the probe where it may use two CPUs (taskset, cpuset)' },
  'no-overlap': { status: 'info', action: 'run it again, with more pairs (--probe-pairs N)' },
  'counters-missing': {
    status: 'warn',
    action: 'modprobe nf_conntrack_netlink, or use a kernel built with CONFIG_NF_CONNTRACK_PROCFS',
  },
  failed: {
    status: 'warn',
    action:
      "the probe needs the addon's dns-shaper-netns helper (or util-linux's unshare), ip (iproute2) and iptables or nft",
  },
}

export function probeItem(r: ProbeResult | Error): CheckItem {
  if (r instanceof Error) return { id: 'probe', ...ACTIONS.failed!, found: `probe failed: ${r.message}` }
  const v = r.verdict
  const a = ACTIONS[v.reason ?? v.outcome]!
  const ran = v.figures === undefined ? '' : ` (kernel ${r.release}, ${r.elapsedSeconds} s)`
  return { id: 'probe', status: a.status, found: `${v.text}${ran}`, action: a.action }
}
