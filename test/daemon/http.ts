// HttpServer on a real socket (127.0.0.1, ephemeral port): status codes, bodies, content types, and
// that no request of any method changes what /metrics reports.
import t from 'tap'
import http from 'node:http'
import net from 'node:net'
import { HttpServer, type HttpSources } from '../../src/daemon/http.js'
import { Metrics } from '../../src/daemon/metrics.js'
import { constants } from '../../src/dataplane/constants.js'
import { emptyStats } from '../helpers/fake-queue.js'

interface Reply {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
}

function request(port: number, method: string, path: string, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, timeout: 5000, agent: false }, res => {
      let data = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => {
        data += d
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data }))
    })
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)))
    req.on('error', reject)
    req.end(body)
  })
}

interface Fixture {
  port: number
  server: HttpServer
  metrics: Metrics
  health: { ok: boolean; detail: string }
  ready: { ok: boolean; detail: string }
  calls: Record<string, number>
  errors: unknown[]
}

async function start(t: { teardown(fn: () => unknown): void }, over: Partial<HttpSources> = {}): Promise<Fixture> {
  const stats = emptyStats()
  stats.running = true
  stats.packets.held!.AAAA = 4
  stats.packets.accepted!.A = 4
  const metrics = new Metrics({
    constants,
    queueStats: () => [{ queue: 0, stats }],
    queues: () => [0],
    readNfqueue: async () => [],
    readConntrack: async () => undefined,
  })
  const calls = { metrics: 0, healthy: 0, ready: 0 }
  const errors: unknown[] = []
  const f: Partial<Fixture> = {
    metrics,
    calls,
    errors,
    health: { ok: true, detail: 'queue 0 bound' },
    ready: { ok: true, detail: 'rules installed' },
  }
  const server = new HttpServer(
    {
      metrics: () => {
        calls.metrics++
        return metrics.render()
      },
      contentType: metrics.contentType,
      healthy: () => {
        calls.healthy++
        return f.health!
      },
      ready: () => {
        calls.ready++
        return f.ready!
      },
      ...over,
    },
    e => errors.push(e),
  )
  const addr = await server.listen('127.0.0.1:0')
  t.teardown(() => server.close())
  return Object.assign(f, { server, port: addr.port }) as Fixture
}

t.test('GET /metrics: 200, Prometheus content type, the registry text', async t => {
  const f = await start(t)
  const r = await request(f.port, 'GET', '/metrics')
  t.equal(r.status, 200)
  t.equal(r.headers['content-type'], f.metrics.contentType)
  t.match(r.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.equal(r.headers['cache-control'], 'no-store')
  t.match(r.body, /^dns_shaper_packets_total\{action="held",qtype="AAAA"\} 4$/m)
  t.match(r.body, /^# TYPE dns_shaper_hold_seconds histogram$/m)
  const q = await request(f.port, 'GET', '/metrics?name[]=x')
  t.equal(q.status, 200, 'query string ignored')
})

t.test('/healthz and /readyz: 200 ok / 503 not ok with the detail', async t => {
  const f = await start(t)
  for (const [path, key] of [
    ['/healthz', 'health'],
    ['/readyz', 'ready'],
  ] as const) {
    f[key] = { ok: true, detail: `${key} fine` }
    const ok = await request(f.port, 'GET', path)
    t.equal(ok.status, 200, `${path} 200`)
    t.equal(ok.body, `ok: ${key} fine\n`)
    t.equal(ok.headers['content-type'], 'text/plain; charset=utf-8')
    f[key] = { ok: false, detail: `${key} broken` }
    const bad = await request(f.port, 'GET', path)
    t.equal(bad.status, 503, `${path} 503`)
    t.equal(bad.body, `not ok: ${key} broken\n`)
  }
  f.health = { ok: false, detail: 'data plane died' }
  f.ready = { ok: true, detail: 'rules none' }
  t.equal((await request(f.port, 'GET', '/healthz')).status, 503, 'the two are independent')
  t.equal((await request(f.port, 'GET', '/readyz')).status, 200)
})

t.test('other paths: 404 for every method', async t => {
  const f = await start(t)
  for (const path of ['/', '/metric', '/metrics/', '/healthz/x', '/favicon.ico', '/READYZ']) {
    for (const method of ['GET', 'POST']) {
      const r = await request(f.port, method, path)
      t.equal(r.status, 404, `${method} ${path}`)
      t.match(r.body, /try \/metrics, \/healthz or \/readyz/)
    }
  }
  t.same(f.calls, { metrics: 0, healthy: 0, ready: 0 }, 'no source consulted')
})

t.test('non-GET methods on the endpoints: 405 with Allow, sources untouched', async t => {
  const f = await start(t)
  for (const path of ['/metrics', '/healthz', '/readyz']) {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      const r = await request(f.port, method, path, method === 'POST' || method === 'PUT' ? 'reset=1' : undefined)
      t.equal(r.status, 405, `${method} ${path}`)
      t.equal(r.headers.allow, 'GET, HEAD')
    }
  }
  t.same(f.calls, { metrics: 0, healthy: 0, ready: 0 })
})

t.test('HEAD: same status and headers as GET, no body', async t => {
  const f = await start(t)
  const m = await request(f.port, 'HEAD', '/metrics')
  t.equal(m.status, 200)
  t.equal(m.headers['content-type'], f.metrics.contentType)
  t.equal(m.body, '')
  t.equal((await request(f.port, 'HEAD', '/healthz')).status, 200)
  f.ready = { ok: false, detail: 'rules missing' }
  const r = await request(f.port, 'HEAD', '/readyz')
  t.equal(r.status, 503)
  t.equal(r.body, '')
})

t.test('a failing collection answers 500 and reports the error', async t => {
  const f = await start(t, { metrics: () => Promise.reject(new Error('stats gone')) })
  const r = await request(f.port, 'GET', '/metrics')
  t.equal(r.status, 500)
  t.equal(r.body, 'metrics collection failed\n')
  t.equal(f.errors.length, 1)
  t.match(String(f.errors[0]), /stats gone/)
})

t.test('without an error handler a failing collection still answers 500', async t => {
  const s = new HttpServer({
    metrics: () => Promise.reject(new Error('x')),
    contentType: 'text/plain',
    healthy: () => ({ ok: true, detail: '' }),
    ready: () => ({ ok: true, detail: '' }),
  })
  const a = await s.listen('127.0.0.1:0')
  t.teardown(() => s.close())
  t.equal((await request(a.port, 'GET', '/metrics')).status, 500)
})

t.test('no request changes state: /metrics identical before and after every path x method', async t => {
  const f = await start(t)
  // Process metrics (CPU, memory, event-loop lag) move on their own; compare the shaper's.
  const own = (text: string): string =>
    text
      .split('\n')
      .filter(l => l.includes('dns_shaper_'))
      .join('\n')
  f.metrics.reloads.inc({ result: 'ok' })
  const before = own((await request(f.port, 'GET', '/metrics')).body)
  t.match(before, /dns_shaper_config_reloads_total\{result="ok"\} 1/)
  for (const path of ['/metrics', '/healthz', '/readyz', '/', '/reload', '/metrics?reset=1']) {
    for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      await request(f.port, method, path, method === 'POST' ? 'x' : undefined)
    }
  }
  const after = own((await request(f.port, 'GET', '/metrics')).body)
  t.equal(after, before)
  t.same(f.health, { ok: true, detail: 'queue 0 bound' })
})

const hasV6 = await new Promise<boolean>(resolve => {
  const s = net
    .createServer()
    .once('error', () => resolve(false))
    .listen(0, '::1', () => s.close(() => resolve(true)))
})

t.test('listen: IPv6 in brackets, clear errors for a taken port and a foreign address', async t => {
  const f = await start(t)
  const taken = new HttpServer({
    metrics: async () => '',
    contentType: 'text/plain',
    healthy: () => ({ ok: true, detail: '' }),
    ready: () => ({ ok: true, detail: '' }),
  })
  await t.rejects(taken.listen(`127.0.0.1:${f.port}`), {
    code: 'EADDRINUSE',
    message: /is taken; choose another --metrics-listen/,
  })
  await t.rejects(taken.listen('192.0.2.77:9363'), { code: 'EADDRNOTAVAIL', message: /no interface has 192\.0\.2\.77/ })
  // [IPv4]:port, the form one manifest uses for IPv4 and IPv6 nodes ([$(NODE_IP)]:9363).
  const v4b = new HttpServer({
    metrics: async () => '',
    contentType: 'text/plain',
    healthy: () => ({ ok: true, detail: '' }),
    ready: () => ({ ok: true, detail: '' }),
  })
  const b = await v4b.listen('[127.0.0.1]:0')
  t.equal(b.address, '127.0.0.1', '[127.0.0.1]:0 listens on 127.0.0.1')
  await v4b.close()
  const v6 = new HttpServer({
    metrics: async () => 'x 1\n',
    contentType: 'text/plain',
    healthy: () => ({ ok: true, detail: 'y' }),
    ready: () => ({ ok: true, detail: '' }),
  })
  if (!hasV6) return t.comment('skipping the IPv6 part: no ::1 on this host')
  const a = await v6.listen('[::1]:0')
  t.teardown(() => v6.close())
  t.equal(a.address, '::1')
  const body = await new Promise<string>((resolve, reject) => {
    http
      .get({ host: '::1', port: a.port, path: '/healthz', agent: false }, res => {
        let d = ''
        res.on('data', (c: Buffer) => {
          d += c.toString()
        })
        res.on('end', () => resolve(d))
      })
      .on('error', reject)
  })
  t.equal(body, 'ok: y\n')
})

t.test('close() ends idle keep-alive connections and resolves', async t => {
  const f = await start(t)
  const agent = new http.Agent({ keepAlive: true })
  await new Promise<void>((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: f.port, path: '/healthz', agent }, res => {
        res.resume()
        res.on('end', resolve)
      })
      .on('error', reject)
  })
  const closed = await Promise.race([
    f.server.close().then(() => true),
    new Promise<boolean>(r => setTimeout(() => r(false), 3000)),
  ])
  agent.destroy()
  t.ok(closed, 'closed within 3 s despite a keep-alive socket')
})

t.test('idle and half-sent connections are closed within the configured timeouts', async t => {
  const server = new HttpServer(
    { metrics: async () => 'm 1\n', contentType: 'text/plain', healthy: () => ok, ready: () => ok },
    () => {},
    () => {},
    { maxConnections: 1000, headersTimeoutMs: 400, requestTimeoutMs: 800, idleTimeoutMs: 800, checkIntervalMs: 100 },
  )
  const ok = { ok: true, detail: 'fine' }
  const { port } = await server.listen('127.0.0.1:0')
  t.teardown(() => server.close())
  // 400 client + 400 server sockets: under a 1024 fd limit.
  const N = 400
  const sockets: net.Socket[] = []
  t.teardown(() => sockets.forEach(s => s.destroy()))
  let closed = 0
  const allClosed = new Promise<void>(resolve => {
    for (let i = 0; i < N; i++) {
      const s = net.connect(port, '127.0.0.1')
      sockets.push(s)
      s.on('error', () => {})
      s.on('close', () => {
        if (++closed === N) resolve()
      })
      // Half of them never send a byte, half never finish their headers.
      if (i % 2 === 1) s.on('connect', () => s.write('GET /metrics HTTP/1.1\r\nHost: x\r\n'))
    }
  })
  const started = Date.now()
  await Promise.race([allClosed, new Promise(r => setTimeout(r, 5000))])
  const elapsed = Date.now() - started
  t.equal(closed, N, `all ${N} connections closed by the server (${closed} after ${elapsed} ms)`)
  t.ok(elapsed < 5000, 'within a few timeouts, not Node’s minutes')
  // The listener still serves.
  t.equal((await request(port, 'GET', '/healthz')).status, 200)
})

t.test('connections beyond the cap are refused at accept, while requests still get answers', async t => {
  const ok = { ok: true, detail: 'fine' }
  const server = new HttpServer(
    { metrics: async () => 'm 1\n', contentType: 'text/plain', healthy: () => ok, ready: () => ok },
    () => {},
    () => {},
    { maxConnections: 10, headersTimeoutMs: 5000, requestTimeoutMs: 5000, idleTimeoutMs: 5000, checkIntervalMs: 1000 },
  )
  const { port } = await server.listen('127.0.0.1:0')
  t.teardown(() => server.close())
  const idle: net.Socket[] = []
  t.teardown(() => idle.forEach(s => s.destroy()))
  let dropped = 0
  await Promise.all(
    Array.from(
      { length: 30 },
      () =>
        new Promise<void>(resolve => {
          const s = net.connect(port, '127.0.0.1')
          idle.push(s)
          s.on('error', () => {})
          s.on('close', () => {
            dropped++
            resolve()
          })
          setTimeout(resolve, 500)
        }),
    ),
  )
  t.equal(dropped, 20, '20 of 30 idle connections closed at once (cap 10)')
  idle.forEach(s => s.destroy())
  await new Promise(r => setTimeout(r, 100))
  t.equal((await request(port, 'GET', '/healthz')).status, 200, 'served once the idle ones went away')
})
