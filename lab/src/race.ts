// Conntrack race lab: a kube-proxy-like DNS service (random DNAT to three unbound endpoints) on the
// lab router, C clients in the client namespace, and the router's conntrack counters around each run.
// It only touches namespaces it creates (through createLab) and never the root namespace, except the lab
// kernel's own clash switch (clash-switch.ts), which exists only on the kernel-lab kernel and is put back.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFile } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { parseConntrackStats } from '../../src/kernel/procfs.js'
import { LabError, killAndWait } from './netns.js'
import type { Netns } from './netns.js'
import { createLab, waitFor } from './topology.js'
import type { Lab } from './topology.js'
import { startUnbound } from './unbound.js'
import { CLI_PATH, repoRoot } from './paths.js'
import type { UnboundHandle } from './unbound.js'
import { applyServiceMode, ipvsAvailable, SERVICE, type ServiceMode } from './kube-proxy-modes.js'
import { applyWorkaround, NetemUnavailable, removeWorkaround } from './netem-workaround.js'
import { applyClashPlan, fsSwitchIo, LAB_SWITCH_PATH, planClashHandling } from './clash-switch.js'
import type { ClashHandling } from './clash-switch.js'

/** A name every endpoint answers with A and AAAA (unbound local-data). */
export const LOOKUP_NAME = 'host1.example.test'
const METRICS_PORT = 9363

export { CLI_PATH } from './paths.js'
// The service rules live with the other kube-proxy modes; re-exported for the lab's callers.
export { SERVICE, serviceNatRules, type ServiceMode } from './kube-proxy-modes.js'
export const CLIENTS_DIR = join(repoRoot(), 'lab/clients')

// ---------------------------------------------------------------------------------------------
// Rules (pure, so they can be read and tested)

/** The NFQUEUE rule placed after conntrack (mangle), the placement that widens the race. */
export function mangleQueueRules(queue = 0): string {
  return [
    '*mangle',
    `-A PREROUTING -p udp --dport 53 -j NFQUEUE --queue-num ${queue} --queue-bypass`,
    'COMMIT',
    '',
  ].join('\n')
}

// ---------------------------------------------------------------------------------------------
// Topology

export interface RaceLab {
  lab: Lab
  router: Netns
  client: Netns
  endpoints: { ipv4: string[]; ipv6: string[] }
  unbounds: UnboundHandle[]
  /** Current server-side SNAT setting. */
  snat: boolean
  /** Which kube-proxy mode translates the service now. */
  service: ServiceMode
  /** Switches the service to a kube-proxy mode (iptables, nftables, IPVS), with or without masquerade. */
  setService(mode: ServiceMode, snat: boolean): Promise<void>
  /** setService with the current mode. */
  setSnat(on: boolean): Promise<void>
  destroy(): Promise<void>
}

/**
 * resolv.conf options of the client: one attempt, 1 s timeout, so a dropped query shows as a lookup
 * slower than 1 s instead of libc's 5 s x 2 retries.
 */
export const RESOLV_OPTIONS = ['attempts:1', 'timeout:1'] as const

export async function createRaceLab(
  opts: { snat?: boolean; service?: ServiceMode; timeScale?: number } = {},
): Promise<RaceLab> {
  // timeScale stretches every readiness wait (links, unbound, the service check) for slow guests (TCG).
  const scale = opts.timeScale ?? 1
  const lab = await createLab({ extraServers: 2, settleTimeoutMs: 5000 * scale })
  const unbounds: UnboundHandle[] = []
  try {
    for (const s of lab.servers) {
      unbounds.push(
        await startUnbound({ ns: s.ns, addresses: [s.ipv4, s.ipv6], hosts: 10, readyTimeoutMs: 10_000 * scale }),
      )
    }
    const endpoints = { ipv4: lab.servers.map(s => s.ipv4), ipv6: lab.servers.map(s => s.ipv6) }
    const router = lab.router.ns
    let applied = false
    // The service address is on no link (IPVS mode binds it on kube-ipvs0): the client reaches it by
    // its default route and the router DNATs it in PREROUTING, before routing, as kube-proxy does.
    const rl: RaceLab = {
      lab,
      router,
      client: lab.client.ns,
      endpoints,
      unbounds,
      snat: false,
      service: 'iptables',
      async setService(mode: ServiceMode, snat: boolean): Promise<void> {
        const target = { router, service: SERVICE, endpoints, serverIface: lab.router.serverIface }
        await applyServiceMode(target, applied ? rl.service : undefined, mode, snat)
        applied = true
        rl.service = mode
        rl.snat = snat
      },
      setSnat(on: boolean): Promise<void> {
        return rl.setService(rl.service, on)
      },
      async destroy(): Promise<void> {
        await Promise.allSettled(unbounds.map(u => u.stop()))
        await lab.destroy()
      },
    }
    await rl.setService(opts.service ?? 'iptables', opts.snat ?? false)
    lab.client.ns.writeResolvConf([SERVICE.ipv4], { options: RESOLV_OPTIONS })
    // Prove the service path works on both families before measuring anything.
    for (const svc of [SERVICE.ipv4, SERVICE.ipv6]) {
      const ok = await waitFor(
        async () => {
          const r = await lab.client.ns.exec(['dig', `@${svc}`, '+time=1', '+tries=1', '+short', LOOKUP_NAME, 'A'], {
            timeoutMs: 3000,
          })
          return r.code === 0 && r.stdout.trim() !== ''
        },
        10_000 * scale,
        100,
      )
      if (!ok) throw new LabError(`DNS service ${svc} does not answer through the router's DNAT`)
    }
    return rl
  } catch (e: unknown) {
    await Promise.allSettled(unbounds.map(u => u.stop()))
    await lab.destroy().catch(() => undefined)
    throw e
  }
}

// ---------------------------------------------------------------------------------------------
// Conntrack counters of the router namespace

export interface ConntrackCounters {
  clashResolve: number
  insertFailed: number
  drop: number
}

export async function readConntrack(ns: Netns): Promise<ConntrackCounters> {
  const r = await ns.execOk(['cat', '/proc/net/stat/nf_conntrack'])
  const s = parseConntrackStats(r.stdout)
  return { clashResolve: s.clashResolve ?? 0, insertFailed: s.insertFailed ?? 0, drop: s.drop ?? 0 }
}

/** Per-CPU counters are 32-bit: a delta survives one wrap. */
export function conntrackCountersDelta(before: ConntrackCounters, after: ConntrackCounters): ConntrackCounters {
  const d = (a: number, b: number): number => (b >= a ? b - a : b + 2 ** 32 - a)
  return {
    clashResolve: d(before.clashResolve, after.clashResolve),
    insertFailed: d(before.insertFailed, after.insertFailed),
    drop: d(before.drop, after.drop),
  }
}

/** Empties the router's conntrack table (both families) so a run starts with no entries. */
export async function flushConntrack(ns: Netns): Promise<void> {
  for (const fam of ['ipv4', 'ipv6']) {
    const r = await ns.exec(['conntrack', '-F', '-f', fam])
    // "0 flow entries have been deleted" exits 0; an empty table on old versions can exit 1.
    if (r.code !== 0 && !/flow entries/i.test(r.stderr)) {
      throw new LabError(`conntrack -F -f ${fam} failed in ${ns.name}: ${r.stderr.trim()}`, {
        hint: 'install the conntrack package',
      })
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Clients

export type ClientKind = 'split' | 'pair' | 'gai-glibc' | 'gai-musl'

export interface ClientBins {
  dir: string
  bins: Partial<Record<ClientKind, string>>
  remove(): void
}

function run(
  file: string,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise(resolve => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0
      resolve({ code, stdout: String(stdout), stderr: String(stderr) })
    })
  })
}

/** Builds lab/clients into a temp dir (glibc always, musl when musl-gcc exists). */
export async function buildClients(): Promise<ClientBins> {
  const dir = mkdtempSync(join(tmpdir(), 'dnss-race-clients-'))
  const remove = (): void => rmSync(dir, { recursive: true, force: true })
  const r = await run('make', ['-s', '-C', CLIENTS_DIR, `OUT=${dir}`], 120_000)
  if (r.code !== 0) {
    remove()
    throw new LabError(`building lab/clients failed: ${r.stderr.trim()}`, { hint: 'install gcc and make' })
  }
  const bins: ClientBins['bins'] = {
    split: join(dir, 'split_cpu_client'),
    pair: join(dir, 'pair_client'),
    'gai-glibc': join(dir, 'gai_client'),
  }
  const m = await run('make', ['-s', '-C', CLIENTS_DIR, `OUT=${dir}`, 'musl'], 120_000)
  if (m.code === 0) bins['gai-musl'] = join(dir, 'gai_client-musl')
  return { dir, bins, remove }
}

/** The clients' JSON line (fields differ a little between clients). */
export interface ClientResult {
  lookups: number
  failed: number
  answers_lost?: number
  slow_over_1s: number
  p50_us: number
  p99_us: number
  max_us: number
  a_p50_us?: number
  a_p99_us?: number
  aaaa_p50_us?: number
  aaaa_p99_us?: number
  no_a?: number
  no_aaaa?: number
  rcode_errors?: number
  send_errors?: number
  elapsed_s: number
  [k: string]: unknown
}

export interface ClientRun {
  client: ClientKind
  family: 4 | 6
  lookups: number
  threads: number
  maxSeconds: number
}

export function clientArgv(bin: string, c: ClientRun): string[] {
  const server = c.family === 4 ? SERVICE.ipv4 : SERVICE.ipv6
  const common = ['--count', String(c.lookups), '--threads', String(c.threads), '--max-seconds', String(c.maxSeconds)]
  if (c.client === 'gai-glibc' || c.client === 'gai-musl') {
    // getaddrinfo goes to the resolv.conf nameserver (the IPv4 service); --server only checks that.
    return [bin, '--name', LOOKUP_NAME, '--server', SERVICE.ipv4, ...common]
  }
  return [bin, '--server', server, '--name', LOOKUP_NAME, '--timeout-ms', '1000', ...common]
}

// ---------------------------------------------------------------------------------------------
// The shaper under test

export type ShaperSetup =
  | { kind: 'none' }
  | { kind: 'raw'; delayMs: number; mode: 'fixed' | 'pair'; args?: string[] }
  | { kind: 'mangle'; delayMs: number; args?: string[] }
  /**
   * The published tc workaround (netem-workaround.ts), no dns-shaper: on the node's egress toward
   * the DNS endpoints (as published), or on the pod's own egress, before the node's conntrack.
   */
  | { kind: 'netem'; placement: 'node-egress' | 'pod-egress' }

/** The setups that run the dns-shaper daemon. */
export type DaemonSetup = Extract<ShaperSetup, { kind: 'raw' | 'mangle' }>

export function shaperLabel(s: ShaperSetup): string {
  if (s.kind === 'none') return 'no shaper'
  if (s.kind === 'netem') return s.placement === 'node-egress' ? 'netem node egress' : 'netem pod egress'
  const extra = s.args?.length ? ` ${s.args.join(' ')}` : ''
  if (s.kind === 'raw')
    return (s.mode === 'pair' ? `raw pair (max ${s.delayMs} ms)` : `raw fixed ${s.delayMs} ms`) + extra
  return `mangle fixed ${s.delayMs} ms${extra}`
}

export function daemonArgs(s: DaemonSetup, metricsHost: string): string[] {
  const a = [
    'run',
    '--hooks',
    'prerouting',
    '--delay',
    String(s.delayMs),
    '--metrics-listen',
    `${metricsHost}:${METRICS_PORT}`,
  ]
  if (s.kind === 'raw') a.push('--mode', s.mode)
  else a.push('--mode', 'fixed', '--rules', 'none')
  return [...a, ...(s.args ?? [])]
}

/** The daemon (dist/cli.js) running in the router namespace, plus the mangle rule when asked. */
export class RunningShaper {
  readonly child: ChildProcess
  stderr = ''
  readonly #rl: RaceLab
  readonly #setup: DaemonSetup
  #exit: Promise<number | null>

  private constructor(rl: RaceLab, setup: DaemonSetup, cli: string) {
    this.#rl = rl
    this.#setup = setup
    this.child = rl.router.spawn([process.execPath, cli, ...daemonArgs(setup, rl.lab.router.clientIpv4)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    this.child.stderr?.setEncoding('utf8')
    this.child.stderr?.on('data', (d: string) => {
      if (this.stderr.length < 1 << 20) this.stderr += d
    })
    this.#exit = new Promise(r => this.child.once('exit', code => r(code)))
  }

  static async start(rl: RaceLab, setup: DaemonSetup, cli = CLI_PATH, readyMs = 15_000): Promise<RunningShaper> {
    const s = new RunningShaper(rl, setup, cli)
    let exited = false
    void s.#exit.then(() => {
      exited = true
    })
    const ready = await waitFor(async () => exited || /"msg":"ready"/.test(s.stderr), readyMs, 50)
    if (exited || !ready) {
      await killAndWait(s.child)
      throw new LabError(`dns-shaper did not become ready in ${rl.router.name}: ${s.stderr.trim().slice(-2000)}`, {
        hint: 'build first: npx node-gyp rebuild && npx tsc -p tsconfig.build.json',
      })
    }
    if (setup.kind === 'mangle') {
      await rl.router.execOk(['iptables-restore', '--noflush'], { input: mangleQueueRules() })
      await rl.router.execOk(['ip6tables-restore', '--noflush'], { input: mangleQueueRules() })
    }
    return s
  }

  /** Counters of the data plane, from its /metrics (curl inside the router namespace). */
  async counters(): Promise<Record<string, number>> {
    const url = `http://${this.#rl.lab.router.clientIpv4}:${METRICS_PORT}/metrics`
    const r = await this.#rl.router.exec(['curl', '-s', '-m', '5', url], { timeoutMs: 8000 })
    return parseShaperMetrics(r.stdout)
  }

  /** Removes the mangle rule (if any), then SIGTERM; resolves with the exit code. */
  async stop(): Promise<number | null> {
    if (this.#setup.kind === 'mangle') {
      await this.#rl.router.exec(['iptables', '-t', 'mangle', '-F', 'PREROUTING'])
      await this.#rl.router.exec(['ip6tables', '-t', 'mangle', '-F', 'PREROUTING'])
    }
    await killAndWait(this.child, 10_000)
    return this.#exit
  }
}

/** The few shaper counters the race report shows, summed over label sets. */
export function parseShaperMetrics(text: string): Record<string, number> {
  const out: Record<string, number> = {
    held: 0,
    accepted: 0,
    pairReleased: 0,
    deadlineReleased: 0,
    pairEvictions: 0,
    bypassed: 0,
  }
  for (const line of text.split('\n')) {
    const m = /^(dns_shaper_[a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line)
    if (!m) continue
    const [, name, labels = '', v] = m
    const n = Number(v)
    if (name === 'dns_shaper_packets_total') {
      const action = /action="([a-z]+)"/.exec(labels)?.[1]
      if (action === 'held' || action === 'accepted' || action === 'bypassed') out[action]! += n
    } else if (name === 'dns_shaper_pair_released_total') out['pairReleased']! += n
    else if (name === 'dns_shaper_deadline_released_total') out['deadlineReleased']! += n
    else if (name === 'dns_shaper_pair_evictions_total') out['pairEvictions']! += n
  }
  return out
}

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

/** The row's label: the matrix row letter, the shaper, and stock clash handling when asked for. */
export function rowLabel(sc: Pick<RaceScenario, 'id' | 'shaper' | 'clash'>): string {
  const id = sc.id ? `(${sc.id}) ` : ''
  return `${id}${shaperLabel(sc.shaper)}${sc.clash === 'stock' ? ', stock' : ''}`
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
    const counters = shaper ? await shaper.counters() : null
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
    // eslint-disable-next-line no-unsafe-finally -- only when the body succeeded, so no error is masked
    if (code !== 0 && !failed) throw new LabError(`dns-shaper exited ${code}: ${shaper?.stderr.trim().slice(-2000)}`)
  }
}

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
        modeRows.push({ ...splitRow(shaper, 4, snat), service })
        if (quick) continue
        for (const client of ['gai-glibc', 'gai-musl'] as const)
          modeRows.push({ shaper, client, family: 4, lookups: gai, threads: 4, maxSeconds, snat, service })
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

// ---------------------------------------------------------------------------------------------
// Table

const fmtMs = (us: number | null): string => (us === null ? '-' : (us / 1000).toFixed(2))

export function tableHeader(): string {
  return formatCells([
    'shaper',
    'client',
    'service',
    'fam',
    'snat',
    'lookups',
    'failed',
    '>1s',
    'lost',
    'clashres',
    'ins_fail',
    'drop',
    'p50 ms',
    'p99 ms',
    'A p50',
    'AAAA p50',
    'held',
    'pair_rel',
    'deadline',
  ])
}

export function tableRow(r: RaceRow): string {
  return formatCells([
    r.shaper,
    r.client,
    r.service,
    `v${r.family}`,
    r.snat ? 'yes' : 'no',
    String(r.lookups),
    String(r.failed),
    String(r.slowOver1s),
    r.answersLost === null ? '-' : String(r.answersLost),
    String(r.clashResolve),
    String(r.insertFailed),
    String(r.drop),
    fmtMs(r.p50Us),
    fmtMs(r.p99Us),
    fmtMs(r.aP50Us),
    fmtMs(r.aaaaP50Us),
    ...(['held', 'pairReleased', 'deadlineReleased'] as const).map(k =>
      r.shaperCounters ? String(r.shaperCounters[k] ?? 0) : '-',
    ),
  ])
}

const WIDTHS = [22, 10, 12, 4, 5, 8, 7, 5, 6, 9, 9, 5, 8, 8, 7, 8, 6, 8, 8]
function formatCells(cells: string[]): string {
  return cells.map((c, i) => (i < 3 ? c.padEnd(WIDTHS[i]!) : c.padStart(WIDTHS[i]!))).join(' ')
}

export function formatTable(rows: readonly RaceRow[]): string {
  return [tableHeader(), ...rows.map(tableRow)].join('\n')
}
