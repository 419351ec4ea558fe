// The race matrices (plain, kube-proxy modes, kernel rows) and the run of a whole matrix in one lab, with
// rows skipped (and said why) when the kernel or the tools cannot show them. Puts the lab clash switch back.

import { ipvsAvailable, type ServiceMode } from './kube-proxy-modes.js'
import { NetemUnavailable } from './netem-workaround.js'
import { applyClashPlan, fsSwitchIo, LAB_SWITCH_PATH, planClashHandling } from './clash-switch.js'
import type { ClashHandling } from './clash-switch.js'
import { createRaceLab, type RaceLab } from './lab.js'
import { buildClients, type ClientKind } from './clients.js'
import type { ShaperSetup } from './shaper.js'
import { rowLabel, runScenario, type RaceScenario, type RaceRow } from './scenario.js'

// ---------------------------------------------------------------------------------------------
// The whole matrix

export interface RaceMatrixOptions {
  /** split_cpu_client pairs per row (default 20000; --quick 3000), cut short by maxSeconds. */
  splitLookups?: number
  /** pair_client / getaddrinfo lookups per row (default 5000 / 2000). */
  pairLookups?: number
  gaiLookups?: number
  /** Only the split-client rows, with fewer lookups. */
  quick?: boolean
  /** Per-row bound on starting lookups (default 15 s): a 5 ms hold caps one thread pair near 190 pairs/s. */
  maxSeconds?: number
  /**
   * Split-client thread pairs (default 1). Keep it at or below CPUs / 2: with more, a descheduled
   * sender skews the pair by milliseconds (measured: up to 80 ms with 2 pairs on 2 CPUs), and the
   * A and AAAA no longer meet in conntrack.
   */
  splitThreads?: number
  /**
   * kube-proxy modes to run (default iptables, nftables, ipvs). iptables runs the full matrix above;
   * each other mode runs no shaper / fixed 5 ms / pair for the split-CPU, glibc and musl clients, with
   * and without masquerade (split client only with --quick). IPVS rows are skipped, with the reason,
   * where the kernel has no ip_vs.
   */
  services?: ServiceMode[]
  /** Stretches readiness waits (links, unbound, daemon start) for slow guests; the kernel matrix uses 6. */
  timeScale?: number
  /** Kernel matrix only: the row ids to run (default a-f; g and h only when named). */
  rows?: readonly string[]
  /**
   * Clash handling for the kube-proxy mode rows (default: the kernel as it is). Set through the lab
   * switch in the kernel lab's guest, so the same IPVS rows can show pre-5.6 and stock handling.
   */
  clash?: ClashHandling
}

// Fixed rows run with the default kernel filter (A never reaches the queue, so only the wait orders
// the pair) and with it off (every packet through the one thread: its verdict order alone orders it).
const FILTER_OFF = ['--kernel-filter', 'off']
export const SHAPERS: ShaperSetup[] = [
  { kind: 'none' },
  { kind: 'raw', delayMs: 0, mode: 'fixed', args: FILTER_OFF },
  { kind: 'raw', delayMs: 5, mode: 'fixed', args: FILTER_OFF },
  { kind: 'raw', delayMs: 0, mode: 'fixed' },
  { kind: 'raw', delayMs: 1, mode: 'fixed' },
  { kind: 'raw', delayMs: 2, mode: 'fixed' },
  { kind: 'raw', delayMs: 5, mode: 'fixed' },
  { kind: 'raw', delayMs: 5, mode: 'pair' },
  { kind: 'mangle', delayMs: 5 },
]

/** The shapers each non-iptables kube-proxy mode is run with. */
export const MODE_SHAPERS: ShaperSetup[] = [
  { kind: 'none' },
  { kind: 'raw', delayMs: 5, mode: 'fixed' },
  { kind: 'raw', delayMs: 5, mode: 'pair' },
]

export function raceMatrix(o: RaceMatrixOptions = {}): RaceScenario[] {
  const quick = o.quick ?? false
  const split = o.splitLookups ?? (quick ? 3000 : 20000)
  const pair = o.pairLookups ?? (quick ? 1000 : 5000)
  const gai = o.gaiLookups ?? (quick ? 500 : 2000)
  const maxSeconds = o.maxSeconds ?? 15
  const threads = o.splitThreads ?? 1
  const rows: RaceScenario[] = []
  const splitRow = (shaper: ShaperSetup, family: 4 | 6, snat: boolean): RaceScenario => ({
    shaper,
    client: 'split',
    family,
    lookups: split,
    threads,
    maxSeconds,
    snat,
  })
  const services = o.services ?? ['iptables', 'nftables', 'ipvs']
  const modeRows: RaceScenario[] = []
  for (const service of services.filter(s => s !== 'iptables')) {
    for (const snat of [false, true]) {
      for (const shaper of MODE_SHAPERS) {
        const clash = o.clash ? { clash: o.clash } : {}
        modeRows.push({ ...splitRow(shaper, 4, snat), service, ...clash })
        if (quick) continue
        for (const client of ['gai-glibc', 'gai-musl'] as const)
          modeRows.push({ shaper, client, family: 4, lookups: gai, threads: 4, maxSeconds, snat, service, ...clash })
      }
    }
  }
  if (!services.includes('iptables')) return modeRows
  for (const shaper of SHAPERS) rows.push(splitRow(shaper, 4, false))
  const key: ShaperSetup[] = [{ kind: 'none' }, { kind: 'raw', delayMs: 5, mode: 'pair' }]
  for (const shaper of key) rows.push(splitRow(shaper, 6, false))
  for (const shaper of key) rows.push(splitRow(shaper, 4, true))
  if (quick) return [...rows, ...modeRows]
  const natural: ShaperSetup[] = [
    { kind: 'none' },
    { kind: 'raw', delayMs: 5, mode: 'fixed' },
    { kind: 'raw', delayMs: 5, mode: 'pair' },
    { kind: 'mangle', delayMs: 5 },
  ]
  for (const shaper of natural) {
    rows.push({ shaper, client: 'pair', family: 4, lookups: pair, threads: 4, maxSeconds, snat: false })
    rows.push({ shaper, client: 'gai-glibc', family: 4, lookups: gai, threads: 4, maxSeconds, snat: false })
    rows.push({ shaper, client: 'gai-musl', family: 4, lookups: gai, threads: 4, maxSeconds, snat: false })
  }
  return [...rows, ...modeRows]
}

/**
 * The kernel matrix (`--matrix kernels`, run by `npm run lab:kernels` in a 5.10 guest): rows (a)-(f)
 * of issue 18, each for getaddrinfo (glibc, musl) and split-CPU pairs, IPv4, MASQUERADE off and on.
 * (a)-(e) need pre-5.6 clash handling (lab switch on, or a kernel before 5.6), (f) stock 5.6+.
 */
export const KERNEL_ROWS: readonly { id: string; shaper: ShaperSetup; clash: ClashHandling }[] = [
  { id: 'a', shaper: { kind: 'none' }, clash: 'pre56' },
  { id: 'b', shaper: { kind: 'netem', placement: 'node-egress' }, clash: 'pre56' },
  { id: 'c', shaper: { kind: 'netem', placement: 'pod-egress' }, clash: 'pre56' },
  { id: 'd', shaper: { kind: 'raw', delayMs: 5, mode: 'fixed' }, clash: 'pre56' },
  { id: 'e', shaper: { kind: 'raw', delayMs: 5, mode: 'pair' }, clash: 'pre56' },
  { id: 'f', shaper: { kind: 'none' }, clash: 'stock' },
]

/**
 * Extra kernel-matrix rows, run only when named (`--rows`): they tell a short margin from a broken
 * order when (d) is not clean on a slow guest. (g) every packet through the one thread (kernel
 * filter off), so verdict order alone orders the pair; (h) the same fixed hold as (d), 5x longer.
 */
export const KERNEL_EXTRA_ROWS: readonly { id: string; shaper: ShaperSetup; clash: ClashHandling }[] = [
  { id: 'g', shaper: { kind: 'raw', delayMs: 5, mode: 'fixed', args: ['--kernel-filter', 'off'] }, clash: 'pre56' },
  { id: 'h', shaper: { kind: 'raw', delayMs: 25, mode: 'fixed' }, clash: 'pre56' },
]

export function kernelMatrix(o: RaceMatrixOptions = {}): RaceScenario[] {
  const quick = o.quick ?? false
  // Sized for TCG: a guest runs the stack some 10-30x slower than this host, so counts are small and
  // every row is also bounded by maxSeconds.
  const split = o.splitLookups ?? (quick ? 500 : 1500)
  const gai = o.gaiLookups ?? (quick ? 100 : 300)
  const maxSeconds = o.maxSeconds ?? 12
  const threads = o.splitThreads ?? 1
  const clients: ClientKind[] = quick ? ['split'] : ['gai-glibc', 'gai-musl', 'split']
  const rows: RaceScenario[] = []
  const wanted = o.rows ?? KERNEL_ROWS.map(r => r.id)
  for (const r of [...KERNEL_ROWS, ...KERNEL_EXTRA_ROWS].filter(x => wanted.includes(x.id))) {
    for (const snat of [false, true]) {
      for (const client of clients) {
        const split_ = client === 'split'
        rows.push({
          id: r.id,
          clash: r.clash,
          shaper: r.shaper,
          client,
          family: 4,
          lookups: split_ ? split : gai,
          threads: split_ ? threads : 2,
          maxSeconds,
          snat,
        })
      }
    }
  }
  return rows
}

export interface RaceReport {
  date: string
  kernel: string
  cpus: number
  rows: RaceRow[]
  skipped: string[]
}

export async function runRaceMatrix(
  scenarios: RaceScenario[],
  opts: { onRow?: (r: RaceRow) => void; onSkip?: (why: string) => void; cli?: string; timeScale?: number } = {},
): Promise<RaceReport> {
  const { release, cpus } = await import('node:os')
  const bins = await buildClients()
  const skipped: string[] = []
  const skip = (why: string): void => {
    skipped.push(why)
    opts.onSkip?.(why)
  }
  const hasSwitch = fsSwitchIo.exists(LAB_SWITCH_PATH)
  // The switch is global to the kernel: put back what was there when the matrix is done.
  const switchBefore = hasSwitch ? fsSwitchIo.read(LAB_SWITCH_PATH).trim() : null
  let rl: RaceLab | undefined
  try {
    rl = await createRaceLab({ timeScale: opts.timeScale })
    const rows: RaceRow[] = []
    // Asked once, when the first IPVS row comes: the check itself makes the kernel try to load ip_vs.
    let ipvs: true | string | undefined
    for (const sc of scenarios) {
      const label = `${sc.service ?? 'iptables'} / ${rowLabel(sc)} / ${sc.client} / snat ${sc.snat ? 'on' : 'off'}`
      if (!bins.bins[sc.client]) {
        skip(`${label}: client not built (musl-gcc missing?)`)
        continue
      }
      if (sc.service === 'ipvs' && (ipvs ??= await ipvsAvailable(rl.router)) !== true) {
        skip(`${label}: ${ipvs}`)
        continue
      }
      let clashNote: string | undefined
      if (sc.clash) {
        const plan = planClashHandling(sc.clash, release(), hasSwitch)
        if (!plan.run) {
          skip(`${label}: ${plan.reason}`)
          continue
        }
        applyClashPlan(plan)
        clashNote = plan.note
      }
      let row: RaceRow
      try {
        row = await runScenario(rl, bins, sc, opts.cli, { timeScale: opts.timeScale, clashNote })
      } catch (e: unknown) {
        if (!(e instanceof NetemUnavailable)) throw e
        skip(`${label}: ${e.message}`)
        continue
      }
      rows.push(row)
      opts.onRow?.(row)
    }
    return { date: new Date().toISOString(), kernel: release(), cpus: cpus().length, rows, skipped }
  } finally {
    await rl?.destroy()
    bins.remove()
    if (switchBefore !== null) fsSwitchIo.write(LAB_SWITCH_PATH, switchBefore === 'Y' ? '1' : '0')
  }
}
