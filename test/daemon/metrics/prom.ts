// src/daemon/metrics/prom.ts: prom-client's own classes; and a daemon whose module graph stays off the
// TLS, HTTP/2, zlib, undici and crypto code that prom-client's index, an ES import of node:http and a
// sha256 of the config would load (docs/deploy.md, "Resources"). The module check runs the built
// daemon (dist/) in a fresh node: the test runner's own loaders would hide what the daemon loads.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { prom } from '../../../src/daemon/metrics/prom.js'

t.test('the classes are prom-client’s, the same objects its index exports', async t => {
  const index = createRequire(import.meta.url)('prom-client') as typeof import('prom-client')
  t.equal(prom.Registry, index.Registry)
  t.equal(prom.Counter, index.Counter)
  t.equal(prom.Gauge, index.Gauge)
  t.equal(prom.collectDefaultMetrics, index.collectDefaultMetrics)
  const registry = new prom.Registry()
  prom.collectDefaultMetrics({ register: registry })
  t.match(await registry.metrics(), /^process_resident_memory_bytes \d+/m, 'default process metrics')
})

// Built-in modules the daemon has no use for, each a few hundred KiB to MiBs of resident memory.
const UNWANTED = ['tls', 'https', 'http2', 'zlib', 'worker_threads', 'internal/deps/undici/undici', 'crypto']

t.test('the daemon loads no TLS, HTTPS, HTTP/2, zlib, worker, undici or crypto module', async t => {
  const entry = fileURLToPath(new URL('../../../dist/daemon/lifecycle.js', import.meta.url))
  if (!existsSync(entry)) {
    t.fail(`${entry} missing: build first (npm run build, or tsc -p tsconfig.build.json)`)
    return
  }
  // What a fresh node loads, with and without importing the daemon: the difference is the daemon's
  // (the test runner may add its own hooks to every child it starts; they are in both).
  const modules = (code: string): Set<string> => {
    const r = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', `${code}; console.log(JSON.stringify(process.moduleLoadList))`],
      { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' }, timeout: 60_000 },
    )
    t.equal(r.status, 0, `node ran (${r.stderr.trim() || 'ok'})`)
    return new Set((JSON.parse(r.stdout || '[]') as string[]).map(m => m.replace(/^NativeModule /, '')))
  }
  const bare = modules('')
  const daemon = modules(`await import(${JSON.stringify(entry)})`)
  const loaded = new Set([...daemon].filter(m => !bare.has(m)))
  t.ok(loaded.has('http'), 'the daemon loads node:http (the metrics server): the list is the real one')
  t.same(
    UNWANTED.filter(m => loaded.has(m)),
    [],
    `none of ${UNWANTED.join(', ')}`,
  )
})
