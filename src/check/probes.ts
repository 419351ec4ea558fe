// Every probe `dns-shaper check` runs, in one place: the interface the checks read (injected in tests),
// the real implementation over /proc, iptables, nft, tc, links, bpffs and a throwaway network namespace, and gather(), which
// runs them all at once. Read-only: nothing here changes the node (rules are tried only in a namespace
// of its own, deleted again whatever happens).
import { readdir, readFile } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import { createServer } from 'node:net'
import { networkInterfaces, release as osRelease } from 'node:os'
import { join } from 'node:path'
import type { Config, Family } from '../config/types.js'
import { parseHostPort } from '../config/host-port.js'
import { errorMessage } from '../errors.js'
import { createRunner, output, run as defaultRun, type Runner } from '../kernel/exec.js'
import {
  clashResolveDelta,
  conntrackDelta,
  DEFAULT_PROC_ROOT,
  readNfqueueStats,
  type ConntrackStats,
  type NfqueueStats,
} from '../kernel/procfs.js'
import { defaultConntrackReaders, readConntrack, type ConntrackReading } from '../kernel/conntrack-stats.js'
import { binaries, type Backend } from '../rules/backend.js'
import type { LocalAddress } from './dns-service.js'
import { RuleManager } from '../rules/manager.js'
import type { DataplaneInputs } from './dataplane.js'
import { isDaemonArgv, listenFromArgv, parseProcStatus } from './parse.js'
import type { ProbeResult } from '../probe/run.js'
import { probeFeatures, type FeatureProbe } from './feature-probe.js'
import { DEFAULT_BPF_ROOT, probeDataplane } from './dataplane-sources.js'

export { NotProbed, type FeatureProbe } from './feature-probe.js'

/** The rule manager's backend detection (it owns it): a backend with the reason it was chosen, or why none works. */
export type IptablesProbe = { backend: Backend; reason: string } | Error
/** A `dns-shaper run` process found on this node, and what its health endpoint answered. */
export interface RunningDaemon {
  pid: number
  argv: string[]
  /** Where /healthz answered (its --metrics-listen, else this check's), with the answer; undefined: nowhere. */
  health: { listen: string; status: number; body: string } | undefined
}

export interface CheckProbes {
  /** Text of /proc/self/status (Uid, CapEff). */
  selfStatus(): Promise<string>
  /** `uname -r`. */
  kernelRelease(): Promise<string>
  iptables(): Promise<IptablesProbe>
  features(): Promise<FeatureProbe>
  nfqueueStats(): Promise<NfqueueStats[]>
  /** Conntrack statistics from ctnetlink or /proc, and whether conntrack is loaded (nf_conntrack_count). */
  conntrack(): Promise<ConntrackReading>
  /** Try to listen on host:port and close again. */
  listen(hostPort: string): Promise<true | Error>
  /** `iptables-save -t raw` (and ip6tables) output. */
  rawRules(): Promise<string | Error>
  /** `tc qdisc show` output. */
  tcQdiscs(): Promise<string | Error>
  /** Addresses bound on this node's interfaces. */
  localAddresses(): Promise<LocalAddress[]>
  /** What tells the service dataplane apart: iptables nat tables, nft tables, links, IPVS, pinned maps. */
  dataplane(): Promise<DataplaneInputs>
  /** `dns-shaper run` processes other than this one: pid and argv (from /proc/PID/cmdline). */
  daemons(): Promise<{ pid: number; argv: string[] }[]>
  /** GET http://HOST:PORT/PATH with a short timeout: the status and body. */
  httpGet(hostPort: string, path: string): Promise<{ status: number; body: string }>
  sleep(ms: number): Promise<void>
  /** The race probe (check --probe): provokes clashes in namespaces of its own and counts them. */
  raceProbe?(): Promise<ProbeResult>
}

// ---------- gathering ----------

/** Two conntrack readings `seconds` apart: the later one and the per-second rate of each counter. */
export interface ConntrackSample {
  reading: ConntrackReading
  /** undefined: not sampled, or the two readings came from different sources (their names differ). */
  rates: Record<string, number> | undefined
}

/** What every probe returned; a probe that threw is its Error. */
export interface ProbeResults {
  status: string | Error
  release: string | Error
  iptables: IptablesProbe
  features: FeatureProbe | Error
  bound: NfqueueStats[] | Error
  /** undefined: the metrics listener is off. */
  listen: true | Error | undefined
  raw: string | Error
  tc: string | Error
  conntrack: ConntrackSample | Error
  local: LocalAddress[] | Error
  dataplane: DataplaneInputs | Error
  /** The dns-shaper already running here (in a pod: the one `check` was exec'd beside); undefined: none. */
  daemon: RunningDaemon | undefined
  /** undefined: the race probe was not asked for. */
  probe?: ProbeResult | Error
}

async function settle<T>(p: () => Promise<T>): Promise<T | Error> {
  try {
    return await p()
  } catch (e: unknown) {
    return e instanceof Error ? e : new Error(String(e))
  }
}

async function sampleConntrack(probes: CheckProbes, seconds: number): Promise<ConntrackSample> {
  const first = await probes.conntrack()
  if (first.stats === undefined || seconds <= 0) return { reading: first, rates: undefined }
  await probes.sleep(seconds * 1000)
  const second = await probes.conntrack()
  if (second.stats === undefined) return { reading: first, rates: undefined }
  if (second.source !== first.source) return { reading: second, rates: undefined }
  const a = first.stats
  const b = second.stats
  const rates: Record<string, number> = {}
  for (const col of b.columns) {
    if (col === 'entries') continue
    const d = conntrackDelta(a, b, col)
    if (d !== undefined) rates[col] = d / seconds
  }
  const clash = clashResolveDelta(a, b)
  if (clash !== undefined) rates.clash_resolve = clash / seconds
  return { reading: second, rates }
}

/** Addresses where a daemon's /healthz may answer: its own --metrics-listen first, then the check's. */
function healthCandidates(argv: readonly string[], config: Pick<Config, 'metricsListen'>): string[] {
  const own = listenFromArgv(argv)
  return [...new Set([own, config.metricsListen])].filter(
    (l): l is string => l !== undefined && l !== '' && l !== 'off',
  )
}

/**
 * The running dns-shaper: the `run` process that owns one of the bound queues (its netlink portid is
 * its pid) if there is one, else any `run` process; then where its health endpoint answers.
 */
export async function findDaemon(
  config: Pick<Config, 'metricsListen'>,
  probes: Pick<CheckProbes, 'daemons' | 'httpGet'>,
  bound: NfqueueStats[] | Error,
): Promise<RunningDaemon | undefined> {
  const found = await settle(() => probes.daemons())
  if (found instanceof Error || found.length === 0) return undefined
  const owners = new Set(bound instanceof Error ? [] : bound.map(q => q.portid))
  const d = found.find(p => owners.has(p.pid)) ?? found[0]!
  for (const listen of healthCandidates(d.argv, config)) {
    const target = listen.replace(/^(0\.0\.0\.0|\[::\]):/, '127.0.0.1:')
    const r = await settle(() => probes.httpGet(target, '/healthz'))
    if (!(r instanceof Error)) return { pid: d.pid, argv: d.argv, health: { listen, ...r } }
  }
  return { pid: d.pid, argv: d.argv, health: undefined }
}

/** Runs every probe at once (the conntrack sample sleeps meanwhile); never throws. */
export async function gather(
  config: Pick<Config, 'metricsListen'>,
  probes: CheckProbes,
  sampleSeconds: number,
  raceProbe = false,
): Promise<ProbeResults> {
  const raceProbeRun = probes.raceProbe
  const probe = raceProbe && raceProbeRun ? settle(() => raceProbeRun()) : Promise.resolve(undefined)
  const [status, release, iptables, features, bound, listen, raw, tc, conntrack, local, dataplane] = await Promise.all([
    settle(() => probes.selfStatus()),
    settle(() => probes.kernelRelease()),
    settle(() => probes.iptables()),
    settle(() => probes.features()),
    settle(() => probes.nfqueueStats()),
    config.metricsListen === '' ? Promise.resolve(undefined) : settle(() => probes.listen(config.metricsListen)),
    settle(() => probes.rawRules()),
    settle(() => probes.tcQdiscs()),
    settle(() => sampleConntrack(probes, sampleSeconds)),
    settle(() => probes.localAddresses()),
    settle(() => probes.dataplane()),
  ])
  return {
    status,
    release,
    iptables,
    features,
    bound,
    listen,
    raw,
    tc,
    conntrack,
    local,
    dataplane,
    daemon: await findDaemon(config, probes, bound),
    probe: await probe,
  }
}

// ---------- the real probes ----------

/** Probe commands are quick reads: 10 s is a hang, not a slow node. */
const checkRun = createRunner({ timeoutMs: 10_000 })

export function listenProbe(hostPort: string): Promise<true | Error> {
  const hp = parseHostPort(hostPort)
  if (hp === undefined) return Promise.resolve(new Error(`"${hostPort}" is not HOST:PORT`))
  return new Promise(resolve => {
    const srv = createServer()
    srv.once('error', e => resolve(e))
    srv.listen({ host: hp.host, port: hp.port, exclusive: true }, () => srv.close(() => resolve(true)))
  })
}

export interface SystemProbeOptions {
  procRoot?: string
  /** The bpffs mount point (default /sys/fs/bpf). */
  bpfRoot?: string
  ipv6?: boolean
  iptables: () => Promise<IptablesProbe>
  features: () => Promise<FeatureProbe>
  /** Defaults to `iptables-save -t raw` (+ `ip6tables-save -t raw`); pass the backend-specific one if known. */
  rawRules?: () => Promise<string>
  run?: Runner
  /** Replaces the ctnetlink read (which always asks the live kernel, whatever procRoot says): for fixtures. */
  conntrackNetlink?: () => Promise<ConntrackStats>
  /** Split-CPU pairs the race probe sends (check --probe-pairs). */
  probePairs?: number
}

export function systemProbes(o: SystemProbeOptions): CheckProbes {
  const root = o.procRoot ?? DEFAULT_PROC_ROOT
  const run = o.run ?? checkRun
  const errOr = async (f: () => Promise<string>) => {
    try {
      return await f()
    } catch (e: unknown) {
      return e instanceof Error ? e : new Error(String(e))
    }
  }
  return {
    selfStatus: () => readFile(join(root, 'self/status'), 'utf8'),
    kernelRelease: async () => osRelease(),
    iptables: o.iptables,
    features: o.features,
    nfqueueStats: () => readNfqueueStats(root),
    conntrack: () => {
      const readers = defaultConntrackReaders(root)
      return readConntrack(o.conntrackNetlink ? { ...readers, netlink: o.conntrackNetlink } : readers)
    },
    listen: listenProbe,
    rawRules: () =>
      errOr(
        o.rawRules ??
          (async () => {
            const v4 = await output(run, ['iptables-save', '-t', 'raw'])
            return o.ipv6 === false ? v4 : v4 + (await output(run, ['ip6tables-save', '-t', 'raw']).catch(() => ''))
          }),
      ),
    tcQdiscs: () => errOr(() => output(run, ['tc', 'qdisc', 'show'])),
    localAddresses: async () =>
      Object.entries(networkInterfaces()).flatMap(([ifname, addrs]) =>
        (addrs ?? []).map(a => ({ address: a.address, ifname })),
      ),
    dataplane: () => probeDataplane(run, root, o.bpfRoot ?? DEFAULT_BPF_ROOT),
    daemons: () => daemonProcesses(root),
    httpGet: healthGet,
    sleep: ms => new Promise(r => setTimeout(r, ms)),
    raceProbe: async () => (await import('../probe/run.js')).runProbe({ pairs: o.probePairs }),
  }
}

/** Every `dns-shaper run` process visible in procRoot but this one. Reads cmdlines only. */
export async function daemonProcesses(procRoot: string): Promise<{ pid: number; argv: string[] }[]> {
  const pids = (await readdir(procRoot)).filter(n => /^\d+$/.test(n)).map(Number)
  const found: { pid: number; argv: string[] }[] = []
  for (const pid of pids) {
    if (pid === process.pid) continue
    const text = await readFile(join(procRoot, String(pid), 'cmdline'), 'utf8').catch(() => '')
    const argv = text.split('\0').filter(a => a !== '')
    if (isDaemonArgv(argv)) found.push({ pid, argv })
  }
  return found
}

/** A plain GET with a 2 s budget: the daemon's health endpoint answers in microseconds or not at all. */
export function healthGet(hostPort: string, path: string): Promise<{ status: number; body: string }> {
  const hp = parseHostPort(hostPort)
  if (hp === undefined) return Promise.reject(new Error(`"${hostPort}" is not HOST:PORT`))
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hp.host, port: hp.port, path, method: 'GET', timeout: 2000 }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => {
        if (body.length < 4096) body += d
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: body.trim() }))
    })
    req.on('timeout', () => req.destroy(new Error(`no answer from ${hostPort} within 2 s`)))
    req.on('error', reject)
    req.end()
  })
}

/** Calls handed to the returned function run one after another, each once the previous settled. */
function oneAtATime(): <T>(fn: () => Promise<T>) => Promise<T> {
  let last: Promise<unknown> = Promise.resolve()
  return fn => {
    const next = last.then(fn, fn)
    last = next.catch(() => undefined)
    return next
  }
}

/**
 * The probes of a real node: backend detection by the rule manager, raw rules read with that backend.
 * Bounded cost: the commands that read tables run one at a time. Each iptables save child holds the
 * whole table it prints (~120 MiB beside 100k kube-proxy rules, iptables 1.8.9), in the pod memory
 * limit check shares with the daemon; backend detection and the dataplane probe both read every table,
 * and side by side they took check's process tree to 302 MiB beside 100k legacy nat rules (2026-12-07).
 */
export function systemProbesFor(config: Config, run: Runner = defaultRun, probePairs?: number): CheckProbes {
  const rules = new RuleManager({ config })
  const tables = oneAtATime()
  let backend: Promise<IptablesProbe> | undefined
  const detect = (): Promise<IptablesProbe> =>
    (backend ??= tables(() => rules.detectBackend()).then(
      d => ({ backend: d.backend, reason: d.reason }),
      (e: unknown) => (e instanceof Error ? e : new Error(errorMessage(e))),
    ))
  const save = async (family: Family): Promise<string> => {
    const d = await detect()
    const b = d instanceof Error ? 'nft' : d.backend
    const argv = [binaries(b, family).save, '-t', 'raw']
    const r = await tables(() => run(argv))
    if (r.code !== 0) throw new Error(`${argv[0]}: ${r.stderr.trim()}`)
    return r.stdout
  }
  return systemProbes({
    ipv6: config.ipv6,
    probePairs,
    // The dataplane's saves (and its quick reads, tc's too) wait their turn behind detection.
    run: (argv, opts) => tables(() => checkRun(argv, opts)),
    iptables: detect,
    features: async () => {
      const d = await detect()
      const status = await readFile('/proc/self/status', 'utf8').catch(() => undefined)
      const capEff = status === undefined ? undefined : parseProcStatus(status).capEff
      return probeFeatures(d instanceof Error ? 'nft' : d.backend, run, capEff)
    },
    rawRules: async () =>
      (config.ipv4 ? await save('ipv4') : '') + (config.ipv6 ? await save('ipv6').catch(() => '') : ''),
  })
}
