// The published tc/netem workaround for the A/AAAA race, rebuilt for the race lab: AAAA queries marked
// by iptables (mangle POSTROUTING, u32 + string) and delayed by tc prio + netem on one interface.
// Builders are pure; apply/remove act only in the lab namespace they are given, never the root namespace.

import { LabError } from '../../harness/netns.js'
import type { Netns } from '../../harness/netns.js'

/** Mark bit the mangle rule sets and the fw classifier matches. */
export const WORKAROUND_MARK = 0x100
/** The delay as published: 4 ms, 1 ms jitter, pareto tail. */
export const WORKAROUND_NETEM = ['delay', '4ms', '1ms', 'distribution', 'pareto'] as const

/**
 * u32: a DNS query (QR bit clear) with one question. `0>>22&0x3C` is the IPv4 header length, `@`
 * moves to the UDP header; DNS starts 8 bytes later: bytes 0-3 are ID and flags (QR = 0x8000 of the
 * low half), bytes 4-5 QDCOUNT.
 */
export const WORKAROUND_U32 = '0>>22&0x3C@8&0x8000=0&&0>>22&0x3C@12>>16=1'
/**
 * string: the end of the question, root label 00 then QTYPE 28 (AAAA) and QCLASS IN, searched from
 * the first byte of the question (20 IPv4 + 8 UDP + 12 DNS header; longer IPv4 headers only shift it right).
 */
export const WORKAROUND_AAAA_HEX = '|00001c0001|'

/** iptables-restore input (IPv4 mangle, --noflush) that marks AAAA queries leaving through `iface`. */
export function workaroundMangleRules(iface: string): string {
  return [
    '*mangle',
    `-A POSTROUTING -o ${iface} -p udp --dport 53 -m u32 --u32 "${WORKAROUND_U32}" ` +
      `-m string --algo bm --from 40 --hex-string "${WORKAROUND_AAAA_HEX}" ` +
      `-m comment --comment "dns-shaper-lab: netem workaround" -j MARK --set-xmark 0x${WORKAROUND_MARK.toString(16)}/0x${WORKAROUND_MARK.toString(16)}`,
    'COMMIT',
    '',
  ].join('\n')
}

/**
 * tc commands, in order: a 4-band prio root (the default priomap uses bands 1-3 only, so band 4
 * carries nothing but what the filter sends there), netem on band 4, and a fw filter for the mark.
 */
export function workaroundTcCommands(iface: string): string[][] {
  const mark = `0x${WORKAROUND_MARK.toString(16)}`
  return [
    ['tc', 'qdisc', 'replace', 'dev', iface, 'root', 'handle', '1:', 'prio', 'bands', '4'],
    ['tc', 'qdisc', 'add', 'dev', iface, 'parent', '1:4', 'handle', '40:', 'netem', ...WORKAROUND_NETEM],
    // Marked packets (fw) to the netem band.
    [
      ...'tc filter add dev'.split(' '),
      iface,
      ...'parent 1:0 protocol ip prio 1 handle'.split(' '),
      `${mark}/${mark}`,
      'fw',
      'flowid',
      '1:4',
    ],
  ]
}

/** A kernel without sch_netem / sch_prio / cls_fw (this development host's 6.18) cannot run the row. */
export class NetemUnavailable extends LabError {}

export function isMissingQdiscError(stderr: string): boolean {
  return /unknown qdisc|qdisc kind is unknown|unknown filter|filter kind is unknown|No such file or directory|Operation not supported/i.test(
    stderr,
  )
}

/** Installs the workaround on `iface` of `ns` (the mark rule and the qdiscs). */
export async function applyWorkaround(ns: Netns, iface: string): Promise<void> {
  await ns.execOk(['iptables-restore', '--noflush'], { input: workaroundMangleRules(iface) })
  for (const argv of workaroundTcCommands(iface)) {
    const r = await ns.exec(argv)
    if (r.code !== 0) {
      await removeWorkaround(ns, iface)
      const msg = `${argv.join(' ')} failed in ${ns.name}: ${r.stderr.trim()}`
      if (isMissingQdiscError(r.stderr))
        throw new NetemUnavailable(msg, {
          hint: 'this kernel lacks sch_prio/sch_netem/cls_fw; run it in npm run lab:kernels',
        })
      throw new LabError(msg)
    }
  }
}

/** Removes what applyWorkaround installed; tolerant of half-installed state. */
export async function removeWorkaround(ns: Netns, iface: string): Promise<void> {
  await ns.exec(['tc', 'qdisc', 'del', 'dev', iface, 'root'])
  await ns.exec(['iptables', '-t', 'mangle', '-F', 'POSTROUTING'])
}
