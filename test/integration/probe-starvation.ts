// Probes no local process can starve: 200 sockets held half-sent (each reopened as soon as it is
// closed) by a "pod" on the metrics listener, then by a local process on the probe listener, while
// kubelet's probes, as the DaemonSet manifest configures them, and a Prometheus scrape go on. Every
// probe and every scrape must be answered. In a bare namespace (node, pod and Prometheus addresses on
// its loopback); never the root namespace.
import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { parseAllDocuments } from 'yaml'
import { bareNamespace, daemonIn, hogConnections, pollIn, skipReason } from '../helpers/node-lab.js'
import type { Netns } from '../../lab/src/netns.js'

const skip = skipReason()
if (skip !== false) {
  t.plan(0, skip)
  process.exit(0)
}

const NODE = '192.0.2.1'
const POD = '192.0.2.7'
const PROMETHEUS = '192.0.2.8'
const METRICS_PORT = 9363

interface HttpGetProbe {
  httpGet: { host?: string; port: number | string; path: string }
  timeoutSeconds?: number
}

/** The kubelet probes of deploy/kubernetes/daemonset.yaml, as URLs on a node whose address is NODE. */
function manifestProbes(): { urls: string[]; timeoutMs: number } {
  const text = readFileSync(new URL('../../deploy/kubernetes/daemonset.yaml', import.meta.url), 'utf8')
  const ds = parseAllDocuments(text)
    .map(d => d.toJS() as { kind?: string; spec: { template: { spec: { containers: unknown[] } } } })
    .find(d => d.kind === 'DaemonSet')!
  const c = ds.spec.template.spec.containers[0] as {
    ports?: { name: string; containerPort: number }[]
    livenessProbe: HttpGetProbe
    readinessProbe: HttpGetProbe
  }
  const url = (p: HttpGetProbe): string => {
    // kubelet: a named port is the container's; no host is the pod IP, the node's for hostNetwork.
    const port =
      typeof p.httpGet.port === 'number' ? p.httpGet.port : c.ports?.find(x => x.name === p.httpGet.port)?.containerPort
    return `http://${p.httpGet.host ?? NODE}:${port}${p.httpGet.path}`
  }
  const timeoutMs = 1000 * Math.min(c.livenessProbe.timeoutSeconds ?? 1, c.readinessProbe.timeoutSeconds ?? 1)
  return { urls: [url(c.livenessProbe), url(c.readinessProbe)], timeoutMs }
}

async function node(t: Test): Promise<Netns> {
  const ns = await bareNamespace()
  t.teardown(() => ns.destroy())
  for (const a of [NODE, POD, PROMETHEUS]) await ns.execOk(['ip', 'addr', 'add', `${a}/32`, 'dev', 'lo'])
  const d = daemonIn(ns, ['--rules', 'none', '--metrics-listen', `${NODE}:${METRICS_PORT}`])
  t.teardown(() => d.stop())
  await d.ready(30_000)
  return ns
}

const figures: string[] = []
t.teardown(() => {
  for (const f of figures) console.log(`# figure: ${f}`)
})

const SECONDS = 10

async function underHog(
  t: Test,
  ns: Netns,
  hog: { host: string; port: number; localAddress: string },
  what: string,
): Promise<void> {
  const { urls, timeoutMs } = manifestProbes()
  const h = hogConnections(ns, { ...hog, sockets: 200, forMs: SECONDS * 1000 + 2000 })
  await new Promise(r => setTimeout(r, 1000)) // the hog has its sockets in
  const [probes, scrapes] = await Promise.all([
    pollIn(ns, urls, { forMs: SECONDS * 1000, everyMs: 100, timeoutMs }),
    pollIn(ns, [`http://${NODE}:${METRICS_PORT}/metrics`], {
      forMs: SECONDS * 1000,
      everyMs: 1000,
      timeoutMs: 5000,
      localAddress: PROMETHEUS,
    }),
  ])
  const hogged = await h.done
  const n = (r: typeof probes): number => Object.values(r.statuses).reduce((a, b) => a + b, 0)
  t.ok(hogged.opened >= 200, `the hog opened ${hogged.opened} sockets (${hogged.open} open at the end)`)
  t.same(
    Object.keys(probes.statuses),
    ['200'],
    `every probe answered 200: ${JSON.stringify(probes.statuses)} (${urls.join(', ')})`,
  )
  t.same(Object.keys(scrapes.statuses), ['200'], `every scrape answered 200: ${JSON.stringify(scrapes.statuses)}`)
  figures.push(
    `${new Date().toISOString().slice(0, 10)} ${what}: ${n(probes)} probes, slowest ${probes.maxMs.toFixed(1)} ms, ${JSON.stringify(probes.statuses)}; ` +
      `${n(scrapes)} scrapes, slowest ${scrapes.maxMs.toFixed(1)} ms, ${JSON.stringify(scrapes.statuses)}; hog opened ${hogged.opened} sockets`,
  )
}

t.test('a pod holding 200 half-sent sockets on the metrics listener: every probe and scrape answered', async t => {
  const ns = await node(t)
  await underHog(
    t,
    ns,
    { host: NODE, port: METRICS_PORT, localAddress: POD },
    '200 half-sent sockets from a pod on the metrics port',
  )
})

t.test('a local process holding 200 half-sent sockets on the probe listener: every probe answered', async t => {
  const ns = await node(t)
  const { urls } = manifestProbes()
  const u = new URL(urls[0]!)
  await underHog(
    t,
    ns,
    { host: u.hostname, port: Number(u.port), localAddress: u.hostname },
    '200 half-sent sockets from a local process on the probe port',
  )
})
