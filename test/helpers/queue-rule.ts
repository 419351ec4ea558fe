// Test helper: what the NFQUEUE rules of the DNS-SHAPER chains in a lab namespace have queued (iptables -c),
// a count independent of the daemon's own metrics. Reads only the namespace it is given.
import type { Netns } from '../../harness/netns.js'

/** Packets the NFQUEUE rules in the DNS-SHAPER chains (IPv4 + IPv6) of a namespace have queued so far. */
export async function queueRuleCounter(ns: Netns): Promise<number> {
  let n = 0
  for (const cmd of ['iptables-save', 'ip6tables-save']) {
    const out = (await ns.execOk([cmd, '-c', '-t', 'raw'])).stdout
    for (const line of out.split('\n')) {
      const m = /^\[(\d+):\d+\] -A DNS-SHAPER .*-j NFQUEUE/.exec(line)
      if (m) n += Number(m[1])
    }
  }
  return n
}
