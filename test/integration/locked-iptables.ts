// With the xtables lock held by another process (kube-proxy holds it for seconds on big legacy nodes;
// XTABLES_LOCKFILE points iptables at a test-owned file, flocked from another process): a SIGTERM
// releases a held AAAA within 1 s whatever iptables is doing, and the daemon still exits within its
// rule-phase deadline; a first install that finds the lock busy keeps the daemon up (/readyz 503)
// and is retried until it succeeds. Legacy backend, in a bare namespace; never the root namespace.
import t, { type Test } from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bareNamespace, daemonIn, holdLock, sendQuery, skipReason, startEchoDns } from '../helpers/node-lab.js'
import { dnsQuery } from '../helpers/packets.js'
import { fetchIn } from '../helpers/daemon.js'
import type { Netns } from '../../lab/src/netns.js'

const skip = skipReason()
if (skip !== false) {
  t.plan(0, skip)
  process.exit(0)
}

const PORT = 9363
const work = mkdtempSync(join(tmpdir(), 'dnss-lock-'))
const lockFile = join(work, 'xtables.lock')
writeFileSync(lockFile, '')
t.teardown(() => rmSync(work, { recursive: true, force: true }))

const figures: string[] = []
t.teardown(() => {
  for (const f of figures) console.log(`# figure: ${f}`)
})

async function withNs(t: Test, fn: (ns: Netns) => Promise<void>): Promise<void> {
  const ns = await bareNamespace()
  t.teardown(() => ns.destroy())
  await fn(ns)
}

const start = (ns: Netns, args: string[] = []) =>
  daemonIn(ns, ['--iptables-backend', 'legacy', '--metrics-listen', `127.0.0.1:${PORT}`, '--mode', 'fixed', ...args], {
    XTABLES_LOCKFILE: lockFile,
    DNS_SHAPER_RECONCILE_INTERVAL_MS: '500',
  })

t.test('SIGTERM with the xtables lock held: the held AAAA is answered within 1 s of the signal', async t => {
  await withNs(t, async ns => {
    await startEchoDns(ns)
    const d = start(ns, ['--delay', '10000'])
    t.teardown(() => d.stop())
    await d.ready(30_000)
    const lock = holdLock(lockFile)
    t.teardown(lock.release)
    await lock.held
    const q = sendQuery(ns, dnsQuery({ qtype: 'AAAA', name: 'held.example.test' }), 20_000)
    const sentAt = await q.sentAt
    await new Promise(r => setTimeout(r, 500))
    const signalAt = Date.now()
    d.signal('SIGTERM')
    const answeredAt = await q.answeredAt
    t.ok(answeredAt !== undefined, 'the held AAAA was answered')
    const after = (answeredAt ?? Infinity) - signalAt
    t.ok(after <= 1000, `answered ${after} ms after the SIGTERM (sent ${signalAt - sentAt} ms before it; hold 10 s)`)
    const exitStart = Date.now()
    const exit = await Promise.race([d.exited, new Promise(r => setTimeout(r, 20_000, 'still running'))])
    const exitMs = Date.now() - exitStart
    t.not(exit, 'still running', `the daemon exited ${exitMs} ms after, the lock still held (rule-phase deadline)`)
    t.ok(
      d.logs.some(l => /rules/.test(l.msg) && /next start/.test(JSON.stringify(l))),
      'the log says the rules stay until the next start',
    )
    figures.push(
      `${new Date().toISOString().slice(0, 10)} SIGTERM with the xtables lock held: held AAAA answered ${after} ms after the signal; daemon exited ${exitMs + (exitStart - signalAt)} ms after it`,
    )
    lock.release()
  })
})

t.test('a first install that finds the xtables lock busy: the daemon stays up, /readyz 503, and retries', async t => {
  await withNs(t, async ns => {
    const lock = holdLock(lockFile)
    t.teardown(lock.release)
    await lock.held
    const d = start(ns)
    t.teardown(() => d.stop())
    const failed = await d.waitLog(l => /install failed/.test(l.msg), 30_000)
    t.ok(failed, `install failed while locked: ${failed.msg}`)
    await new Promise(r => setTimeout(r, 1000))
    t.equal(d.child.exitCode, null, 'still running')
    const ready = await fetchIn(ns, `http://127.0.0.1:${PORT}/readyz`)
    t.equal(ready.code, 503, `/readyz 503 while the rules are missing: ${ready.body.trim()}`)
    t.equal((await fetchIn(ns, `http://127.0.0.1:${PORT}/healthz`)).code, 200, '/healthz 200: the data plane runs')
    lock.release()
    const end = Date.now() + 30_000
    let code = 0
    while (Date.now() < end && (code = (await fetchIn(ns, `http://127.0.0.1:${PORT}/readyz`)).code) !== 200)
      await new Promise(r => setTimeout(r, 200))
    t.equal(code, 200, '/readyz 200 once the lock is free: the install was retried')
    const exit = await d.stop(30_000)
    t.equal(exit.code, 0, 'a clean stop')
    const left = (await ns.execOk(['iptables-legacy-save', '-t', 'raw'])).stdout
    t.notMatch(left, /dns-shaper/, 'and its rules removed')
  })
})
