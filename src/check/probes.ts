// Every probe `dns-shaper check` runs, in one place: the interface the checks read (injected in tests),
// the real implementation over /proc, iptables, nft, tc, links, bpffs and a throwaway network namespace, and gather(), which
// runs them all at once. Read-only: nothing here changes the node (rules are tried only in a namespace
// of its own, deleted again whatever happens).
import { randomBytes } from 'node:crypto'
import { readdir, readFile, statfs } from 'node:fs/promises'
import { createServer } from 'node:net'
import { networkInterfaces, release as osRelease } from 'node:os'
import { join } from 'node:path'
import type { Config, Family } from '../config/types.js'
import { parseHostPort } from '../config/host-port.js'
import { errorMessage } from '../errors.js'
import { createRunner, netnsWrap, output, run as defaultRun, type Runner } from '../kernel/exec.js'
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
import type { ProbeResult } from '../probe/run.js'

/** The rule manager's backend detection (it owns it): a backend with the reason it was chosen, or why none works. */
export type IptablesProbe = { backend: Backend; reason: string } | Error
/** Whether NFQUEUE and xt_bpf rules can actually be used (tried in a throwaway network namespace). */
export interface FeatureProbe {
  nfqueue: true | Error
  xtBpf: true | Error
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
    sleep: ms => new Promise(r => setTimeout(r, ms)),
    raceProbe: async () => (await import('../probe/run.js')).runProbe({ pairs: o.probePairs }),
  }
}

// ---------- the service dataplane ----------

export const DEFAULT_BPF_ROOT = '/sys/fs/bpf'
/** statfs(2) f_type of a bpf filesystem (include/uapi/linux/magic.h). */
const BPF_FS_MAGIC = 0xcafe4a11

const isErrno = (e: unknown, code: string): boolean =>
  typeof e === 'object' && e !== null && (e as { code?: unknown }).code === code

/** stdout of argv, or an Error naming the command; `missing` when the program is not installed. */
async function commandText(
  run: Runner,
  argv: string[],
): Promise<{ text: string } | { error: Error; missing: boolean }> {
  try {
    return { text: await output(run, argv) }
  } catch (e: unknown) {
    const missing = /\bENOENT\b/.test(errorMessage(e))
    return { error: missing ? new Error(`${argv[0]} is not installed`) : new Error(errorMessage(e)), missing }
  }
}

/**
 * kube-proxy may use either backend whatever dns-shaper picked: the nat table of every one present.
 * Legacy save runs without -t, which would load the nat table into the kernel.
 */
async function iptablesNat(run: Runner): Promise<string | Error> {
  const dumps = await Promise.all(
    [
      ['iptables-nft-save', '-t', 'nat'],
      ['ip6tables-nft-save', '-t', 'nat'],
      ['iptables-legacy-save'],
      ['ip6tables-legacy-save'],
    ].map(argv => commandText(run, argv)),
  )
  const texts = dumps.flatMap(d => ('text' in d ? [d.text] : []))
  if (texts.length > 0) return texts.join('\n')
  const failed = dumps.flatMap(d => ('error' in d && !d.missing ? [d.error.message] : []))
  return new Error(failed.length > 0 ? failed.join('; ') : 'no iptables-save is installed')
}

/** Names under the bpffs mount, tc/globals included (where Cilium and Calico pin their maps). */
async function pinnedMaps(root: string): Promise<string[] | Error> {
  try {
    if ((await statfs(root)).type !== BPF_FS_MAGIC) return new Error(`bpffs is not mounted at ${root}`)
    const top = await readdir(root)
    const globals = await readdir(join(root, 'tc/globals')).catch((e: unknown) => {
      if (isErrno(e, 'ENOENT')) return [] as string[]
      throw e
    })
    return [...top, ...globals.map(g => `tc/globals/${g}`)]
  } catch (e: unknown) {
    return isErrno(e, 'ENOENT')
      ? new Error(`bpffs is not mounted at ${root}`)
      : new Error(`${root}: ${errorMessage(e)}`)
  }
}

/** Every source classifyDataplanes reads, each an Error of its own when unreadable. Read-only. */
export async function probeDataplane(run: Runner, procRoot: string, bpfRoot: string): Promise<DataplaneInputs> {
  const text = async (argv: string[]): Promise<string | Error> => {
    const r = await commandText(run, argv)
    return 'text' in r ? r.text : r.error
  }
  const [iptablesNatText, nftTables, links, ipvs, bpf] = await Promise.all([
    iptablesNat(run),
    text(['nft', 'list', 'tables']),
    text(['ip', '-o', 'link', 'show']),
    readFile(join(procRoot, 'net/ip_vs'), 'utf8').catch((e: unknown) =>
      isErrno(e, 'ENOENT') ? null : new Error(errorMessage(e)),
    ),
    pinnedMaps(bpfRoot),
  ])
  return { iptablesNat: iptablesNatText, nftTables, links, ipvs, bpf }
}

async function ok(run: Runner, argv: string[]): Promise<true | Error> {
  try {
    const r = await run(argv, { timeoutMs: 10000 })
    return r.code === 0 ? true : new Error(`${argv.slice(3).join(' ')}: ${r.stderr.trim() || `exit ${String(r.code)}`}`)
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e))
  }
}

/** Adds an NFQUEUE rule and an xt_bpf rule in a new namespace, reports which worked, deletes the namespace. */
export async function probeFeatures(backend: Backend, run: Runner = defaultRun): Promise<FeatureProbe> {
  const ns = `dnss-chk-${randomBytes(3).toString('hex')}`
  const add = await ok(run, ['ip', 'netns', 'add', ns])
  if (add !== true) {
    const e = new Error(`cannot create a throwaway network namespace to test rules: ${add.message}`)
    return { nfqueue: e, xtBpf: e }
  }
  try {
    const ipt = [
      ...netnsWrap(ns),
      binaries(backend, 'ipv4').iptables,
      '-w',
      '5',
      '-t',
      'raw',
      '-A',
      'OUTPUT',
      '-p',
      'udp',
      '--dport',
      '53',
    ]
    const nfqueue = await ok(run, [...ipt, '-j', 'NFQUEUE', '--queue-num', '0', '--queue-bypass'])
    // The smallest valid classic BPF program: "ret #0".
    const xtBpf = await ok(run, [...ipt, '-m', 'bpf', '--bytecode', '1,6 0 0 0', '-j', 'ACCEPT'])
    return { nfqueue, xtBpf }
  } finally {
    await run(['ip', 'netns', 'del', ns], { timeoutMs: 10000 }).catch(() => undefined)
  }
}

/** The probes of a real node: backend detection by the rule manager, raw rules read with that backend. */
export function systemProbesFor(config: Config, run: Runner = defaultRun, probePairs?: number): CheckProbes {
  const rules = new RuleManager({ config })
  let backend: Promise<IptablesProbe> | undefined
  const detect = (): Promise<IptablesProbe> =>
    (backend ??= rules.detectBackend().then(
      d => ({ backend: d.backend, reason: d.reason }),
      (e: unknown) => (e instanceof Error ? e : new Error(errorMessage(e))),
    ))
  const save = async (family: Family): Promise<string> => {
    const d = await detect()
    const b = d instanceof Error ? 'nft' : d.backend
    const argv = [binaries(b, family).save, '-t', 'raw']
    const r = await run(argv)
    if (r.code !== 0) throw new Error(`${argv[0]}: ${r.stderr.trim()}`)
    return r.stdout
  }
  return systemProbes({
    ipv6: config.ipv6,
    probePairs,
    iptables: detect,
    features: async () => {
      const d = await detect()
      return probeFeatures(d instanceof Error ? 'nft' : d.backend, run)
    },
    rawRules: async () =>
      (config.ipv4 ? await save('ipv4') : '') + (config.ipv6 ? await save('ipv6').catch(() => '') : ''),
  })
}
