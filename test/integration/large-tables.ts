// Beside a big kube-proxy: a network namespace whose nat table holds 100,000 kube-proxy-like rules
// (10,000 chains), loaded with one restore, and the daemon reconciling every 300 ms. Its peak RSS
// (VmHWM) must stay within 1.5x of the same daemon's beside an empty nat table, and no /healthz
// answer may take longer than 250 ms; on the legacy backend and on nft. Never the root namespace.
import t from 'tap'
import { bareNamespace, daemonIn, peakRssKiB, pollIn, skipReason } from '../helpers/node-lab.js'
import { fetchIn, metricValue } from '../helpers/daemon.js'

const skip = skipReason()
if (skip !== false) {
  t.plan(0, skip)
  process.exit(0)
}

const CHAINS = 10_000
const PER_CHAIN = 10
const PORT = 9363

/** kube-proxy-like nat rules: CHAINS chains of PER_CHAIN `-s ... -m comment ... -j MARK` rules each. */
function natRules(): string {
  const out = ['*nat']
  for (let c = 0; c < CHAINS; c++) out.push(`:KUBE-SVC-${c.toString(16).padStart(16, '0').toUpperCase()} - [0:0]`)
  for (let c = 0; c < CHAINS; c++) {
    const chain = `KUBE-SVC-${c.toString(16).padStart(16, '0').toUpperCase()}`
    for (let r = 0; r < PER_CHAIN; r++) {
      const n = c * PER_CHAIN + r
      out.push(
        `-A ${chain} -s 10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}/32 -m comment --comment "ns/svc-${c}:http" -j MARK --set-xmark 0x4000/0x4000`,
      )
    }
  }
  out.push('COMMIT', '')
  return out.join('\n')
}

interface Run {
  hwmKiB: number
  maxHealthMs: number
  statuses: Record<string, number>
  reconciledForS: number
}

/** The daemon for 6 s with a 300 ms reconcile; /healthz polled throughout. */
async function measure(backend: 'legacy' | 'nft', withRules: boolean, flag: string = backend): Promise<Run> {
  const ns = await bareNamespace()
  try {
    if (withRules) {
      const restore = backend === 'legacy' ? 'iptables-legacy-restore' : 'iptables-nft-restore'
      await ns.execOk([restore, '--noflush'], { input: natRules(), timeoutMs: 300_000 })
      const count = (await ns.execOk([`iptables-${backend}-save`, '-t', 'nat'], { timeoutMs: 120_000 })).stdout
        .split('\n')
        .filter(l => l.startsWith('-A ')).length
      if (count !== CHAINS * PER_CHAIN) throw new Error(`nat table holds ${count} rules, not ${CHAINS * PER_CHAIN}`)
    }
    const d = daemonIn(ns, ['--iptables-backend', flag, '--metrics-listen', `127.0.0.1:${PORT}`], {
      DNS_SHAPER_RECONCILE_INTERVAL_MS: '300',
    })
    try {
      await d.ready(60_000)
      const readyAt = Date.now() / 1000
      const poll = await pollIn(ns, [`http://127.0.0.1:${PORT}/healthz`], { forMs: 6000, everyMs: 20, timeoutMs: 2000 })
      const m = await fetchIn(ns, `http://127.0.0.1:${PORT}/metrics`)
      const last = metricValue(m.body, 'dns_shaper_rules_last_sync_timestamp_seconds') ?? 0
      const hwmKiB = peakRssKiB(d.child.pid!)
      return { hwmKiB, maxHealthMs: poll.maxMs, statuses: poll.statuses, reconciledForS: last - readyAt }
    } finally {
      await d.stop(30_000)
    }
  } finally {
    await ns.destroy()
  }
}

const figures: string[] = []
t.teardown(() => {
  for (const f of figures) console.log(`# figure: ${f}`)
})

for (const backend of ['legacy', 'nft'] as const) {
  t.test(
    `${backend}: beside 100,000 nat rules, peak RSS within 1.5x of an empty table, /healthz never slow`,
    async t => {
      const empty = await measure(backend, false)
      const full = await measure(backend, true)
      const mib = (k: number): string => (k / 1024).toFixed(1)
      figures.push(
        `${backend} ${new Date().toISOString().slice(0, 10)}: VmHWM ${mib(full.hwmKiB)} MiB beside ${CHAINS * PER_CHAIN} nat rules vs ${mib(empty.hwmKiB)} MiB empty ` +
          `(${(full.hwmKiB / empty.hwmKiB).toFixed(2)}x); slowest /healthz ${full.maxHealthMs.toFixed(1)} ms (empty: ${empty.maxHealthMs.toFixed(1)} ms)`,
      )
      for (const r of [empty, full]) {
        t.same(Object.keys(r.statuses), ['200'], `every /healthz answered 200 (${JSON.stringify(r.statuses)})`)
        t.ok(r.reconciledForS > 4, `the rules were checked for ${r.reconciledForS.toFixed(1)} s after ready`)
      }
      t.ok(
        full.hwmKiB <= 1.5 * empty.hwmKiB,
        `peak RSS ${mib(full.hwmKiB)} MiB <= 1.5 x ${mib(empty.hwmKiB)} MiB (the same daemon beside an empty nat table)`,
      )
      t.ok(full.maxHealthMs <= 250, `slowest /healthz ${full.maxHealthMs.toFixed(1)} ms <= 250 ms`)
    },
  )
}

t.test('auto on a legacy node: the backend detection stays within 1.5x too', async t => {
  const empty = await measure('legacy', false, 'auto')
  const full = await measure('legacy', true, 'auto')
  const mib = (k: number): string => (k / 1024).toFixed(1)
  figures.push(
    `auto (legacy node) ${new Date().toISOString().slice(0, 10)}: VmHWM ${mib(full.hwmKiB)} MiB beside ${CHAINS * PER_CHAIN} nat rules vs ${mib(empty.hwmKiB)} MiB empty ` +
      `(${(full.hwmKiB / empty.hwmKiB).toFixed(2)}x); slowest /healthz ${full.maxHealthMs.toFixed(1)} ms`,
  )
  t.ok(full.hwmKiB <= 1.5 * empty.hwmKiB, `peak RSS ${mib(full.hwmKiB)} MiB <= 1.5 x ${mib(empty.hwmKiB)} MiB`)
  t.ok(full.maxHealthMs <= 250, `slowest /healthz ${full.maxHealthMs.toFixed(1)} ms <= 250 ms`)
})
