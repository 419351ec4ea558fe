// Helpers shared by the large-node integration tests (large tables, probe starvation, locked
// iptables): a bare namespace with the daemon in it, an HTTP poller that runs inside the namespace and
// reports every answer's latency, and the daemon's peak RSS. They never touch the root namespace.
import { readFileSync } from 'node:fs'
import { Netns, makeLabId } from '../../lab/src/netns.js'
import { DaemonProcess } from './daemon.js'

export const skipReason = (): string | false =>
  process.getuid?.() !== 0 ? 'integration tests need root (network namespaces, iptables, NFQUEUE)' : false

/** A fresh namespace (loopback up), destroyed by the caller. */
export function bareNamespace(): Promise<Netns> {
  return Netns.create(makeLabId())
}

/** Peak resident set (VmHWM) of a live process, in KiB. */
export function peakRssKiB(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!m) throw new Error(`no VmHWM in /proc/${pid}/status`)
  return Number(m[1])
}

export interface PollResult {
  /** Answers per HTTP status ("error" when the request failed or timed out). */
  statuses: Record<string, number>
  latenciesMs: number[]
  maxMs: number
}

/**
 * GETs each URL in turn every `everyMs` for `forMs`, from a Node process inside the namespace, each
 * with a `timeoutMs` deadline; a fresh connection per request, as kubelet probes. Resolves with every
 * answer's latency.
 */
export async function pollIn(
  ns: Netns,
  urls: readonly string[],
  o: { forMs: number; everyMs: number; timeoutMs: number },
): Promise<PollResult> {
  const script = `
const http = require('node:http')
const [urls, forMs, everyMs, timeoutMs] = JSON.parse(process.argv[1])
const statuses = {}, lat = []
const once = url => new Promise(resolve => {
  const t0 = process.hrtime.bigint()
  const done = s => { statuses[s] = (statuses[s] || 0) + 1; lat.push(Number(process.hrtime.bigint() - t0) / 1e6); resolve() }
  const req = http.get(url, { agent: false, timeout: timeoutMs }, res => { res.resume(); res.on('end', () => done(String(res.statusCode))) })
  req.on('timeout', () => req.destroy(new Error('timeout')))
  req.on('error', () => done('error'))
})
;(async () => {
  const end = Date.now() + forMs
  while (Date.now() < end) {
    for (const u of urls) await once(u)
    await new Promise(r => setTimeout(r, everyMs))
  }
  process.stdout.write(JSON.stringify({ statuses, latenciesMs: lat, maxMs: Math.max(0, ...lat) }))
})()
`
  const r = await ns.execOk([process.execPath, '-e', script, JSON.stringify([urls, o.forMs, o.everyMs, o.timeoutMs])], {
    timeoutMs: o.forMs + o.timeoutMs + 20_000,
  })
  return JSON.parse(r.stdout) as PollResult
}

/** `dns-shaper run` in a bare namespace: output hook only, metrics on loopback, the given extra args. */
export function daemonIn(ns: Netns, args: readonly string[], env: NodeJS.ProcessEnv = {}): DaemonProcess {
  return new DaemonProcess(ns, ['run', '--hooks', 'output', '--ipv6', 'off', ...args], {
    env: { ...process.env, ...env },
  })
}
