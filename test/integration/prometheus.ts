// A real Prometheus scrapes the daemon in the lab's router namespace: after known traffic (100 A and
// 100 AAAA lookups) its query API must report exactly those counts and a hold histogram whose median
// is at least the configured delay; promtool must accept a scrape; every dashboard expression must
// evaluate on this Prometheus. Prometheus runs inside the router namespace on 127.0.0.1 there.
import t from 'tap'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createLab, type Lab } from '../../harness/topology.js'
import { startUnbound } from '../../harness/unbound.js'
import { runProbeIn } from '../../harness/probe-runner.js'
import { killAndWait } from '../../harness/netns.js'
import { DaemonProcess, fetchIn } from '../../harness/daemon.js'
import { skipFileUnless } from '../../harness/skip.js'

const PROMETHEUS = '/usr/bin/prometheus'
skipFileUnless({ root: 'network namespaces, iptables, NFQUEUE' })
if (!existsSync(PROMETHEUS) || spawnSync('promtool', ['--version']).error) {
  t.plan(0, `needs ${PROMETHEUS} and promtool (Debian package prometheus; scripts/system-deps.sh installs it)`)
  process.exit(0)
}

const DELAY_MS = 5
const COUNT = 100
const PROM = 'http://127.0.0.1:9090'
const DASHBOARD = fileURLToPath(new URL('../../deploy/grafana/dns-shaper.json', import.meta.url))

let lab: Lab
let daemon: DaemonProcess
let target: string
let dir: string
let promLog = ''

const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

interface Vector {
  status: string
  error?: string
  data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] }
}

async function query(expr: string): Promise<Vector> {
  const r = await lab.router.ns.exec(
    ['curl', '-s', '-m', '5', '-G', '--data-urlencode', `query=${expr}`, `${PROM}/api/v1/query`],
    { timeoutMs: 10000 },
  )
  try {
    return JSON.parse(r.stdout) as Vector
  } catch {
    return { status: 'error', error: `curl exit ${r.code}: ${r.stdout.slice(0, 200)} ${r.stderr.slice(0, 200)}` }
  }
}

/** The single value of an instant query, undefined when empty or failed. */
async function scalar(expr: string): Promise<number | undefined> {
  const v = await query(expr)
  const s = v.data?.result[0]?.value[1]
  return s === undefined ? undefined : Number(s)
}

/** Polls until ok(value) or the bound passes; returns the last value. */
async function waitFor(
  expr: string,
  ok: (v: number | undefined) => boolean,
  timeoutMs: number,
): Promise<number | undefined> {
  const until = Date.now() + timeoutMs
  let v: number | undefined
  do {
    v = await scalar(expr)
    if (ok(v)) return v
    await sleep(250)
  } while (Date.now() < until)
  return v
}

t.before(async () => {
  lab = await createLab()
  await startUnbound({ ns: lab.server.ns, addresses: [lab.server.ipv4, lab.server.ipv6] })
  target = `${lab.router.clientIpv4}:9363`
  daemon = new DaemonProcess(lab.router.ns, [
    'run',
    '--hooks',
    'prerouting',
    '--mode',
    'fixed',
    '--kernel-filter',
    'off',
    '--delay',
    String(DELAY_MS),
    '--metrics-listen',
    target,
  ])
  await daemon.ready()

  dir = mkdtempSync(path.join(tmpdir(), 'dns-shaper-prom-'))
  // JSON is YAML: no YAML writer needed.
  writeFileSync(
    path.join(dir, 'prometheus.yml'),
    JSON.stringify({
      global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
      scrape_configs: [{ job_name: 'dns-shaper', static_configs: [{ targets: [target] }] }],
    }),
  )
  const prom = lab.router.ns.spawn([
    PROMETHEUS,
    `--config.file=${path.join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${path.join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:9090`,
    '--log.level=warn',
  ])
  prom.stderr?.setEncoding('utf8')
  prom.stderr?.on('data', (d: string) => {
    promLog = (promLog + d).slice(-20000)
  })
  prom.stdout?.resume()
  // Lab teardown kills it too; stop it first so its storage can be removed.
  t.teardown(async () => {
    await killAndWait(prom)
    rmSync(dir, { recursive: true, force: true })
  })
  const until = Date.now() + 30000
  while (Date.now() < until) {
    if (prom.exitCode !== null) throw new Error(`prometheus exited (${prom.exitCode}): ${promLog}`)
    const r = await lab.router.ns.exec(
      ['curl', '-s', '-m', '2', '-o', '/dev/null', '-w', '%{http_code}', `${PROM}/-/ready`],
      { timeoutMs: 5000 },
    )
    if (r.stdout === '200') return
    await sleep(200)
  }
  throw new Error(`prometheus not ready within 30 s: ${promLog}`)
})

t.teardown(async () => {
  await daemon?.stop()
  await lab?.destroy()
})

t.test('Prometheus sees exactly the traffic the probe sent', async t => {
  // A scrape before the traffic: up, and the held counter at 0 (the baseline rate() needs).
  t.equal(await waitFor('up{job="dns-shaper"}', v => v === 1, 20000), 1, 'up == 1 before the traffic')
  t.equal(
    await waitFor('dns_shaper_packets_total{action="held",qtype="AAAA"}', v => v !== undefined, 10000),
    0,
    'held AAAA 0 before the traffic',
  )

  const probe = await runProbeIn(lab.client.ns, {
    server: lab.server.ipv4,
    types: ['A', 'AAAA'],
    count: COUNT,
    intervalMs: 1,
    timeoutMs: 2000,
    freshSocket: true,
  })
  const after = Date.now() / 1000
  t.equal(probe.byType.A?.sent, COUNT, 'probe sent 100 A')
  t.equal(probe.byType.AAAA?.sent, COUNT, 'probe sent 100 AAAA')
  t.equal(probe.lost, 0, 'none lost')
  t.ok((probe.byType.AAAA?.minUs ?? 0) >= DELAY_MS * 1000, `fastest AAAA ${probe.byType.AAAA?.minUs} us >= the hold`)

  // Wait for a scrape that started after the last answer (Prometheus stamps samples at scrape start).
  const ts = await waitFor(
    'timestamp(dns_shaper_packets_total{action="held",qtype="AAAA"})',
    v => v !== undefined && v > after,
    20000,
  )
  t.ok(
    ts !== undefined && ts > after,
    `a scrape after the traffic (sample at ${ts}, traffic ended ${after.toFixed(3)})`,
  )

  // Exact: every query crossed the router once (the probe does not retry, nothing was lost, nothing
  // else sends DNS in the lab, and Prometheus scrapes a literal IP).
  t.equal(await scalar('dns_shaper_packets_total{action="held",qtype="AAAA"}'), COUNT, 'held AAAA == 100')
  t.equal(await scalar('dns_shaper_packets_total{action="accepted",qtype="A"}'), COUNT, 'accepted A == 100')
  t.equal(await scalar('sum(dns_shaper_packets_total{action="held"})'), COUNT, 'nothing else held')
  t.equal(await scalar('dns_shaper_hold_seconds_count'), COUNT, 'hold histogram count == 100')
  t.equal(await scalar('dns_shaper_hold_seconds_bucket{le="+Inf"}'), COUNT, '+Inf bucket == count')
  t.equal(await scalar('dns_shaper_hold_seconds_bucket{le="0.004"}'), 0, 'no hold under 4 ms')
  t.equal(await scalar('dns_shaper_deadline_released_total'), COUNT, 'all released at their deadline')
  t.equal(await scalar('dns_shaper_held_packets'), 0, 'nothing held now')

  const p50 = await scalar('histogram_quantile(0.5, dns_shaper_hold_seconds_bucket)')
  t.ok(p50 !== undefined && p50 >= DELAY_MS / 1000, `hold p50 ${p50} s >= the ${DELAY_MS} ms delay`)
  t.ok(p50 !== undefined && p50 < 0.015, `hold p50 ${p50} s not far above it (< 15 ms on a shared 2-CPU host)`)
  const mean = await scalar('dns_shaper_hold_seconds_sum / dns_shaper_hold_seconds_count')
  t.ok(mean !== undefined && mean >= DELAY_MS / 1000, `mean hold ${mean} s >= the delay`)
  // The dashboard's form: quantile of per-second rates over a window that spans the traffic.
  const p50rate = await scalar('histogram_quantile(0.5, sum by (le) (rate(dns_shaper_hold_seconds_bucket[1m])))')
  t.ok(p50rate !== undefined && p50rate >= DELAY_MS / 1000 && p50rate < 0.015, `rate-based hold p50 ${p50rate} s`)
  const latP99 = await scalar('histogram_quantile(0.99, dns_shaper_verdict_latency_seconds_bucket)')
  t.ok(
    latP99 !== undefined && latP99 < DELAY_MS / 1000,
    `accepted-at-once verdict latency p99 ${latP99} s is under the hold`,
  )
  t.comment(
    `hold p50 ${p50} s (rate-based ${p50rate}), mean ${mean} s, verdict latency p99 ${latP99} s; probe A p50 ${probe.byType.A?.p50Us} us, AAAA p50 ${probe.byType.AAAA?.p50Us} us`,
  )

  t.equal(await scalar('up{job="dns-shaper"}'), 1, 'up == 1')
  t.equal(await scalar(`dns_shaper_dataplane_running{queue="0"}`), 1, 'data plane running')
  t.equal(await scalar('dns_shaper_config_reloads_total{result="error"}'), 0, 'pre-created reload counter scraped')
  t.ok((await scalar('dns_shaper_queue_waiting{queue="0"}')) !== undefined, 'kernel queue gauge for queue 0')
  t.equal(await scalar('dns_shaper_queue_user_dropped_total{queue="0"}'), 0, 'nothing passed unshaped')
  if (existsSync('/proc/net/stat/nf_conntrack')) {
    t.ok((await scalar('dns_shaper_conntrack_insert_failed_total')) !== undefined, 'conntrack insert_failed scraped')
    const header = readFileSync('/proc/net/stat/nf_conntrack', 'utf8').split('\n')[0] ?? ''
    if (/\bclashres\b|\bclash_resolve\b/.test(header))
      t.ok((await scalar('dns_shaper_conntrack_clash_resolve_total')) !== undefined, 'clash_resolve (clashres) scraped')
  }

  const targets = await lab.router.ns.exec(['curl', '-s', '-m', '5', `${PROM}/api/v1/targets`], { timeoutMs: 10000 })
  const active = (
    JSON.parse(targets.stdout) as {
      data: { activeTargets: { health: string; lastError: string; scrapeUrl: string }[] }
    }
  ).data.activeTargets
  t.same(
    active.map(a => [a.scrapeUrl, a.health, a.lastError]),
    [[`http://${target}/metrics`, 'up', '']],
    'the one target is healthy, no scrape error',
  )
})

t.test('promtool check metrics accepts a scrape with no warnings', async t => {
  const m = await fetchIn(lab.router.ns, `http://${target}/metrics`)
  t.equal(m.code, 200)
  const r = spawnSync('promtool', ['check', 'metrics'], { input: m.body, encoding: 'utf8', timeout: 20000 })
  t.equal(r.status, 0, 'exit 0')
  t.equal(`${r.stdout}${r.stderr}`.trim(), '', 'no lint output')
})

t.test('every dashboard expression evaluates on this Prometheus', async t => {
  const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
    panels: { title: string; targets?: { refId: string; expr: string }[] }[]
  }
  const sub = (e: string): string =>
    e
      .replaceAll('$__rate_interval', '1m')
      .replaceAll('$__range', '1h')
      .replaceAll('$cluster', '.*')
      .replaceAll('$node', '.*')
      .replaceAll('$job', '.+')
  let nonEmpty = 0
  let total = 0
  for (const p of dash.panels) {
    for (const tg of p.targets ?? []) {
      total++
      const v = await query(sub(tg.expr))
      t.equal(v.status, 'success', `${p.title}/${tg.refId}: ${v.error ?? 'ok'}`)
      if ((v.data?.result.length ?? 0) > 0) nonEmpty++
    }
  }
  t.comment(`${nonEmpty} of ${total} dashboard queries returned data`)
  const aaaa = await scalar(
    sub('sum(rate(dns_shaper_packets_total{node=~"$node", action="held", qtype="AAAA"}[$__rate_interval]))'),
  )
  t.ok(aaaa !== undefined && aaaa > 0, `race panel: AAAA held rate ${aaaa}/s > 0`)
  const configured = await scalar(sub('max(dns_shaper_hold_configured_seconds{node=~"$node", qtype="AAAA"})'))
  t.equal(configured, DELAY_MS / 1000, 'configured hold line')
})
