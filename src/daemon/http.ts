// HTTP endpoints: /metrics, /healthz (data plane alive, queue bound), /readyz (rules in place or
// unmanaged); a probe listener serves only the last two. Read-only: every request is a GET or HEAD of
// one of these, anything else is 404/405. Which connections stay open is the ConnectionGuard's call.
import type { Server, ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo, Socket } from 'node:net'
import { parseHostPort } from '../config/host-port.js'
import { ConnectionGuard, type GuardCounts } from './connection-guard.js'

// require, not an ES import: importing node:http as an ES module makes Node evaluate every export of
// it, and since Node 22 those include http.WebSocket and friends, which load undici, http2, tls and
// worker_threads, for a server that answers plain GETs (docs/deploy.md, "Resources").
const http = createRequire(import.meta.url)('node:http') as typeof import('node:http')

export interface HttpSources {
  /** Absent on the probe listener: /metrics is then 404. */
  metrics?: () => Promise<string>
  contentType?: string
  healthy: () => { ok: boolean; detail: string }
  ready: () => { ok: boolean; detail: string }
}

/**
 * Limits for a listener that, in the DaemonSet, sits on the node address where every pod can reach
 * it: Node's defaults (60 s for headers, 300 s per request, no connection cap) let a few hundred idle
 * sockets pin file descriptors and memory for minutes. A scrape or probe takes milliseconds.
 */
export interface HttpLimits {
  /** Open connections at most; beyond it a newcomer takes an idle one of the peer holding the most, or is closed. */
  maxConnections: number
  /** Open connections of one peer address at most; more are closed on accept. */
  maxConnectionsPerPeer: number
  /** Whole request headers must arrive within this. */
  headersTimeoutMs: number
  /** The whole request must arrive within this. */
  requestTimeoutMs: number
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number
  /** A socket with no traffic at all is closed after this. */
  idleTimeoutMs: number
  /** How often the header and request timeouts are checked (Node's default is 30 s). */
  checkIntervalMs: number
}

export const HTTP_LIMITS: HttpLimits = {
  maxConnections: 64,
  maxConnectionsPerPeer: 8,
  headersTimeoutMs: 5000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5000,
  idleTimeoutMs: 15_000,
  checkIntervalMs: 1000,
}

/**
 * The probe listener (loopback by default: pods cannot reach it, kubelet's probes of a hostNetwork pod
 * can): every peer is one address there, so no per-peer share; room for far more half-open sockets
 * than a local process bothers to hold, each closed 2 s after it connected without a whole request.
 */
export const PROBE_HTTP_LIMITS: HttpLimits = {
  maxConnections: 1024,
  maxConnectionsPerPeer: 1024,
  headersTimeoutMs: 2000,
  requestTimeoutMs: 2000,
  keepAliveTimeoutMs: 2000,
  idleTimeoutMs: 5000,
  checkIntervalMs: 500,
}

export class HttpServer {
  readonly #server: Server
  readonly #guard: ConnectionGuard
  #listening = false

  /**
   * `onError`: a /metrics collection failed. `onServerError`: the listener itself failed after
   * listen() (without a listener for 'error', Node would throw it and end the daemon).
   */
  constructor(
    src: HttpSources,
    onError: (e: unknown) => void = () => {},
    onServerError: (e: unknown) => void = () => {},
    limits: Partial<HttpLimits> = {},
  ) {
    const l = { ...HTTP_LIMITS, ...limits }
    this.#server = http.createServer(
      {
        headersTimeout: l.headersTimeoutMs,
        requestTimeout: l.requestTimeoutMs,
        keepAliveTimeout: l.keepAliveTimeoutMs,
        connectionsCheckingInterval: l.checkIntervalMs,
      },
      (req, res) => {
        const socket = req.socket
        this.#guard.busy(socket)
        res.once('close', () => this.#guard.idle(socket))
        const url = (req.url ?? '/').split('?')[0]
        const metrics = src.metrics
        const known = (url === '/metrics' && metrics !== undefined) || url === '/healthz' || url === '/readyz'
        if (!known)
          return send(res, 404, `not found: try ${metrics !== undefined ? '/metrics, ' : ''}/healthz or /readyz\n`)
        if (req.method !== 'GET' && req.method !== 'HEAD') {
          res.setHeader('Allow', 'GET, HEAD')
          return send(res, 405, 'read-only endpoint: use GET\n')
        }
        if (url === '/metrics' && metrics !== undefined) {
          metrics().then(
            text => send(res, 200, text, src.contentType),
            (e: unknown) => {
              onError(e)
              send(res, 500, 'metrics collection failed\n')
            },
          )
          return
        }
        const r = url === '/healthz' ? src.healthy() : src.ready()
        send(res, r.ok ? 200 : 503, `${r.ok ? 'ok' : 'not ok'}: ${r.detail}\n`)
      },
    )
    this.#guard = new ConnectionGuard({ maxConnections: l.maxConnections, maxPerPeer: l.maxConnectionsPerPeer })
    // Before the HTTP parser reads a byte: a newcomer over a share is closed, or takes a fair slot.
    this.#server.on('connection', (socket: Socket) => {
      if (this.#guard.admit(socket)) socket.once('close', () => this.#guard.forget(socket))
    })
    this.#server.setTimeout(l.idleTimeoutMs, socket => socket.destroy())
    // A malformed request or a reset socket: drop that connection, never the process.
    this.#server.on('clientError', (_e, socket) => socket.destroy())
    this.#server.on('error', e => {
      if (!this.#listening) onServerError(e) // listen() reports its own failure
    })
  }

  /** Connections closed to keep every client to its share, since start. */
  get guarded(): GuardCounts {
    return { ...this.#guard.counts }
  }

  /** Listens on HOST:PORT (IPv6 in brackets). Resolves with the bound address. */
  listen(hostPort: string): Promise<AddressInfo> {
    const hp = parseHostPort(hostPort)
    if (hp === undefined) return Promise.reject(new Error(`metrics listener: "${hostPort}" is not HOST:PORT`))
    const { host, port } = hp
    return new Promise((resolve, reject) => {
      const fail = (e: NodeJS.ErrnoException): void => {
        const hint =
          e.code === 'EADDRINUSE'
            ? `: ${hostPort} is taken; choose another --metrics-listen`
            : e.code === 'EADDRNOTAVAIL'
              ? `: no interface has ${host}; fix --metrics-listen`
              : ''
        reject(Object.assign(new Error(`metrics listener ${hostPort}: ${e.message}${hint}`), { code: e.code }))
      }
      this.#listening = true
      const failed = (e: NodeJS.ErrnoException): void => {
        this.#listening = false
        fail(e)
      }
      this.#server.once('error', failed)
      this.#server.listen(port, host, () => {
        this.#listening = false
        this.#server.off('error', failed)
        resolve(this.#server.address() as AddressInfo)
      })
    })
  }

  close(): Promise<void> {
    return new Promise(resolve => {
      this.#server.close(() => resolve())
      this.#server.closeAllConnections()
    })
  }
}

function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' })
  res.end(res.req.method === 'HEAD' ? undefined : body)
}
