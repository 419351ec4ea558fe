// prom-client's classes for the daemon's metrics, loaded from prom-client's own modules rather than its
// index. The index also loads its Pushgateway (http, https, zlib, and with them OpenSSL's TLS setup)
// and its cluster aggregator, neither of which the daemon uses: with daemon/http.ts loading node:http
// by require, 6.5 MiB less resident memory at rest (docs/deploy.md, "Resources"). The same library,
// the same classes (the index re-exports these modules) and the same default metrics. Types come from
// `import type ... from 'prom-client'`; nothing here registers anything.
import { createRequire } from 'node:module'
import type client from 'prom-client'

const load = createRequire(import.meta.url)

export const prom = {
  Registry: load('prom-client/lib/registry') as typeof client.Registry,
  Counter: load('prom-client/lib/counter') as typeof client.Counter,
  Gauge: load('prom-client/lib/gauge') as typeof client.Gauge,
  collectDefaultMetrics: load('prom-client/lib/defaultMetrics') as typeof client.collectDefaultMetrics,
}
