// The race probe (`dns-shaper check --probe`, `dns-shaper probe`): builds client → router → server in
// three network namespaces of its own, DNATs a service address at random to three endpoints in the
// router (as kube-proxy does), sends split-CPU A/AAAA pairs through it with masquerade off and then on,
// and reads the router's conntrack counters before and after. The namespaces are anonymous, each held
// by its agent process (agent.ts, started through the addon's dns-shaper-netns helper), so they vanish
// with the agents whatever happens to this process; nothing is done in the node's own namespace.
// Needs CAP_SYS_ADMIN (new namespaces) and two CPUs.
import { readFile } from 'node:fs/promises'
import { release as osRelease } from 'node:os'
import { errorMessage } from '../errors.js'
import { hasCap, parseProcStatus } from '../check/parse.js'
import type { ConntrackStats } from '../kernel/procfs.js'
import { Agent } from './agent-client.js'
import { DEFAULT_PROBE_PAIRS, MAX_PROBE_PAIRS } from './limits.js'
import { notRun, probeVerdict, type PhaseInput, type ProbeVerdict } from './verdict.js'

export const CAP_SYS_ADMIN = 21
/** Documentation addresses (RFC 5737), private to the probe's namespaces. */
export const PROBE_ADDR = {
  service: '192.0.2.53',
  client: '198.51.100.2',
  routerClientSide: '198.51.100.1',
  routerServerSide: '203.0.113.1',
  endpoints: ['203.0.113.53', '203.0.113.54', '203.0.113.55'],
} as const
/**
 * The service listens on 53; its endpoints on a port above 1023, as a Service's targetPort may: binding
 * below 1024 would need CAP_NET_BIND_SERVICE, one more capability than the probe otherwise needs.
 */
export const ENDPOINT_PORT = 10053

export interface ProbeOptions {
  /** Pairs in all, split between masquerade off and on (300). */
  pairs?: number
  /** Wait for both answers of a pair this long, no retry (1000 ms). */
  timeoutMs?: number
  /** Text of /proc/self/status (tests inject it). */
  selfStatus?: () => Promise<string>
  /** CPUs this process may run on (tests inject it). */
  cpus?: () => Promise<number[]>
  /** Progress lines for the operator (stderr). */
  log?: (line: string) => void
  /** How to write the service DNAT: iptables, else nft (auto, the default); or only one of them. */
  dnat?: 'auto' | 'iptables' | 'nft'
}

export interface ProbeResult {
  verdict: ProbeVerdict
  /** `uname -r` of the kernel probed. */
  release: string
  /** How the service DNAT was written in the router namespace. */
  rules?: 'iptables' | 'nft'
  /** The two CPUs the A and the AAAA were sent from. */
  cpus?: [number, number]
  /** Queries the probe's DNS server answered, warm-up pairs excluded: a cross-check of `answered`. */
  served?: number
  elapsedSeconds: number
}

/** kube-proxy's iptables mode in miniature: each endpoint with probability 1/(endpoints left). */
export function iptablesService(): string {
  const eps = PROBE_ADDR.endpoints
  const lines = ['*nat', ':DNSS-PROBE-SVC - [0:0]']
  lines.push(`-A PREROUTING -d ${PROBE_ADDR.service}/32 -p udp -m udp --dport 53 -j DNSS-PROBE-SVC`)
  eps.forEach((ep, i) => {
    const left = eps.length - i
    const match = left > 1 ? `-m statistic --mode random --probability ${(1 / left).toFixed(5)} ` : ''
    lines.push(`-A DNSS-PROBE-SVC -p udp ${match}-j DNAT --to-destination ${ep}:${ENDPOINT_PORT}`)
  })
  return [...lines, 'COMMIT', ''].join('\n')
}

/** kube-proxy's nftables mode in miniature: `numgen random mod N` to the endpoints. */
export function nftService(): string {
  const map = PROBE_ADDR.endpoints.map((ep, i) => `${i} : ${ep}`).join(', ')
  return `table ip dnss_probe {
  chain dstnat {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr ${PROBE_ADDR.service} udp dport 53 dnat to numgen random mod ${PROBE_ADDR.endpoints.length} map { ${map} } : ${ENDPOINT_PORT}
  }
  chain srcnat {
    type nat hook postrouting priority srcnat; policy accept;
  }
}
`
}

interface Namespaces {
  client: Agent
  router: Agent
  server: Agent
}

async function wire(ns: Namespaces, dnat: 'auto' | 'iptables' | 'nft'): Promise<'iptables' | 'nft'> {
  const { client, router, server } = ns
  for (const a of [client, router, server]) await a.exec(['ip', 'link', 'set', 'lo', 'up'])
  // Each veth is created inside an agent's namespace with its peer moved straight into the router's:
  // no interface ever appears in the node's namespace.
  const rpid = String(router.pid)
  await client.exec(['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'veth-c', 'netns', rpid])
  await server.exec(['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'veth-s', 'netns', rpid])
  const up = async (a: Agent, dev: string, addrs: readonly string[]) => {
    for (const addr of addrs) await a.exec(['ip', 'addr', 'add', `${addr}/24`, 'dev', dev])
    await a.exec(['ip', 'link', 'set', dev, 'up'])
  }
  await up(router, 'veth-c', [PROBE_ADDR.routerClientSide])
  await up(router, 'veth-s', [PROBE_ADDR.routerServerSide])
  await up(client, 'eth0', [PROBE_ADDR.client])
  await up(server, 'eth0', PROBE_ADDR.endpoints)
  await client.exec(['ip', 'route', 'add', 'default', 'via', PROBE_ADDR.routerClientSide])
  await server.exec(['ip', 'route', 'add', 'default', 'via', PROBE_ADDR.routerServerSide])
  try {
    await router.sysctl('net.ipv4.ip_forward', '1')
  } catch (e: unknown) {
    throw new Error(
      `cannot enable forwarding in the probe's router namespace (${errorMessage(e)}); new namespaces inherit ` +
        "the node's net.ipv4.ip_forward, so set it to 1 on the node or give the probe a writable /proc/sys",
    )
  }
  await server.serve([...PROBE_ADDR.endpoints], ENDPOINT_PORT)
  const writers = {
    iptables: () => router.exec(['iptables-restore', '-w', '5'], iptablesService()),
    nft: () => router.exec(['nft', '-f', '-'], nftService()),
  }
  const errors: string[] = []
  for (const how of dnat === 'auto' ? (['iptables', 'nft'] as const) : [dnat]) {
    try {
      await writers[how]()
      return how
    } catch (e: unknown) {
      errors.push(errorMessage(e))
    }
  }
  throw new Error(`cannot write the probe's service DNAT: ${errors.join('; ')}`)
}

async function masquerade(router: Agent, rules: 'iptables' | 'nft'): Promise<void> {
  if (rules === 'iptables')
    await router.exec(['iptables', '-w', '5', '-t', 'nat', '-A', 'POSTROUTING', '-o', 'veth-s', '-j', 'MASQUERADE'])
  else await router.exec(['nft', 'add', 'rule', 'ip', 'dnss_probe', 'srcnat', 'oifname', 'veth-s', 'masquerade'])
}

const statsOf = async (router: Agent): Promise<ConntrackStats | undefined> => (await router.stats()).stats

/** Runs the probe; never throws: a failure is an inconclusive verdict that says what failed. */
export async function runProbe(opts: ProbeOptions = {}): Promise<ProbeResult> {
  const t0 = process.hrtime.bigint()
  const release = osRelease()
  const elapsed = () => Math.round(Number(process.hrtime.bigint() - t0) / 1e6) / 1000
  const done = (verdict: ProbeVerdict, extra: Partial<ProbeResult> = {}): ProbeResult => ({
    verdict,
    release,
    ...extra,
    elapsedSeconds: elapsed(),
  })
  const log = opts.log ?? (() => {})
  const pairs = Math.min(Math.max(2, Math.round(opts.pairs ?? DEFAULT_PROBE_PAIRS)), MAX_PROBE_PAIRS)
  const timeoutMs = opts.timeoutMs ?? 1000

  let status
  try {
    status = parseProcStatus(await (opts.selfStatus ?? (() => readFile('/proc/self/status', 'utf8')))())
  } catch (e: unknown) {
    return done(notRun('failed', `cannot read /proc/self/status: ${errorMessage(e)}`))
  }
  if (!hasCap(status.capEff, CAP_SYS_ADMIN))
    return done(notRun('no-privilege', `uid ${status.uid ?? '?'} without CAP_SYS_ADMIN`))
  let cpus: number[]
  try {
    cpus = await (opts.cpus ?? (async () => (await import('../dataplane/nfqueue.js')).allowedCpus()))()
  } catch (e: unknown) {
    return done(notRun('failed', `cannot read this process's CPUs: ${errorMessage(e)}`))
  }
  if (cpus.length < 2) return done(notRun('one-cpu', `this process may run on CPU ${cpus.join(',') || 'none'} only`))
  const pinned: [number, number] = [cpus[0]!, cpus[1]!]

  const agents: Agent[] = []
  try {
    log('probe: creating its namespaces (client, router, server)')
    const started = await Promise.allSettled(['client', 'router', 'server'].map(role => Agent.start(role)))
    for (const s of started) if (s.status === 'fulfilled') agents.push(s.value)
    for (const s of started) if (s.status === 'rejected') throw s.reason
    const [client, router, server] = agents as [Agent, Agent, Agent]
    const rules = await wire({ client, router, server }, opts.dnat ?? 'auto')
    // A few pairs first, not counted: neighbour resolution and the first conntrack entries.
    await client.send({ server: PROBE_ADDR.service, pairs: 4, cpus: pinned, timeoutMs, maxSeconds: 10 })
    const warm = (await server.served()).answered
    const phases: PhaseInput[] = []
    const half = [Math.ceil(pairs / 2), Math.floor(pairs / 2)]
    for (const [i, masq] of [false, true].entries()) {
      if (masq) await masquerade(router, rules)
      log(`probe: ${half[i]} split-CPU pairs, masquerade ${masq ? 'on' : 'off'}`)
      const before = await statsOf(router)
      const sent = await client.send({
        server: PROBE_ADDR.service,
        pairs: half[i],
        cpus: pinned,
        timeoutMs,
        maxSeconds: 120,
      })
      const after = await statsOf(router)
      phases.push({
        masquerade: masq,
        pairs: sent.pairs,
        queries: sent.queries,
        answered: sent.answered,
        before,
        after,
        skewNs: sent.skewNs,
      })
    }
    const served = (await server.served()).answered - warm
    return done(probeVerdict(phases), { rules, cpus: pinned, served })
  } catch (e: unknown) {
    return done(notRun('failed', errorMessage(e)), { cpus: pinned })
  } finally {
    await Promise.all(agents.map(a => a.stop()))
  }
}
