// The shaper under test in a race row: its setups (raw, mangle, netem, none), daemon argv, the running
// daemon (harness/daemon: ready on /readyz) and the counters the report shows. Starts only in the lab router.

import { LabError } from '../../harness/netns.js'
import { CLI_PATH } from '../../harness/paths.js'
import { DaemonProcess, fetchIn, startDaemon } from '../../harness/daemon.js'
import { counterDeltas, parseProm } from '../../harness/prom.js'
import { errorMessage } from '../../harness/product.js'
import type { RaceLab } from './lab.js'

const METRICS_PORT = 9363

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

/** The daemon (dist/cli.js, through harness/daemon) running in the router namespace, plus the mangle rule when asked. */
export class RunningShaper {
  readonly daemon: DaemonProcess
  readonly #rl: RaceLab
  readonly #setup: DaemonSetup

  private constructor(rl: RaceLab, setup: DaemonSetup, daemon: DaemonProcess) {
    this.#rl = rl
    this.#setup = setup
    this.daemon = daemon
  }

  static async start(rl: RaceLab, setup: DaemonSetup, cli = CLI_PATH, readyMs = 15_000): Promise<RunningShaper> {
    const args = daemonArgs(setup, rl.lab.router.clientIpv4)
    const daemon = await startDaemon(rl.router, args, { cli, readyTimeoutMs: readyMs }).catch((e: unknown) => {
      throw new LabError(`dns-shaper did not become ready in ${rl.router.name}: ${errorMessage(e)}`, {
        hint: 'build first: npm run build',
      })
    })
    if (setup.kind === 'mangle') {
      await rl.router.execOk(['iptables-restore', '--noflush'], { input: mangleQueueRules() })
      await rl.router.execOk(['ip6tables-restore', '--noflush'], { input: mangleQueueRules() })
    }
    return new RunningShaper(rl, setup, daemon)
  }

  /**
   * Counters of the data plane, from its /metrics (curl inside the router namespace); null when three
   * scrapes failed. Under TCG the first scrape of a fresh daemon (conntrack over ctnetlink, queue files)
   * can outlast a 5 s curl: the bound grows with timeScale, and a failed scrape is no row of zeros.
   */
  async counters(timeScale = 1): Promise<Record<string, number> | null> {
    const url = this.daemon.url
    if (url === undefined) return null
    for (let i = 0; i < 3; i++) {
      const r = await fetchIn(this.#rl.router, `${url}/metrics`, 5 * timeScale).catch(() => null)
      if (r?.code === 200 && /^dns_shaper_packets_total/m.test(r.body)) return parseShaperMetrics(r.body)
    }
    return null
  }

  /** Removes the mangle rule (if any), then SIGTERM; resolves with the exit code. */
  async stop(): Promise<number | null> {
    if (this.#setup.kind === 'mangle') {
      await this.#rl.router.exec(['iptables', '-t', 'mangle', '-F', 'PREROUTING'])
      await this.#rl.router.exec(['ip6tables', '-t', 'mangle', '-F', 'PREROUTING'])
    }
    return (await this.daemon.stop()).code
  }
}

/** The shaper counters the race report shows, summed over label sets (harness/prom's table); absent ones left out. */
export function parseShaperMetrics(text: string): Record<string, number> {
  const all = counterDeltas(parseProm(text), undefined)
  return Object.fromEntries(RACE_COUNTERS.filter(k => all[k] !== undefined).map(k => [k, all[k]!]))
}

const RACE_COUNTERS = ['held', 'accepted', 'pairReleased', 'deadlineReleased', 'pairEvictions', 'bypassed'] as const
