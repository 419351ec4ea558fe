// src/connection-guard.ts: per-peer caps, and fair eviction of idle connections at the total cap.
import t from 'tap'
import { ConnectionGuard } from '../../src/daemon/connection-guard.js'

class FakeSocket {
  destroyed = false
  constructor(readonly remoteAddress: string) {}
  destroy(): void {
    this.destroyed = true
  }
}

t.test('a peer is kept to its share; others still get in', async t => {
  const g = new ConnectionGuard({ maxConnections: 10, maxPerPeer: 3 })
  const pod = Array.from({ length: 200 }, () => new FakeSocket('192.0.2.7'))
  t.same(pod.map(s => g.admit(s)).filter(Boolean).length, 3, 'three of 200 half-sent sockets of one pod are kept')
  t.equal(pod.filter(s => s.destroyed).length, 197)
  const prom = new FakeSocket('192.0.2.8')
  t.equal(g.admit(prom), true, 'another peer gets in')
  t.same(g.counts, { rejected: 197, evicted: 0 })
})

t.test('at the total cap a newcomer takes the oldest idle connection of the peer holding the most', async t => {
  const g = new ConnectionGuard({ maxConnections: 6, maxPerPeer: 4 })
  const a = Array.from({ length: 4 }, () => new FakeSocket('a'))
  const b = Array.from({ length: 2 }, () => new FakeSocket('b'))
  for (const s of [...a, ...b]) t.ok(g.admit(s))
  g.busy(a[0]!) // answering a request: never evicted
  const kubelet = new FakeSocket('k')
  t.equal(g.admit(kubelet), true)
  t.equal(a[1]!.destroyed, true, 'the oldest idle connection of the biggest peer went')
  t.equal(a[0]!.destroyed, false, 'not the busy one')
  // a now holds 3, b 2, k 1: equal-ish shares never evict each other.
  t.equal(g.admit(new FakeSocket('b')), false, 'b (2) may not take from a (3): 3 < 2 + 2')
  t.equal(g.admit(new FakeSocket('c')), true, 'a newcomer (0) takes from a (3)')
  t.equal(g.size, 6)
  t.same(g.counts, { rejected: 1, evicted: 2 })
})

t.test('busy connections are never evicted; idle() makes them evictable again, newest last', async t => {
  const g = new ConnectionGuard({ maxConnections: 3, maxPerPeer: 3 })
  const a = Array.from({ length: 3 }, () => new FakeSocket('a'))
  for (const s of a) g.admit(s)
  for (const s of a) g.busy(s)
  t.equal(g.admit(new FakeSocket('x')), false, 'everything busy: the newcomer is closed')
  g.idle(a[0]!)
  g.idle(a[2]!)
  g.busy(a[2]!)
  g.idle(a[2]!) // answered later than a[0]
  t.equal(g.admit(new FakeSocket('y')), true)
  t.equal(a[0]!.destroyed, true, 'the one idle longest goes')
  t.equal(a[2]!.destroyed, false)
})

t.test('forget frees the slot and the peer share', async t => {
  const g = new ConnectionGuard({ maxConnections: 2, maxPerPeer: 1 })
  const s = new FakeSocket('a')
  t.ok(g.admit(s))
  t.notOk(g.admit(new FakeSocket('a')))
  g.forget(s)
  g.forget(s)
  t.ok(g.admit(new FakeSocket('a')), 'admitted again once the first closed')
  t.equal(g.size, 1)
})
