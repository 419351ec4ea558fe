// Test helper for test/check/*: fixture /proc roots, fake probes and runner results, conntrack samples, save texts folded.
import { fileURLToPath } from 'node:url'
import { type CheckProbes } from '../../src/check/probes.js'
import type { CheckConfig } from '../../src/check/items.js'
import { LineSplitter, type ExecResult } from '../../src/kernel/exec.js'
import {
  emptyIpvsSummary,
  emptyNatSummary,
  ipvsFolder,
  mergeNatSummary,
  natFolder,
  type IpvsSummary,
  type NatSummary,
} from '../../src/check/dataplane.js'
import { clashHandling, parseKernelRelease } from '../../src/kernel/release.js'
import { parseConntrackStats, type ConntrackStats } from '../../src/kernel/procfs.js'
import { readConntrack, type ConntrackReading } from '../../src/kernel/conntrack-stats.js'
import { configWith } from './config.js'

export const fx = (name: string) => fileURLToPath(new URL(`../fixtures/proc/${name}`, import.meta.url))
/** What the injected runner returns for a command (exec.ts's ExecResult). */
export const result = (stdout: string, stderr = '', code = 0): ExecResult => ({
  code,
  signal: null,
  stdout,
  stderr,
  timedOut: false,
})
/** `text` handed to `onLine` line by line, as check streams what it reads. */
function fold(text: string, onLine: (line: string) => void): void {
  const lines = new LineSplitter(onLine)
  lines.push(text)
  lines.end()
}

/**
 * iptables-save texts, one per dump, folded as check folds what the saves print: fixtures stay
 * readable save text while classifyDataplanes takes the summary.
 */
export function natOf(...dumps: string[]): NatSummary {
  const nat = emptyNatSummary()
  for (const text of dumps) {
    const dump = emptyNatSummary()
    fold(text, natFolder(dump))
    mergeNatSummary(nat, dump)
  }
  return nat
}

/** /proc/net/ip_vs text counted as check counts the file. */
export function ipvsOf(text: string): IpvsSummary {
  const ipvs = emptyIpvsSummary()
  fold(text, ipvsFolder(ipvs))
  return ipvs
}

export const handling = (r: string) => clashHandling(parseKernelRelease(r)!)
export const cfg: CheckConfig = configWith(
  { queue: 0, queues: 1, metricsListen: '127.0.0.1:9464', rules: 'manage', dnsPort: 53, ipv6: true },
  {} as CheckConfig,
)
export const H6 =
  'entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart'
export const ctRow = (clash: number, failed: number) =>
  `00000010  ${[clash, 0, 0, 0, 0, 0, 0, 100, failed, failed, 0, 0, 0, 0, 0, 0].map(n => n.toString(16).padStart(8, '0')).join(' ')}`
export const ct = (clash: number, failed: number) =>
  parseConntrackStats(`${H6}\n${ctRow(clash, failed)}\n${ctRow(0, 0)}\n`)

/**
 * A reading as readConntrack gives it, made by the product's readConntrack from fake readers (so the
 * shape cannot drift from it): undefined is "not loaded"; stats come from procfs (netlink refused).
 */
export function reading(stats: ConntrackStats | undefined): Promise<ConntrackReading> {
  return readConntrack({
    count: async () => {
      if (stats === undefined) return undefined
      // A count file that cannot be read still leaves conntrack loaded, with no entries figure.
      if (stats.entries === undefined) throw new Error('no entries column (fake)')
      return stats.entries
    },
    netlink: () => Promise.reject(new Error('EPERM (fake)')),
    procfs: async () => stats,
  })
}

export function fakes(
  over: Partial<CheckProbes> & { samples?: (ConntrackStats | undefined)[] } = {},
): CheckProbes & { slept: number[] } {
  const samples = over.samples ?? [ct(10, 0), ct(30, 0)]
  let i = 0
  const slept: number[] = []
  return {
    selfStatus: async () => 'Uid:\t0\t0\t0\t0\nCapEff:\t000001ffffffffff\n',
    kernelRelease: async () => '6.18.44-fc-v769',
    iptables: async () => ({ backend: 'nft', reason: 'iptables-nft has rules' }),
    features: async () => ({ nfqueue: true, xtBpf: true }),
    nfqueueStats: async () => [],
    conntrack: async () => reading(samples[Math.min(i++, samples.length - 1)]),
    listen: async () => true,
    rawRules: async () => '*raw\nCOMMIT\n',
    tcQdiscs: async () => 'qdisc noqueue 0: dev lo root refcnt 2\n',
    localAddresses: async () => [{ address: '127.0.0.1', ifname: 'lo' }],
    // A node with kube-proxy in iptables mode, the common case.
    dataplane: async () => ({
      iptablesNat: natOf('*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-TCOU7JCQXEZGVUNU - [0:0]\nCOMMIT\n'),
      nftTables: '',
      links: '1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536\n',
      ipvs: null,
      bpf: [],
    }),
    // No dns-shaper running beside the check, unless a test says so.
    daemons: async () => [],
    httpGet: async hostPort => {
      throw new Error(`connect ECONNREFUSED ${hostPort}`)
    },
    sleep: async ms => {
      slept.push(ms)
    },
    ...over,
    slept,
  }
}

export const byId = (r: { items: { id: string }[] }, id: string) =>
  r.items.find(i => i.id === id) as { id: string; status: string; found: string; action: string }
