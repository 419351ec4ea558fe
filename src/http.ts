// HTTP endpoints: /metrics, /healthz (data plane alive, queue bound), /readyz (rules in place or
// unmanaged). Read-only: every request is a GET or HEAD of one of these, anything else is 404/405.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { parseHostPort } from './config/host-port.js'

export interface HttpSources {
  metrics: () => Promise<string>
  contentType: string
  healthy: () => { ok: boolean; detail: string }
  ready: () => { ok: boolean; detail: string }
}

export class HttpServer {
  readonly #server: http.Server

  constructor(src: HttpSources, onError: (e: unknown) => void = () => {}) {
    this.#server = http.createServer((req, res) => {
      const url = (req.url ?? '/').split('?')[0]
      const known = url === '/metrics' || url === '/healthz' || url === '/readyz'
      if (!known) return send(res, 404, 'not found: try /metrics, /healthz or /readyz\n')
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('Allow', 'GET, HEAD')
        return send(res, 405, 'read-only endpoint: use GET\n')
      }
      if (url === '/metrics') {
        src.metrics().then(
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
    })
    this.#server.keepAliveTimeout = 5000
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
      this.#server.once('error', fail)
      this.#server.listen(port, host, () => {
        this.#server.off('error', fail)
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

function send(res: http.ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' })
  res.end(res.req.method === 'HEAD' ? undefined : body)
}
