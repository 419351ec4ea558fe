import t, { type Test } from 'tap'
import http from 'node:http'
import net from 'node:net'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Daemon, type DaemonOptions, type Rules } from '../../src/daemon/lifecycle.js'
import { Shaper } from '../../src/dataplane/shaper.js'
import { loadConfig } from '../../src/config/load.js'
import type { Config } from '../../src/config/types.js'
import type { RulePlan } from '../../src/rules/plan.js'
import { queuedQtypes } from '../../src/dataplane/qtypes.js'
import { createLogger } from '../../src/log.js'
import { FakeQueue } from '../helpers/fake-queue.js'
import { FakeClock } from '../helpers/fake-clock.js'

interface Harness {
  d: Daemon
  queues: FakeQueue[]
  /** Rule operations in the order they ran: 'install' | 'remove'. */
  rules: string[]
  logs: Record<string, unknown>[]
  fake: FakeRuleState
}

/**
 * A fake kernel table plus every fake rule manager the daemon built: what got installed (the queued
 * types of the config the install ran with), how many operations overlapped, and how often
 * createRules was called. Each operation works from the rule plan it is handed, as RuleManager's do.
 */
interface FakeRuleState {
  kernel: string | undefined
  created: number
  active: number
  maxActive: number
  statusCalls: number
  installDelayMs: (n: number) => number
  failInstall: boolean
  /** Thrown by installs instead of the default failure, while failInstall is set. */
  installError: Error | undefined
  /** Makes removals wait for this promise. */
  removeGate: Promise<void> | undefined
  /** Makes the next install wait for this promise. */
  gate: Promise<void> | undefined
  /** Each distinct rule plan the operations were handed, in order. */
  plans: RulePlan[]
  installCalled: () => void
}

const queued = (c: Readonly<Config>): string => JSON.stringify(queuedQtypes(c.qtypes, c.mode === 'pair'))

function harness(
  argv: string[],
  opts: {
    failInstall?: boolean
    failRemove?: boolean
    upToDate?: () => boolean
    installDelayMs?: (n: number) => number
    configWatch?: DaemonOptions['configWatch']
    stopRulesDeadlineMs?: number
  } = {},
): Harness {
  const queues: FakeQueue[] = []
  const rules: string[] = []
  const logs: Record<string, unknown>[] = []
  const log = createLogger('debug', line => {
    logs.push(JSON.parse(line) as Record<string, unknown>)
  })
  // The probe listener's default port is fixed: tests that do not ask for it leave it off.
  if (!argv.some(a => a.startsWith('--probe-listen'))) argv = [...argv, '--probe-listen', 'off']
  const loaded = loadConfig(argv, { env: {} })
  const fake: FakeRuleState = {
    kernel: undefined,
    created: 0,
    active: 0,
    maxActive: 0,
    statusCalls: 0,
    installDelayMs: opts.installDelayMs ?? (() => 0),
    failInstall: opts.failInstall ?? false,
    installError: undefined,
    removeGate: undefined,
    gate: undefined,
    installCalled: () => {},
    plans: [],
  }
  let installs = 0
  const op = async (fn: () => Promise<void>): Promise<void> => {
    fake.active++
    fake.maxActive = Math.max(fake.maxActive, fake.active)
    try {
      await fn()
    } finally {
      fake.active--
    }
  }
  const d = new Daemon({
    argv,
    loaded,
    log,
    env: {},
    reconcileIntervalMs: 60_000,
    stopRulesDeadlineMs: opts.stopRulesDeadlineMs,
    configWatch: opts.configWatch,
    createRules: (config: Config): Rules & { upToDate: () => Promise<boolean> } => {
      fake.created++
      // The config of the last plan an operation was handed (upToDate below has no plan argument).
      let cfg: Readonly<Config> = config
      const seen = (plan: RulePlan): Readonly<Config> => {
        if (fake.plans.at(-1) !== plan) fake.plans.push(plan)
        return plan.config
      }
      const matches = (): boolean => (opts.upToDate?.() ?? true) && fake.kernel === queued(cfg)
      return {
        install: plan =>
          op(async () => {
            const used = (cfg = seen(plan))
            fake.installCalled()
            if (fake.gate) await fake.gate
            await new Promise(r => setTimeout(r, fake.installDelayMs(installs++)))
            if (fake.failInstall) throw fake.installError ?? new Error('iptables-restore: permission denied')
            fake.kernel = queued(used)
            rules.push('install')
          }),
        remove: plan =>
          op(async () => {
            cfg = seen(plan)
            if (fake.removeGate) await fake.removeGate
            if (opts.failRemove) throw new Error('locked')
            fake.kernel = undefined
            rules.push('remove')
          }),
        status: async plan => {
          cfg = seen(plan)
          fake.statusCalls++
          await new Promise(r => setTimeout(r, 5))
          const ok = matches()
          return [
            { family: 'ipv4', ok },
            { family: 'ipv6', ok },
          ]
        },
        // The interface before one manager per daemon: kept so the tests also run against it.
        upToDate: async () => {
          fake.statusCalls++
          await new Promise(r => setTimeout(r, 5))
          return matches()
        },
      }
    },
    createShaper: (plan, onFatal) =>
      new Shaper({
        plan,
        onFatal,
        createQueue: (num, f, max) => {
          const q = new FakeQueue(num, f, max)
          queues.push(q)
          return q
        },
      }),
  })
  return { d, queues, rules, logs, fake }
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

t.test('start binds before installing rules; stop unbinds, then removes the rules', async t => {
  const h = harness(['--metrics-listen', 'off'])
  await h.d.start()
  t.equal(h.queues.length, 1)
  t.same(h.rules, ['install'])
  t.equal(h.d.health().ok, true)
  t.same(h.d.readiness(), { ok: true, detail: 'queue bound, rules installed' })
  const msgs = h.logs.map(l => l.msg)
  t.ok(msgs.indexOf('queue bound') < msgs.indexOf('rules installed'), 'queue bound first')
  const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  t.match(
    h.logs[0],
    { msg: 'starting', version: pkg.version, node: process.versions.node },
    'version on the start line',
  )
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
    await h.d.reconcile()
    t.equal(h.fake.plans.length, 2, 'and no new rule plan handed over: one per change (start, HTTPS)')
    t.ok(h.logs.some(l => l.msg === 'config reload failed; the running policy is unchanged'))
    const text = await h.d.metrics!.render()
    t.match(text, /^dns_shaper_config_reloads_total\{result="ok"\} 2$/m)
    t.match(text, /^dns_shaper_config_reloads_total\{result="error"\} 1$/m)
    t.match(text, /^dns_shaper_config_last_reload_successful 1$/m, 'the last reload succeeded')
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

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void
  const promise = new Promise<void>(r => {
    resolve = r
  })
  return { promise, resolve }
}

function configFile(
  t: Test,
  content: Record<string, unknown>,
): { file: string; write: (c: Record<string, unknown>) => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dnss-cfg-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'c.json')
  const write = (c: Record<string, unknown>): void => fs.writeFileSync(file, JSON.stringify(c))
  write(content)
  return { file, write }
}

const settle = (ms = 50): Promise<void> => new Promise(r => setTimeout(r, ms))

t.test('SIGTERM while the start-up install runs: the rules it installs are removed, start goes no further', async t => {
  const port = await freePort()
  const h = harness(['--metrics-listen', `127.0.0.1:${port}`])
  const gate = deferred()
  h.fake.gate = gate.promise
  const called = deferred()
  h.fake.installCalled = called.resolve
  const started = h.d.start()
  await called.promise
  const stopped = h.d.stop('SIGTERM')
  gate.resolve() // the install lands after the stop began
  await started
  t.equal(await stopped, 0)
  t.same(h.rules, ['install', 'remove'], 'what the install put in is removed')
  t.equal(h.fake.kernel, undefined, 'no rules left')
  t.notOk(
    h.logs.some(l => l.msg === 'ready' || l.msg === 'metrics listening'),
    'start did not go on after the stop',
  )
  await t.rejects(get(port, '/healthz'), { code: 'ECONNREFUSED' }, 'no listener left behind')
  t.equal(h.queues[0]!.stopped, 1, 'queue unbound')
})

t.test('stop in the same tick as start: whatever start did is undone', async t => {
  const h = harness(['--metrics-listen', 'off'])
  const started = h.d.start()
  const code = await h.d.stop('SIGTERM')
  await started
  t.equal(code, 0)
  t.equal(h.fake.kernel, undefined)
  t.equal(h.rules.at(-1) ?? 'remove', 'remove', 'the last rule operation is a removal (or none ran)')
  t.notOk(h.logs.some(l => l.msg === 'ready'))
})

t.test('stop before start: start binds nothing and installs nothing', async t => {
  const h = harness(['--metrics-listen', 'off'])
  t.equal(await h.d.stop('SIGTERM'), 0)
  await h.d.start()
  t.same(h.queues, [])
  t.same(h.rules, [])
  t.equal(h.fake.created, 0)
})

t.test(
  'one rule manager: reloads during the start-up install run after it, in order; the last config wins',
  async t => {
    const cfg = configFile(t, { qtypes: 'AAAA' })
    // The start-up install is slow; the reinstalls that reloads ask for are quick.
    const h = harness(['--metrics-listen', 'off', '--mode', 'fixed', '--config', cfg.file], {
      installDelayMs: n => (n === 0 ? 80 : 1),
    })
    const called = deferred()
    h.fake.installCalled = called.resolve
    const started = h.d.start()
    await called.promise
    cfg.write({ qtypes: 'AAAA,HTTPS' })
    t.equal(h.d.reload(), true)
    cfg.write({ qtypes: 'AAAA,HTTPS,SVCB' })
    t.equal(h.d.reload(), true)
    await started
    t.teardown(() => h.d.stop('test'))
    await settle(150)
    t.equal(h.fake.created, 1, 'one rule manager for the daemon')
    t.equal(h.fake.maxActive, 1, 'rule operations never overlapped')
    t.equal(h.fake.kernel, JSON.stringify([28, 65, 64]), 'the kernel filter queues the last config’s types')
    t.equal(await h.d.reconcile(), false, 'and a check finds it up to date')
    t.same(h.d.readiness(), { ok: true, detail: 'queue bound, rules installed' })
    // A stale filter is never reported as up to date: drop the last reinstall and check.
    h.fake.kernel = JSON.stringify([28, 65])
    t.equal(await h.d.reconcile(), true, 'the stale filter is found and replaced')
    t.equal(h.fake.kernel, JSON.stringify([28, 65, 64]))
  },
)

t.test(
  'rule health: a failed reinstall makes /readyz 503 and counts; a reconcile that succeeds makes it 200',
  async t => {
    const cfg = configFile(t, { qtypes: 'AAAA' })
    const port = await freePort()
    const h = harness(['--metrics-listen', `127.0.0.1:${port}`, '--config', cfg.file])
    await h.d.start()
    t.teardown(() => h.d.stop('test'))
    const metrics = async (): Promise<string> => (await get(port, '/metrics')).body
    let m = await metrics()
    t.match(m, /^dns_shaper_rules_installed\{family="ipv4"\} 1$/m)
    t.match(m, /^dns_shaper_rules_installed\{family="ipv6"\} 1$/m)
    for (const op of ['install', 'reconcile', 'remove'])
      t.match(m, new RegExp(`^dns_shaper_rules_sync_errors_total\\{op="${op}"\\} 0$`, 'm'), `${op} series pre-created`)
    const last = Number(/^dns_shaper_rules_last_sync_timestamp_seconds (\S+)$/m.exec(m)?.[1])
    t.ok(Math.abs(last - Date.now() / 1000) < 60, 'last sync is a recent unix time')
    t.equal((await get(port, '/readyz')).status, 200)

    // A reload changes the queued types; the reinstall fails.
    h.fake.failInstall = true
    cfg.write({ qtypes: 'AAAA,HTTPS' })
    t.equal(h.d.reload(), true)
    await settle()
    let r = await get(port, '/readyz')
    t.equal(r.status, 503)
    t.match(r.body, /not ok: rule install failed: iptables-restore: permission denied/)
    m = await metrics()
    t.match(m, /^dns_shaper_rules_installed\{family="ipv4"\} 0$/m, 'the old filter does not match the plan')
    t.match(m, /^dns_shaper_rules_sync_errors_total\{op="install"\} 1$/m)

    // The next reconcile fails too: still 503, counted as a reconcile error.
    t.equal(await h.d.reconcile(), false)
    r = await get(port, '/readyz')
    t.equal(r.status, 503)
    t.match(r.body, /missing or outdated and reinstalling failed/)
    t.match(await metrics(), /^dns_shaper_rules_sync_errors_total\{op="reconcile"\} 1$/m)

    // Then it succeeds: 200 again.
    h.fake.failInstall = false
    t.equal(await h.d.reconcile(), true)
    r = await get(port, '/readyz')
    t.equal(r.status, 200)
    m = await metrics()
    t.match(m, /^dns_shaper_rules_installed\{family="ipv6"\} 1$/m)
    t.match(m, /^dns_shaper_rules_reinstalled_total 1$/m)
    t.equal(h.fake.kernel, JSON.stringify([1, 28, 65]))
  },
)

t.test('--rules none exports no rule health series', async t => {
  const h = harness(['--rules', 'none', '--metrics-listen', 'off'])
  await h.d.start()
  t.teardown(() => h.d.stop('test'))
  t.notMatch(await h.d.metrics!.render(), /dns_shaper_rules_installed/)
})

t.test('reconcile: overlapping calls share one run', async t => {
  const h = harness(['--metrics-listen', 'off'])
  await h.d.start()
  t.teardown(() => h.d.stop('test'))
  const before = h.fake.statusCalls
  const runs = await Promise.all([h.d.reconcile(), h.d.reconcile(), h.d.reconcile()])
  t.same(runs, [false, false, false])
  t.equal(h.fake.statusCalls - before, 1, 'one check, not three')
})

t.test('reload changes --log-level', async t => {
  const cfg = configFile(t, { 'log-level': 'info' })
  const h = harness(['--metrics-listen', 'off', '--config', cfg.file])
  await h.d.start()
  t.teardown(() => h.d.stop('test'))
  cfg.write({ 'log-level': 'warn' })
  t.equal(h.d.reload(), true)
  const n = h.logs.length
  cfg.write({ 'log-level': 'warn', delay: 7 })
  t.equal(h.d.reload(), true)
  t.same(
    h.logs.slice(n).filter(l => l.level === 'info' || l.level === 'debug'),
    [],
    'no info lines after the reload to warn',
  )
  cfg.write({ 'log-level': 'debug' })
  t.equal(h.d.reload(), true)
  t.ok(
    h.logs.slice(n).some(l => l.msg === 'config reloaded'),
    'debug again: info lines are back',
  )
})

t.test('stopNow: releases and unbinds at once, logs the reason; a no-op after stop', async t => {
  const h = harness(['--metrics-listen', 'off'])
  await h.d.start()
  h.d.stopNow('process exit with code 3', { stack: 'here' })
  t.equal(h.queues[0]!.stopped, 1)
  t.match(
    h.logs.find(l => l.level === 'error'),
    { msg: /^exiting without a clean stop/, reason: 'process exit with code 3', stack: 'here', releasedAtStop: 0 },
  )
  h.d.stopNow('again')
  t.equal(h.queues[0]!.stopped, 1, 'once')
  t.equal(await h.d.stop('test'), 0)
  t.equal(h.queues[0]!.stopped, 1, 'stop after stopNow does not stop the queue twice')
  const h2 = harness(['--metrics-listen', 'off'])
  await h2.d.start()
  await h2.d.stop('test')
  const n = h2.logs.length
  h2.d.stopNow('exit after a clean stop')
  t.equal(h2.logs.length, n, 'nothing logged after a clean stop')
})

t.test('a changed --config file is applied without a signal, at the next poll', async t => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dnss-cfg-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'config.json')
  fs.writeFileSync(file, JSON.stringify({ holds: { AAAA: 5 } }))
  const clock = new FakeClock()
  let now = 1_700_000_000_000
  const reads: string[] = []
  const h = harness(['--metrics-listen', 'off', '--config', file, '--config-poll-interval', '30'], {
    configWatch: {
      clock,
      random: () => 0.5,
      now: () => now,
      readFile: p => {
        reads.push(p)
        return fs.readFileSync(p, 'utf8')
      },
    },
  })
  await h.d.start()
  t.teardown(() => h.d.stop('test'))
  const metric = async (name: string): Promise<number> =>
    Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(await h.d.metrics!.render())?.[1])
  t.equal(await metric('dns_shaper_config_last_reload_timestamp_seconds'), 1_700_000_000, 'start counts as a load')
  t.equal(await metric('dns_shaper_config_last_reload_successful'), 1)
  t.same(clock.pending, [30000], 'polls every 30 s (jitter at its midpoint)')
  t.ok(h.logs.some(l => l.msg === 'watching the config file for changes' && l.intervalS === 30))

  const policies = h.queues[0]!.policies.length
  clock.advance(30000)
  t.equal(h.queues[0]!.policies.length, policies, 'unchanged file: no reload')
  t.same(reads, [file], 'the poller read the file (the start used the hash of what was loaded)')

  // What kubelet does to a ConfigMap volume, in effect: new content under the same path.
  fs.writeFileSync(file, JSON.stringify({ holds: { AAAA: 20 } }))
  now += 45_000
  clock.advance(30000)
  const p = h.queues[0]!.policies.at(-1)!
  t.equal(p.holdMs[p.table[28]!], 20, 'the new AAAA hold is in the data plane')
  t.ok(h.logs.some(l => l.msg === 'config file changed; reloading'))
  t.equal(await metric('dns_shaper_config_last_reload_timestamp_seconds'), 1_700_000_045, 'time of this reload')
  t.match(await h.d.metrics!.render(), /^dns_shaper_config_reloads_total\{result="ok"\} 1$/m)
  clock.advance(60000)
  t.equal(h.queues[0]!.policies.length, policies + 1, 'applied once')

  // A restart-only setting: logged by name, the running value kept, the policy part still applied.
  fs.writeFileSync(file, JSON.stringify({ holds: { AAAA: 7 }, 'dns-port': 5353 }))
  clock.advance(30000)
  t.ok(
    h.logs.some(
      l =>
        l.msg === 'these settings change only on restart; kept the running values' &&
        JSON.stringify(l.settings) === '["dnsPort"]',
    ),
    'dns-port named as needing a restart',
  )
  const p2 = h.queues[0]!.policies.at(-1)!
  t.equal(p2.holdMs[p2.table[28]!], 7)

  // A broken edit: refused once, running policy kept, the gauge says so; the fix is applied.
  now += 60_000
  fs.writeFileSync(file, '{"holds": ')
  clock.advance(30000)
  clock.advance(30000)
  t.match(await h.d.metrics!.render(), /^dns_shaper_config_reloads_total\{result="error"\} 1$/m, 'one attempt')
  t.equal(await metric('dns_shaper_config_last_reload_successful'), 0)
  t.equal(await metric('dns_shaper_config_last_reload_timestamp_seconds'), 1_700_000_045, 'still the last success')
  fs.writeFileSync(file, JSON.stringify({ holds: { AAAA: 9 }, 'dns-port': 5353 }))
  clock.advance(30000)
  t.equal(await metric('dns_shaper_config_last_reload_successful'), 1)
  const p3 = h.queues[0]!.policies.at(-1)!
  t.equal(p3.holdMs[p3.table[28]!], 9)

  // The file unreadable (a directory in its place): one failed reload, the running policy kept, the
  // gauge at 0 until the file reads again and applies.
  const applied = fs.readFileSync(file, 'utf8')
  fs.rmSync(file)
  fs.mkdirSync(file)
  const before = h.queues[0]!.policies.length
  clock.advance(30000)
  clock.advance(30000)
  t.match(
    await h.d.metrics!.render(),
    /^dns_shaper_config_reloads_total\{result="error"\} 2$/m,
    'an unreadable file counts as one failed reload, however many polls see it',
  )
  t.equal(await metric('dns_shaper_config_last_reload_successful'), 0, 'the reload alert sees it')
  t.equal(h.queues[0]!.policies.length, before, 'the running policy stays')
  t.ok(h.logs.some(l => l.msg === 'cannot read the config file; the running config stays until it can be read'))
  fs.rmdirSync(file)
  fs.writeFileSync(file, applied)
  clock.advance(30000)
  t.equal(await metric('dns_shaper_config_last_reload_successful'), 1, 'readable again (same content): applied')

  // SIGHUP applied this content: the poller does not apply it a second time.
  fs.writeFileSync(file, JSON.stringify({ holds: { AAAA: 11 }, 'dns-port': 5353 }))
  t.equal(h.d.reload(), true)
  const n = h.queues[0]!.policies.length
  clock.advance(30000)
  t.equal(h.queues[0]!.policies.length, n, 'no second reload of what SIGHUP applied')

  await h.d.stop('test')
  t.same(clock.pending, [], 'stop ends the polling')
})

t.test('no --config, or --config-poll-interval 0: no polling', async t => {
  const bare = new FakeClock()
  const h0 = harness(['--metrics-listen', 'off'], { configWatch: { clock: bare } })
  await h0.d.start()
  t.same(bare.pending, [], 'no --config: nothing to poll')
  await h0.d.stop('test')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dnss-cfg-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'c.json')
  fs.writeFileSync(file, '{}')
  const clock = new FakeClock()
  const h = harness(['--metrics-listen', 'off', '--config', file, '--config-poll-interval', '0'], {
    configWatch: { clock },
  })
  await h.d.start()
  t.same(clock.pending, [], 'interval 0: SIGHUP only')
  await h.d.stop('test')
})

t.test('dns-ip auto: the start-up log says which resolv.conf gave which addresses', async t => {
  const fixture = new URL('../fixtures/resolv-conf/dual-stack.conf', import.meta.url).pathname
  const h = harness(['--metrics-listen', 'off', '--dns-ip', 'auto', '--resolv-conf', fixture])
  await h.d.start()
  t.teardown(() => h.d.stop('test'))
  const rec = h.logs.find(l => l.msg === 'dns-ip auto: shaping DNS to the nameservers of resolv.conf')
  t.equal(rec?.resolvConf, fixture)
  t.same(rec?.dnsIp, ['192.0.2.10/32', '2001:db8:96::a/128'])
  t.notOk(rec && 'ignored' in rec, 'nothing ignored, nothing said')
})

t.test('stop releases held packets before the rule phase, which has a deadline', async t => {
  const h = harness(['--metrics-listen', 'off'], { stopRulesDeadlineMs: 100 })
  await h.d.start()
  // The removal waits (on the xtables lock, say) and never finishes.
  h.fake.removeGate = new Promise(() => {})
  const stopped = h.d.stop('SIGTERM')
  await settle(10)
  t.equal(h.queues[0]!.stopped, 1, 'held packets released and the queue unbound while the removal still waits')
  const t0 = Date.now()
  t.equal(await stopped, 1, 'exit 1: the rules were not removed')
  t.ok(Date.now() - t0 < 2000, 'within the deadline')
  t.ok(
    h.logs.some(l => l.level === 'error' && /stop deadline/.test(String(l.msg)) && /next start/.test(String(l.msg))),
    'the log says the rules stay until the next start',
  )
})

t.test('a first install refused by a busy xtables lock keeps the daemon up, unready, until a retry works', async t => {
  const { IptablesError } = await import('../../src/rules/errors.js')
  const h = harness(['--metrics-listen', 'off'], { failInstall: true })
  h.fake.installError = new IptablesError('iptables-legacy-restore: another program holds the xtables lock', {
    argv: ['iptables-legacy-restore'],
    kind: 'locked',
  })
  await h.d.start()
  t.teardown(() => h.d.stop('test'))
  t.equal(h.d.health().ok, true, 'healthy: the data plane runs')
  t.match(h.d.readiness(), { ok: false, detail: /xtables lock/ }, 'not ready')
  t.ok(h.logs.some(l => l.level === 'error' && /xtables lock is busy/.test(String(l.msg))))
  h.fake.failInstall = false
  t.equal(await h.d.reconcile(), true, 'the next check installs')
  t.same(h.d.readiness(), { ok: true, detail: 'queue bound, rules installed' })
})

t.test('reloads in a row that change the rules queue one reinstall, with the last config', async t => {
  const cfg = configFile(t, { qtypes: 'AAAA' })
  const h = harness(['--metrics-listen', 'off', '--mode', 'fixed', '--config', cfg.file])
  await h.d.start()
  t.teardown(() => h.d.stop('test'))
  // A reconcile holds the rule queue, as a slow iptables would.
  const gate = deferred()
  h.fake.gate = gate.promise
  h.fake.kernel = 'drifted'
  const reconciling = h.d.reconcile()
  await settle(20)
  h.fake.gate = undefined
  const types = ['HTTPS', 'SVCB', 'HTTPS,SVCB', 'A', 'HTTPS,A']
  for (const q of types) {
    cfg.write({ qtypes: `AAAA,${q}` })
    t.equal(h.d.reload(), true)
  }
  gate.resolve()
  await reconciling
  await settle(100)
  t.same(h.rules, ['install', 'install', 'install'], 'start, the reconcile, and one reinstall for five reloads')
  t.equal(h.fake.kernel, JSON.stringify([28, 65, 1]), 'the last config’s types')
  t.equal(h.logs.filter(l => l.msg === 'rules updated for the reloaded query types').length, 1, 'logged once')
})

t.test('a reload raising max-held above the preallocated slots applies the rest and names max-held', async t => {
  const cfg = configFile(t, { 'max-held': 10, delay: 5 })
  const port = await freePort()
  const h = harness(['--metrics-listen', `127.0.0.1:${port}`, '--mode', 'fixed', '--config', cfg.file])
  await h.d.start()
  t.teardown(() => h.d.stop('test'))
  const capacity = h.queues[0]!.maxHeld
  cfg.write({ 'max-held': capacity * 2, delay: 7 })
  t.equal(h.d.reload(), true, 'the reload applies')
  const p = h.queues[0]!.policies.at(-1)!
  t.equal(p.maxHeld, capacity, `max-held raised as far as the preallocated slots (${capacity})`)
  t.same(p.holdMs.slice(1, 2), [7], 'the other settings applied')
  t.ok(
    h.logs.some(l => l.level === 'warn' && /max-held/.test(String(l.msg)) && l.requested === capacity * 2),
    'the log names max-held and the value asked for',
  )
  const m = (await get(port, '/metrics')).body
  t.match(m, /^dns_shaper_config_restart_required\{setting="maxHeld"\} 1$/m, 'and the metric')
  cfg.write({ 'max-held': 20, delay: 7 })
  t.equal(h.d.reload(), true)
  t.equal(h.queues[0]!.policies.at(-1)!.maxHeld, 20)
  t.notMatch((await get(port, '/metrics')).body, /dns_shaper_config_restart_required\{/, 'cleared once it applies')
})

t.test('a reload whose --config became a FIFO fails at once and is counted; the running policy stays', async t => {
  const cfg = configFile(t, { delay: 5 })
  const port = await freePort()
  const h = harness(['--metrics-listen', `127.0.0.1:${port}`, '--mode', 'fixed', '--config', cfg.file])
  await h.d.start()
  t.teardown(() => h.d.stop('test'))
  fs.rmSync(cfg.file)
  const { spawnSync } = await import('node:child_process')
  spawnSync('mkfifo', [cfg.file])
  t.equal(h.d.reload(), false, 'refused (and returned: a FIFO no longer blocks the event loop)')
  t.match(
    h.logs.find(l => l.msg === 'config reload failed; the running policy is unchanged'),
    { err: /is a FIFO, not a regular file/ },
  )
  t.match((await get(port, '/metrics')).body, /^dns_shaper_config_reloads_total\{result="error"\} 1$/m)
})

t.test(
  'SIGTERM while the start-up install waits (on the lock): released at once, exit within the deadline',
  async t => {
    const h = harness(['--metrics-listen', 'off'], { stopRulesDeadlineMs: 100 })
    h.fake.gate = new Promise(() => {}) // the install never finishes
    const called = deferred()
    h.fake.installCalled = called.resolve
    void h.d.start()
    await called.promise
    const t0 = Date.now()
    const stopped = h.d.stop('SIGTERM')
    await settle(10)
    t.equal(h.queues[0]!.stopped, 1, 'released and unbound while the install still waits')
    t.equal(await stopped, 1, 'exit 1: the rules could not be removed')
    t.ok(Date.now() - t0 < 2000, `within the deadline (${Date.now() - t0} ms)`)
  },
)
