import t from 'tap'
import http from 'node:http'
import net from 'node:net'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Daemon, type Rules } from '../src/daemon.js'
import { Shaper } from '../src/shaper.js'
import { loadConfig } from '../src/config/load.js'
import { createLogger } from '../src/log.js'
import { FakeQueue } from './helpers/fake-queue.js'

interface Harness {
  d: Daemon
  queues: FakeQueue[]
  rules: string[]
  logs: Record<string, unknown>[]
}

function harness(
  argv: string[],
  opts: { failInstall?: boolean; failRemove?: boolean; upToDate?: () => boolean } = {},
): Harness {
  const queues: FakeQueue[] = []
  const rules: string[] = []
  const logs: Record<string, unknown>[] = []
  const log = createLogger('debug', line => {
    logs.push(JSON.parse(line) as Record<string, unknown>)
  })
  const loaded = loadConfig(argv, { env: {} })
  const d = new Daemon({
    argv,
    loaded,
    log,
    env: {},
    reconcileIntervalMs: 60_000,
    createRules: (): Rules => ({
      install: async () => {
        if (opts.failInstall) throw new Error('iptables-restore: permission denied')
        rules.push('install')
      },
      remove: async () => {
        if (opts.failRemove) throw new Error('locked')
        rules.push('remove')
      },
      upToDate: async () => opts.upToDate?.() ?? true,
    }),
    createShaper: (config, r, onFatal) =>
      new Shaper({
        config,
        rules: r,
        onFatal,
        createQueue: (num, f, max) => {
          const q = new FakeQueue(num, f, max)
          queues.push(q)
          return q
        },
      }),
  })
  return { d, queues, rules, logs }
}

function get(port: number, p: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: p }, res => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', c => {
          body += c
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      })
      .on('error', reject)
  })
}

t.test('start binds before installing rules; stop removes rules before unbinding', async t => {
  const h = harness(['--metrics-listen', 'off'])
  await h.d.start()
  t.equal(h.queues.length, 1)
  t.same(h.rules, ['install'])
  t.equal(h.d.health().ok, true)
  t.same(h.d.readiness(), { ok: true, detail: 'queue bound, rules installed' })
  const msgs = h.logs.map(l => l.msg)
  t.ok(msgs.indexOf('queue bound') < msgs.indexOf('rules installed'), 'queue bound first')
  t.equal(await h.d.stop('test'), 0)
  t.equal(await h.d.stop('again'), 0, 'idempotent')
  t.same(h.rules, ['install', 'remove'])
  t.equal(h.queues[0]!.stopped, 1)
  t.equal(await h.d.done, 0)
  t.match(
    h.logs.find(l => l.msg === 'stopped'),
    { accepted: 0, held: 0 },
  )
})

t.test('rules none: ready without rules; nothing installed or removed', async t => {
  const h = harness(['--rules', 'none', '--metrics-listen', 'off'])
  await h.d.start()
  t.same(h.d.readiness(), { ok: true, detail: 'queue bound; rules unmanaged' })
  await h.d.stop('test')
  t.same(h.rules, [])
})

t.test('a failed rule install unbinds and rethrows', async t => {
  const h = harness(['--metrics-listen', 'off'], { failInstall: true })
  await t.rejects(h.d.start(), /permission denied/)
  t.equal(h.queues[0]!.stopped, 1)
})

t.test('a failed rule removal exits 1 with advice', async t => {
  const h = harness(['--metrics-listen', 'off'], { failRemove: true })
  await h.d.start()
  t.equal(await h.d.stop('test'), 1)
  t.ok(h.logs.some(l => l.level === 'error' && /dns-shaper rules remove/.test(String(l.msg))))
})

t.test('data-plane death: unhealthy, stops, exit 1', async t => {
  const h = harness(['--metrics-listen', 'off'])
  await h.d.start()
  h.queues[0]!.onFatal(Object.assign(new Error('recvmmsg: bad fd'), { code: 'EBADF' }))
  t.equal(await h.d.done, 1)
  t.equal(h.d.health().ok, false)
  t.match(h.d.health().detail, /data plane died/)
  t.same(h.rules, ['install', 'remove'], 'rules removed so DNS is not queued to nobody')
})

async function freePort(): Promise<number> {
  const srv = net.createServer()
  await new Promise<void>(r => srv.listen(0, '127.0.0.1', r))
  const port = (srv.address() as net.AddressInfo).port
  await new Promise(r => srv.close(r))
  return port
}

t.test('HTTP endpoints on the configured address', async t => {
  const h = harness(['--metrics-listen', `127.0.0.1:${await freePort()}`])
  await h.d.start()
  t.teardown(() => h.d.stop('test'))
  const log = h.logs.find(l => l.msg === 'metrics listening')
  const port = Number(log?.port)
  t.ok(port > 0)
  const m = await get(port, '/metrics')
  t.equal(m.status, 200)
  t.match(m.body, /^dns_shaper_packets_total\{action="held",qtype="AAAA"\} 0$/m)
  t.match(m.body, /^process_cpu_seconds_total /m)
  t.match(m.body, /^dns_shaper_hold_configured_seconds\{qtype="AAAA"\} 0\.005$/m)
  t.equal((await get(port, '/healthz')).status, 200)
  t.equal((await get(port, '/readyz')).status, 200)
  t.equal((await get(port, '/nope')).status, 404)
})

t.test(
  'reload: policy fields apply, restart-only fields are kept with a warning, bad file keeps the old policy',
  async t => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dnss-cfg-'))
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
    const file = path.join(dir, 'c.json')
    fs.writeFileSync(file, JSON.stringify({ delay: 5 }))
    const h = harness(['--metrics-listen', 'off', '--config', file])
    await h.d.start()
    t.teardown(() => h.d.stop('test'))
    fs.writeFileSync(file, JSON.stringify({ delay: 8, qtypes: 'AAAA,HTTPS', queue: 7 }))
    t.equal(h.d.reload(), true)
    await new Promise(r => setTimeout(r, 20))
    t.same(h.rules, ['install', 'install'], 'HTTPS is queued now: the kernel filter rules were replaced')
    t.ok(h.logs.some(l => l.msg === 'rules updated for the reloaded query types'))
    const p = h.queues[0]!.policies.at(-1)!
    t.equal(p.holdMs[p.table[65]!], 8)
    t.equal(p.holdMs[p.table[28]!], 8)
    t.ok(
      h.logs.some(
        l =>
          l.msg === 'these settings change only on restart; kept the running values' &&
          JSON.stringify(l.settings) === '["queue"]',
      ),
    )
    const before = h.queues[0]!.policies.length
    fs.writeFileSync(file, '{broken')
    t.equal(h.d.reload(), false)
    t.equal(h.queues[0]!.policies.length, before, 'no new policy sent')
    fs.writeFileSync(file, JSON.stringify({ delay: 2, qtypes: 'AAAA,HTTPS', queue: 7 }))
    t.equal(h.d.reload(), true)
    await new Promise(r => setTimeout(r, 20))
    t.equal(h.rules.length, 2, 'same queued types: rules left alone')
    t.ok(h.logs.some(l => l.msg === 'config reload failed; the running policy is unchanged'))
    const text = await h.d.metrics!.render()
    t.match(text, /^dns_shaper_config_reloads_total\{result="ok"\} 2$/m)
    t.match(text, /^dns_shaper_config_reloads_total\{result="error"\} 1$/m)
  },
)

t.test('reconcile puts drifted rules back and counts it', async t => {
  let upToDate = true
  const h = harness(['--metrics-listen', 'off'], { upToDate: () => upToDate })
  await h.d.start()
  t.teardown(() => h.d.stop('test'))
  t.equal(await h.d.reconcile(), false)
  upToDate = false
  t.equal(await h.d.reconcile(), true)
  t.same(h.rules, ['install', 'install'])
  t.match(await h.d.metrics!.render(), /^dns_shaper_rules_reinstalled_total 1$/m)
})
