// The addon's split-CPU sender (native/split_cpu_sender.cc, via src/nfqueue.ts) against a responder in
// another process on loopback: every pair sent from two different CPUs, every answer counted by its id, a
// server that never answers costs the timeout and counts nothing. No root, no namespace.
import t from 'tap'
import dgram from 'node:dgram'
import { spawn } from 'node:child_process'
import { allowedCpus, splitCpuPairs } from '../../src/dataplane/nfqueue.js'

const cpus = allowedCpus()
if (cpus.length < 2) {
  t.plan(0, 'the split-CPU sender needs two CPUs')
  process.exit(0)
}

t.test('pairs from two CPUs, every answer counted', async t => {
  const port = 21053 + (process.pid % 1000)
  // The sender blocks this thread while it runs, so the answers come from another process.
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const d=require('node:dgram').createSocket('udp4');d.on('message',(m,ri)=>{const r=Buffer.from(m);r[2]|=0x80;d.send(r,ri.port,ri.address)});d.bind(${port},'127.0.0.1',()=>console.log('up'))`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  t.teardown(() => child.kill())
  await new Promise(res => child.stdout.once('data', res))
  const res = splitCpuPairs({ server: '127.0.0.1', port, pairs: 20, timeoutMs: 2000 })
  t.equal(res.pairs, 20)
  t.equal(res.queries, 40)
  t.equal(res.answered, 40, 'both answers of every pair, matched by id')
  t.equal(res.sendErrors, 0)
  t.same(res.cpus, [cpus[0], cpus[1]], 'the first two CPUs this process may use')
  t.equal(res.skewNs.length, 20, 'one skew per pair')
  t.ok(res.skewNs.every(s => Number.isFinite(s) && s >= 0))
})

t.test('nobody answers: no retry, the timeout per pair, nothing counted', async t => {
  // A bound socket that never replies (no ICMP unreachable, so the sends succeed).
  const silent = dgram.createSocket('udp4')
  await new Promise<void>(res => silent.bind(0, '127.0.0.1', () => res()))
  t.teardown(() => silent.close())
  const started = Date.now()
  const res = splitCpuPairs({ server: '127.0.0.1', port: silent.address().port, pairs: 3, timeoutMs: 100 })
  t.equal(res.pairs, 3)
  t.equal(res.answered, 0)
  t.ok(Date.now() - started >= 290, 'waited the timeout for each pair')
})

t.test('bad arguments are errors with a code', async t => {
  t.throws(() => splitCpuPairs({ server: 'not-an-address' }), { code: 'EINVAL', syscall: 'server address' })
  t.throws(() => splitCpuPairs({ server: '127.0.0.1', cpus: [0, 0] }), { code: 'EINVAL' })
  t.throws(() => splitCpuPairs({} as never), /server is required/)
})
