// One race row: client run against the service with the row's shaper, conntrack counters around it.
// Touches only the lab namespaces it is handed.

import { LabError } from '../../harness/netns.js'
import type { Netns } from '../../harness/netns.js'
import { CLI_PATH } from '../../harness/paths.js'
import { type ServiceMode } from './kube-proxy-modes.js'
import { applyWorkaround, removeWorkaround } from './netem-workaround.js'
import type { ClashHandling } from './clash-switch.js'
import type { RaceLab } from './lab.js'
import { readConntrack, conntrackCountersDelta, flushConntrack } from './conntrack.js'
import { clientArgv, type ClientKind, type ClientBins, type ClientResult, type ClientRun } from './clients.js'
import { shaperLabel, RunningShaper, type ShaperSetup } from './shaper.js'

// ---------------------------------------------------------------------------------------------
// One row

export interface RaceScenario extends ClientRun {
  shaper: ShaperSetup
  snat: boolean
  /** kube-proxy mode of the service (default iptables). */
  service?: ServiceMode
  /** Row of the kernel matrix ('a'..'f'), shown before the shaper label. */
  id?: string
  /** Clash handling the row needs; runRaceMatrix sets it through the lab switch, or skips the row. */
  clash?: ClashHandling
}

export interface RaceRow {
  /** Kernel-matrix row ('a'..'f'), null in the plain matrix. */
  id: string | null
  /** How the kernel handled clashes for this row (e.g. 'lab switch lab_pre56_clash=1'), null if not set. */
  clash: string | null
  shaper: string
  service: ServiceMode
  client: ClientKind
  family: 4 | 6
  snat: boolean
  lookups: number
  failed: number
  slowOver1s: number
  /** Answers that never came (pair/split clients); gai clients report failed lookups only. */
  answersLost: number | null
  clashResolve: number
  insertFailed: number
  drop: number
  p50Us: number
  p99Us: number
  aP50Us: number | null
  aaaaP50Us: number | null
  elapsedS: number
  shaperCounters: Record<string, number> | null
  raw: ClientResult
}

const num = (v: unknown): number | null => (typeof v === 'number' ? v : null)

/**
 * The row's label: the matrix row letter, the shaper, and the clash handling when asked for (a lettered
 * kernel row other than (f) implies pre-5.6, so only stock is named there).
 */
export function rowLabel(sc: Pick<RaceScenario, 'id' | 'shaper' | 'clash'>): string {
  const id = sc.id ? `(${sc.id}) ` : ''
  const clash = sc.clash === 'stock' ? ', stock' : sc.clash === 'pre56' && !sc.id ? ', pre-5.6' : ''
  return `${id}${shaperLabel(sc.shaper)}${clash}`
}

/** Where a netem row puts the workaround: the router's egress toward the endpoints, or the client's own. */
function netemPlace(rl: RaceLab, s: Extract<ShaperSetup, { kind: 'netem' }>): { ns: Netns; iface: string } {
  return s.placement === 'node-egress'
    ? { ns: rl.router, iface: rl.lab.router.serverIface }
    : { ns: rl.client, iface: rl.lab.client.iface }
}

export async function runScenario(
  rl: RaceLab,
  bins: ClientBins,
  sc: RaceScenario,
  cli = CLI_PATH,
  opts: { timeScale?: number; clashNote?: string } = {},
): Promise<RaceRow> {
  const bin = bins.bins[sc.client]
  if (!bin)
    throw new LabError(`client ${sc.client} was not built`, {
      hint: sc.client === 'gai-musl' ? 'install musl-tools' : 'see buildClients',
    })
  const service = sc.service ?? 'iptables'
  if (rl.snat !== sc.snat || rl.service !== service) await rl.setService(service, sc.snat)
  await flushConntrack(rl.router)
  const netem = sc.shaper.kind === 'netem' ? netemPlace(rl, sc.shaper) : undefined
  if (netem) await applyWorkaround(netem.ns, netem.iface)
  let shaper: RunningShaper | undefined
  try {
    if (sc.shaper.kind === 'raw' || sc.shaper.kind === 'mangle')
      shaper = await RunningShaper.start(rl, sc.shaper, cli, 15_000 * (opts.timeScale ?? 1))
  } catch (e: unknown) {
    if (netem) await removeWorkaround(netem.ns, netem.iface)
    throw e
  }
  let failed = true
  try {
    const before = await readConntrack(rl.router)
    // gai clients finish the lookup in progress after --max-seconds (libc timeouts: 5 s x 2).
    const r = await rl.client.exec(clientArgv(bin, sc), { timeoutMs: (sc.maxSeconds + 25) * 1000 })
    const after = await readConntrack(rl.router)
    const counters = shaper ? await shaper.counters(opts.timeScale) : null
    if (r.code !== 0)
      throw new LabError(`${sc.client} exited ${r.code}: ${r.stderr.trim()}`, { argv: r.argv, stderr: r.stderr })
    const line = r.stdout.trim().split('\n').pop() ?? ''
    const j = JSON.parse(line) as ClientResult
    const d = conntrackCountersDelta(before, after)
    failed = false
    return {
      id: sc.id ?? null,
      clash: opts.clashNote ?? null,
      shaper: rowLabel(sc),
      service,
      client: sc.client,
      family: sc.family,
      snat: sc.snat,
      lookups: j.lookups,
      failed: j.failed,
      slowOver1s: j.slow_over_1s,
      answersLost: num(j.answers_lost),
      ...d,
      p50Us: j.p50_us,
      p99Us: j.p99_us,
      aP50Us: num(j.a_p50_us),
      aaaaP50Us: num(j.aaaa_p50_us),
      elapsedS: j.elapsed_s,
      shaperCounters: counters,
      raw: j,
    }
  } finally {
    if (netem) await removeWorkaround(netem.ns, netem.iface)
    // A failed stop is reported only when the run itself succeeded (its error says more).
    const code = shaper ? await shaper.stop() : 0
    const why = `dns-shaper exited ${code}: ${shaper?.daemon.stderr.trim().slice(-2000)}`
    // eslint-disable-next-line no-unsafe-finally -- only when the body succeeded, so no error is masked
    if (code !== 0 && !failed) throw new LabError(why)
  }
}
