// The one NFQUEUE rule every queue variant gets (in the lab router's raw PREROUTING, IPv4 and IPv6),
// and the router's nfnetlink_queue counters. Only ever applied inside a lab namespace.

import type { Netns } from '../../lab/src/netns.js'
import { parseNfqueueStats } from '../../src/kernel/procfs.js'
import type { NfqueueStats } from '../../src/kernel/procfs.js'

/**
 * Same for every variant, so the comparison is fair: queries to port 53, bypass when nobody listens.
 * Several queues: --queue-balance hashes the flow, so one flow stays on one queue (as the daemon does).
 */
export function queueRuleSpec(queue: number, queues = 1): string[] {
  const target = queues > 1 ? ['--queue-balance', `${queue}:${queue + queues - 1}`] : ['--queue-num', String(queue)]
  return [
    '-p',
    'udp',
    '--dport',
    '53',
    '-m',
    'comment',
    '--comment',
    'dns-shaper-bench',
    '-j',
    'NFQUEUE',
    ...target,
    '--queue-bypass',
  ]
}

export async function installQueueRule(router: Netns, queue: number, queues = 1): Promise<void> {
  for (const tool of ['iptables', 'ip6tables']) {
    await router.execOk([tool, '-w', '5', '-t', 'raw', '-A', 'PREROUTING', ...queueRuleSpec(queue, queues)])
  }
}

/** Removes the rule; tolerant of its absence (idempotent). */
export async function removeQueueRule(router: Netns, queue: number, queues = 1): Promise<void> {
  for (const tool of ['iptables', 'ip6tables']) {
    for (let i = 0; i < 4; i++) {
      const r = await router.exec([tool, '-w', '5', '-t', 'raw', '-D', 'PREROUTING', ...queueRuleSpec(queue, queues)])
      if (r.code !== 0) break
    }
  }
}

/** The router's bound queues (empty when none is bound). */
export async function readQueueStats(router: Netns, queue: number): Promise<NfqueueStats | undefined> {
  const r = await router.exec(['cat', '/proc/net/netfilter/nfnetlink_queue'])
  if (r.code !== 0) return undefined
  return parseNfqueueStats(r.stdout).find(q => q.queue === queue)
}

export interface QueueDelta {
  /** Packets given an id (queued to user space). */
  queued: number
  dropped: number
  userDropped: number
}

export function queueDelta(before: NfqueueStats | undefined, after: NfqueueStats | undefined): QueueDelta | undefined {
  if (!before || !after || after.portid !== before.portid) return undefined
  return {
    queued: after.idSequence - before.idSequence,
    dropped: after.dropped - before.dropped,
    userDropped: after.userDropped - before.userDropped,
  }
}
