// Soak: steady A+AAAA+HTTPS load (dnsperf, 1000 qps by default) through the daemon, run with the image's
// node flags, for 60 s (CI) or longer (scripts/soak.sh sets DNS_SHAPER_SOAK_SECONDS), with a SIGHUP every
// second that changes the delays and the held types. Samples the daemon's RSS, open fds and held gauge every 5 s: memory must
// level off after warm-up, fds must not leak, nothing may stay held, nothing be lost, no hold may last
// longer than the largest configured hold + 50 ms, and the installed rules must match the last config.
import t from 'tap'
import { readdirSync, readFileSync, readlinkSync, realpathSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Lab } from '../../harness/topology.js'
import { CLI, DaemonProcess, checkoutImageNodeFlags, fetchIn } from '../../harness/daemon.js'
import { metricValue, sampleOf } from '../../harness/prom.js'
import { loadConfig } from '../../src/config/load.js'
import { RuleManager } from '../../src/rules/manager.js'
import { skipFileUnless } from '../../harness/skip.js'
import { withDnsLab } from '../../harness/dns-lab.js'
import { LARGEST_HOLD_S, RELOAD_CYCLE as RELOADS } from '../helpers/reload-cycle.js'

skipFileUnless({ root: 'network namespaces, iptables, NFQUEUE' })

const SECONDS = Number(process.env.DNS_SHAPER_SOAK_SECONDS ?? 60)
const QPS = Number(process.env.DNS_SHAPER_SOAK_QPS ?? 1000)
/** A SIGHUP this often, each with the next config of RELOADS (0: no reloads). */
const RELOAD_MS = Number(process.env.DNS_SHAPER_SOAK_RELOAD_MS ?? 1000)
const SAMPLE_MS = 5000
const WARMUP_S = Math.min(20, Math.max(10, SECONDS / 6))
/** RSS growth allowed after warm-up (bytes); 10 MB for the CI minute, a little more for long runs. */
const RSS_BOUND = Number(process.env.DNS_SHAPER_SOAK_RSS_BOUND ?? (SECONDS > 120 ? 16 : 10) * 1024 * 1024)
/** The daemon's node binary (named node): this one by default; the image's (Node 24) to measure it. */
const DAEMON_NODE = process.env.DNS_SHAPER_SOAK_NODE ?? process.execPath
const HOSTS = 50
const METRICS = '9363'
if (!(SECONDS >= 20 && SECONDS <= 7200) || !(QPS > 0 && QPS <= 20000) || !(RELOAD_MS === 0 || RELOAD_MS >= 100))
  throw new Error(
    'DNS_SHAPER_SOAK_SECONDS must be 20..7200, DNS_SHAPER_SOAK_QPS 1..20000, DNS_SHAPER_SOAK_RELOAD_MS 0 or >= 100',
  )

const HOLD_BOUND_S = LARGEST_HOLD_S + 0.05

let lab: Lab
const work = mkdtempSync(join(tmpdir(), 'dnss-soak-'))
withDnsLab(l => (lab = l), { hosts: HOSTS, cleanup: () => rmSync(work, { recursive: true, force: true }) })

interface Sample {
  t: number
  rssKb: number
  fds: number
  held: number
  seen: number
}

function rssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Number(m?.[1] ?? NaN)
}

t.test(`soak: ${SECONDS} s at ${QPS} qps`, { timeout: (SECONDS + 120) * 1000 }, async t => {
  const configFile = join(work, 'config.json')
  writeFileSync(configFile, JSON.stringify(RELOADS[0]))
  const args = [
    '--hooks',
    'prerouting',
    '--config',
    configFile,
    '--metrics-listen',
    `${lab.router.clientIpv4}:${METRICS}`,
  ]
  // Node runs the daemon as the image's ENTRYPOINT does (--jitless, a 1 MiB semi-space): with node's
  // defaults V8 grows its young generation with the reloads' allocation, to 30 MB committed, and RSS
  // with it (measured 2026-12-07, test/integration/reload-memory.ts), which is not how the daemon runs.
  const nodeFlags = checkoutImageNodeFlags()
  t.comment(`daemon: ${DAEMON_NODE} ${nodeFlags.join(' ')}`)
  const d = new DaemonProcess(lab.router.ns, ['run', ...args], { command: [DAEMON_NODE, ...nodeFlags, CLI] })
  t.teardown(() => d.stop())
  await d.ready()
  const pid = d.child.pid!
  // `ip netns exec` execs the daemon in place: the pid is node's own.
  // (Its comm is no help: Node 24 names its main thread MainThread.)
  t.equal(readlinkSync(`/proc/${pid}/exe`), realpathSync(DAEMON_NODE), 'sampling the daemon process itself')

  const file = join(work, 'queries.txt')
  writeFileSync(
    file,
    Array.from(
      { length: HOSTS },
      (_, i) =>
        `host${i + 1}.example.test A\nhost${i + 1}.example.test AAAA\n` +
        (i % 5 === 0 ? `host${i + 1}.example.test HTTPS\n` : ''),
    ).join(''),
  )
  const perf = lab.client.ns.spawn(
    ['dnsperf', '-s', lab.server.ipv4, '-d', file, '-l', String(SECONDS), '-Q', String(QPS), '-c', '8', '-t', '2'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let out = ''
  perf.stdout?.setEncoding('utf8').on('data', (s: string) => {
    out += s
  })
  perf.stderr?.setEncoding('utf8').on('data', (s: string) => {
    out += s
  })
  const killer = setTimeout(() => perf.kill('SIGKILL'), (SECONDS + 30) * 1000)
  const perfDone = new Promise<void>(r =>
    perf.once('exit', () => {
      clearTimeout(killer)
      r()
    }),
  )

  const samples: Sample[] = []
  const start = Date.now()
  // Reload every RELOAD_MS with the next config; stop 3 s before the end so the last one settles.
  let reloads = 0
  let last = 0
  const reloader =
    RELOAD_MS > 0
      ? setInterval(() => {
          if (Date.now() - start > (SECONDS - 3) * 1000) return
          last = (last + 1) % RELOADS.length
          writeFileSync(configFile, JSON.stringify(RELOADS[last]))
          d.signal('SIGHUP')
          reloads++
        }, RELOAD_MS)
      : undefined
  t.teardown(() => clearInterval(reloader))

  let finished = false
  void perfDone.then(() => {
    finished = true
  })
  while (!finished && Date.now() - start < (SECONDS + 30) * 1000) {
    const m = await fetchIn(lab.router.ns, `http://${lab.router.clientIpv4}:${METRICS}/metrics`)
    const seen = m.body
      .split('\n')
      .filter(l => l.startsWith('dns_shaper_packets_total{'))
      .reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0)
    samples.push({
      t: Math.round((Date.now() - start) / 1000),
      rssKb: rssKb(pid),
      fds: readdirSync(`/proc/${pid}/fd`).length,
      held: metricValue(m.body, 'dns_shaper_held_packets') ?? NaN,
      seen,
    })
    await Promise.race([perfDone, new Promise(r => setTimeout(r, SAMPLE_MS))])
  }
  await perfDone
  clearInterval(reloader)
  await new Promise(r => setTimeout(r, 1000))
  const endMetrics = (await fetchIn(lab.router.ns, `http://${lab.router.clientIpv4}:${METRICS}/metrics`)).body
  // The daemon's CPU time (utime + stime, in clock ticks of 10 ms): what its threads, JS and data plane, cost.
  const cpuTicks = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ').slice(11, 13).map(Number)
  const end: Sample = {
    t: Math.round((Date.now() - start) / 1000),
    rssKb: rssKb(pid),
    fds: readdirSync(`/proc/${pid}/fd`).length,
    held: metricValue(endMetrics, 'dns_shaper_held_packets') ?? NaN,
    seen: 0,
  }

  const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? NaN)
  const sent = num(/Queries sent:\s+(\d+)/)
  const lost = num(/Queries lost:\s+(\d+)/)
  const qps = num(/Queries per second:\s+([\d.]+)/)
  t.ok(sent >= SECONDS * QPS * 0.9, `dnsperf sent ${sent} queries (${qps.toFixed(0)} qps answered)`)
  t.equal(lost, 0, `none of ${sent} lost`)

  const warm = samples.filter(s => s.t >= WARMUP_S)
  t.ok(warm.length >= 2, `${warm.length} samples after the ${WARMUP_S} s warm-up`)
  const rssWarm = warm[0]?.rssKb ?? NaN
  const rssMax = Math.max(...warm.map(s => s.rssKb), end.rssKb)
  const growth = (rssMax - rssWarm) * 1024
  // With the image's node flags RSS settles (2026-12-07, this machine, Node 20): +4.4 MB after the
  // warm-up over 56 reloads in 60 s; over 176 reloads in 180 s +5.6 MB, flat from the 120th second on.
  // The growth the soak saw before ran node with its defaults, whose young generation grows with the
  // reloads' allocation (to 30 MB committed; RSS levels off near 112 MB). Nothing is retained per
  // reload: test/integration/reload-memory.ts checks that after forced GCs.
  t.ok(
    growth < RSS_BOUND,
    `RSS after warm-up ${rssWarm} kB, peak ${rssMax} kB: grew ${(growth / 1048576).toFixed(1)} MB < ${RSS_BOUND / 1048576} MB`,
  )
  const fds = [...warm.map(s => s.fds), end.fds]
  // A scrape's HTTP connection may be open while sampling: allow 2; a reload's iptables child has 3 pipes.
  const fdSlack = RELOAD_MS > 0 ? 8 : 2
  t.ok(Math.max(...fds) - Math.min(...fds) <= fdSlack, `fds steady: ${Math.min(...fds)}..${Math.max(...fds)}`)
  t.equal(end.held, 0, 'nothing held at the end')
  t.ok(
    Math.max(...samples.map(s => s.held)) < QPS,
    `held gauge stayed small (max ${Math.max(...samples.map(s => s.held))})`,
  )
  const held = sampleOf(endMetrics, 'dns_shaper_packets_total{action="held",qtype="AAAA"}')
  // sampleOf throws on a missing metric: an error counter that vanished must not read as "no errors".
  const errors = ['verdict_errors', 'send_errors', 'recv_errors'].map(k =>
    sampleOf(endMetrics, `dns_shaper_${k}_total`),
  )
  t.same(errors, [0, 0, 0], 'no verdict, send or receive errors')

  // No hold longer than the largest configured one + 50 ms: every hold falls in the bucket there.
  const holds = metricValue(endMetrics, 'dns_shaper_hold_seconds_count') ?? NaN
  const withinBound = metricValue(endMetrics, `dns_shaper_hold_seconds_bucket{le="${HOLD_BOUND_S}"}`) ?? NaN
  t.ok(holds > 0, `${holds} packets held`)
  // For a failure: how far over the bound, by bucket.
  const over = ['0.25', '1', '+Inf'].map(
    le => `le=${le}: ${(metricValue(endMetrics, `dns_shaper_hold_seconds_bucket{le="${le}"}`) ?? NaN) - withinBound}`,
  )
  t.comment(`holds over ${HOLD_BOUND_S * 1000} ms, cumulative: ${over.join(', ')}`)
  t.equal(
    withinBound,
    holds,
    `all ${holds} holds took <= ${HOLD_BOUND_S * 1000} ms (largest configured: 50 ms): ${holds - withinBound} longer`,
  )
  if (RELOAD_MS > 0) {
    t.ok(reloads >= (SECONDS - 5) * (1000 / RELOAD_MS) * 0.8, `${reloads} reloads`)
    t.equal(metricValue(endMetrics, 'dns_shaper_config_reloads_total{result="ok"}'), reloads, 'every reload applied')
  }
  t.equal(metricValue(endMetrics, 'dns_shaper_config_reloads_total{result="error"}'), 0)
  for (const op of ['install', 'reconcile', 'remove'])
    t.equal(metricValue(endMetrics, `dns_shaper_rules_sync_errors_total{op="${op}"}`), 0, `no rule ${op} errors`)
  t.equal(metricValue(endMetrics, 'dns_shaper_rules_installed{family="ipv4"}'), 1)

  // The installed rules match the last config: the kernel filter queues exactly its types.
  const lastConfig = loadConfig(['--config', configFile, '--hooks', 'prerouting'], { env: {} }).config
  const status = await new RuleManager({ config: lastConfig, netns: lab.router.ns.name }).status()
  t.same(
    status.families.map(f => [f.family, f.upToDate]),
    [
      ['ipv4', true],
      ['ipv6', true],
    ],
    `live rules match the last config (${JSON.stringify(RELOADS[last])})`,
  )

  const every = Math.max(1, Math.ceil(samples.length / 24))
  const table = samples
    .filter((_, i) => i % every === 0 || i === samples.length - 1)
    .map(s => `${s.t}s rss=${s.rssKb}kB fds=${s.fds} held=${s.held}`)
    .join('; ')
  t.comment(`samples: ${table}`)
  const summary = {
    seconds: SECONDS,
    qps: QPS,
    sent,
    lost,
    answeredQps: qps,
    aaaaHeld: held,
    reloads,
    holds,
    rssWarmKb: rssWarm,
    rssPeakKb: rssMax,
    rssEndKb: end.rssKb,
    cpuSeconds: (cpuTicks[0]! + cpuTicks[1]!) / 100,
    fdsMin: Math.min(...fds),
    fdsMax: Math.max(...fds),
    heldMax: Math.max(...samples.map(s => s.held)),
    heldEnd: end.held,
    samples,
  }
  t.comment(`soak summary: ${JSON.stringify({ ...summary, samples: undefined })}`)
  if (process.env.DNS_SHAPER_SOAK_REPORT)
    writeFileSync(process.env.DNS_SHAPER_SOAK_REPORT, JSON.stringify(summary, null, 2) + '\n')
  t.equal((await d.stop()).code, 0, 'SIGTERM exits 0')
})
