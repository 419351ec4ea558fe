// Helpers shared by the large-node integration tests (large tables, probe starvation, locked
// iptables): a bare namespace with the daemon in it, an HTTP poller that runs inside the namespace and
// reports every answer's latency, and the daemon's peak RSS. They never touch the root namespace.
import { spawn } from 'node:child_process'
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
  o: { forMs: number; everyMs: number; timeoutMs: number; localAddress?: string },
): Promise<PollResult> {
  const script = `
const http = require('node:http')
const [urls, forMs, everyMs, timeoutMs, localAddress] = JSON.parse(process.argv[1])
const statuses = {}, lat = []
const once = url => new Promise(resolve => {
  const t0 = process.hrtime.bigint()
  const done = s => { statuses[s] = (statuses[s] || 0) + 1; lat.push(Number(process.hrtime.bigint() - t0) / 1e6); resolve() }
  const req = http.get(url, { agent: false, timeout: timeoutMs, localAddress }, res => { res.resume(); res.on('end', () => done(String(res.statusCode))) })
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
  const r = await ns.execOk(
    [process.execPath, '-e', script, JSON.stringify([urls, o.forMs, o.everyMs, o.timeoutMs, o.localAddress])],
    {
      timeoutMs: o.forMs + o.timeoutMs + 20_000,
    },
  )
  return JSON.parse(r.stdout) as PollResult
}

/** `dns-shaper run` in a bare namespace: output hook only, metrics on loopback, the given extra args. */
export function daemonIn(ns: Netns, args: readonly string[], env: NodeJS.ProcessEnv = {}): DaemonProcess {
  return new DaemonProcess(ns, ['run', '--hooks', 'output', '--ipv6', 'off', ...args], {
    env: { ...process.env, ...env },
  })
}

/**
 * A DNS "server" on 127.0.0.1:53 of the namespace that answers every query at once (the question
 * echoed back, QR set, no answers). Killed with the namespace.
 */
export function startEchoDns(ns: Netns): Promise<void> {
  const script = `
const s = require('node:dgram').createSocket('udp4')
s.on('message', (m, r) => { if (m.length >= 12) { m[2] |= 0x80; s.send(m, r.port, r.address) } })
s.bind(53, '127.0.0.1', () => process.stdout.write('up\\n'))
`
  const child = ns.spawn([process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    child.stdout?.once('data', () => resolve())
    child.once('exit', code => reject(new Error(`echo DNS server exited (${code})`)))
  })
}

export interface SentQuery {
  /** Epoch ms when the query left. */
  sentAt: Promise<number>
  /** Epoch ms when its answer came, or undefined if none came within the timeout. */
  answeredAt: Promise<number | undefined>
}

/** Sends one query (wire bytes) to 127.0.0.1:53 from inside the namespace and times its answer (epoch ms). */
export function sendQuery(ns: Netns, query: Buffer, timeoutMs: number): SentQuery {
  const script = `
const s = require('node:dgram').createSocket('udp4')
const [hex, timeoutMs] = JSON.parse(process.argv[1])
s.on('message', () => { process.stdout.write('answer ' + Date.now() + '\\n'); process.exit(0) })
s.send(Buffer.from(hex, 'hex'), 53, '127.0.0.1', () => process.stdout.write('sent ' + Date.now() + '\\n'))
setTimeout(() => process.exit(0), timeoutMs)
`
  const child = ns.spawn([process.execPath, '-e', script, JSON.stringify([query.toString('hex'), timeoutMs])], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  child.stdout?.setEncoding('utf8')
  let sent!: (v: number) => void
  const sentAt = new Promise<number>(r => (sent = r))
  child.stdout?.on('data', (d: string) => {
    out += d
    const m = /sent (\d+)/.exec(out)
    if (m) sent(Number(m[1]))
  })
  const answeredAt = new Promise<number | undefined>(resolve =>
    child.once('exit', () => {
      const m = /answer (\d+)/.exec(out)
      resolve(m ? Number(m[1]) : undefined)
    }),
  )
  return { sentAt, answeredAt }
}

/** Holds the xtables lock file (flock, as iptables does) from another process until release(). */
export function holdLock(file: string): { held: Promise<void>; release: () => void } {
  // --no-fork: the command replaces flock and is the only holder, so killing it releases the lock.
  const child = spawn(
    'flock',
    [
      '--exclusive',
      '--no-fork',
      file,
      process.execPath,
      '-e',
      "process.stdout.write('locked\\n'); setInterval(() => {}, 1000)",
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  const held = new Promise<void>((resolve, reject) => {
    child.stdout?.once('data', () => resolve())
    child.once('exit', code => reject(new Error(`flock exited (${code})`)))
  })
  return {
    held,
    release: () => {
      child.kill('SIGKILL')
    },
  }
}

export interface Hog {
  /** Resolves when the hog has stopped: sockets it opened (first ones and reopenings). */
  done: Promise<{ opened: number; open: number }>
}

/**
 * A process inside the namespace that keeps `sockets` connections to host:port open with half a
 * request sent (reopening each as soon as it is closed) for `forMs`: what any pod can do to a
 * listener it can reach.
 */
export function hogConnections(
  ns: Netns,
  o: { host: string; port: number; localAddress: string; sockets: number; forMs: number },
): Hog {
  const script = `
const net = require('node:net')
const o = JSON.parse(process.argv[1])
let opened = 0, open = 0, stopping = false
const one = () => {
  if (stopping) return
  opened++
  const s = net.connect({ host: o.host, port: o.port, localAddress: o.localAddress }, () => {
    open++
    s.write('GET /metrics HTTP/1.1\\r\\nHost: x\\r\\n')
  })
  s.on('error', () => {})
  s.on('close', had => { if (s.connecting === false) open--; setImmediate(one) })
}
for (let i = 0; i < o.sockets; i++) one()
setTimeout(() => { stopping = true; process.stdout.write(JSON.stringify({ opened, open })); process.exit(0) }, o.forMs)
`
  const r = ns.execOk([process.execPath, '-e', script, JSON.stringify(o)], { timeoutMs: o.forMs + 20_000 })
  return { done: r.then(x => JSON.parse(x.stdout) as { opened: number; open: number }) }
}
