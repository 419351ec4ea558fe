// src/config/watch.ts: the config file poller, with an injected clock, file reads and randomness.
import t from 'tap'
import { ConfigWatcher, contentHash, nextDelayMs } from '../../src/config/watch.js'
import { FakeClock } from '../helpers/fake-clock.js'

/** A file system of one file whose content the test sets; reads are counted. */
function fakeFile(initial: string | Error) {
  const f = {
    content: initial as string | Error,
    reads: 0,
    read: (_p: string): string => {
      f.reads++
      if (f.content instanceof Error) throw f.content
      return f.content
    },
  }
  return f
}

function setup(initial: string | Error, random = () => 0.5) {
  const clock = new FakeClock()
  const file = fakeFile(initial)
  const changes: number[] = []
  const errors: string[] = []
  const w = new ConfigWatcher({
    path: '/etc/dns-shaper/config.json',
    intervalMs: 30000,
    readFile: file.read,
    onChange: () => changes.push(clock.now),
    onError: e => errors.push(e instanceof Error ? e.message : String(e)),
    clock,
    random,
  })
  return { clock, file, changes, errors, w }
}

t.test('jitter: every wait within interval ±25 %, the mean at the interval', async t => {
  t.equal(
    nextDelayMs(30000, () => 0),
    22500,
  )
  t.equal(
    nextDelayMs(30000, () => 0.5),
    30000,
  )
  t.equal(
    nextDelayMs(30000, () => 0.999999),
    37500,
  )
  t.throws(() => new ConfigWatcher({ path: 'x', intervalMs: 0, readFile: () => '', onChange() {}, onError() {} }))
})

t.test('no change, no reload; a change is applied once, at the next poll', async t => {
  const { clock, file, changes, w } = setup('{"delay": 5}')
  w.start()
  t.equal(file.reads, 1, 'read once at start for the baseline')
  t.same(clock.pending, [30000], 'first poll one interval later')
  clock.advance(90000)
  t.same(changes, [], 'same content: nothing to do')
  t.equal(file.reads, 4, 'polled every 30 s')
  file.content = '{"delay": 20}'
  clock.advance(29999)
  t.same(changes, [], 'not before the poll')
  clock.advance(1)
  t.same(changes, [120000], 'applied at the poll after the change')
  clock.advance(300000)
  t.same(changes, [120000], 'and only once')
})

t.test('jittered schedule follows the injected randomness', async t => {
  const draws = [0, 0.999999, 0.5]
  const { clock, w } = setup('a', () => draws.shift() ?? 0.5)
  w.start()
  t.same(clock.pending, [22500])
  clock.advance(22500)
  t.same(clock.pending, [37500])
})

t.test('the baseline can be the hash of what the daemon loaded', async t => {
  const { clock, file, changes, w } = setup('new content')
  // The daemon loaded "old content"; the file changed before the watcher started.
  w.start(contentHash('old content'))
  t.equal(file.reads, 0, 'no read needed at start')
  clock.advance(30000)
  t.same(changes, [30000], 'the change made before start is still applied')
})

t.test('an atomic swap back and forth: content, not timestamps, decides', async t => {
  const { clock, file, changes, w } = setup('A')
  w.start()
  file.content = 'B'
  file.content = 'A' // changed and changed back between two polls
  clock.advance(30000)
  t.same(changes, [], 'same content as applied: no reload')
})

t.test('unreadable file: reported once, no reload, polling goes on; readable again is applied', async t => {
  const { clock, file, changes, errors, w } = setup('A')
  w.start()
  file.content = Object.assign(new Error("ENOENT: no such file or directory, open '/etc/dns-shaper/config.json'"), {
    code: 'ENOENT',
  })
  clock.advance(90000)
  t.equal(errors.length, 1, 'one report for three failed polls')
  t.match(errors[0], /ENOENT/)
  t.same(changes, [])
  file.content = 'A'
  clock.advance(30000)
  t.same(changes, [120000], 'readable again, even with the applied content: applied again (the failure was counted)')
  clock.advance(30000)
  t.same(changes, [120000], 'then compared as usual')
  file.content = new Error('EACCES')
  clock.advance(30000)
  t.equal(errors.length, 2, 'a new failure after a good read is reported again')
  file.content = 'B'
  clock.advance(30000)
  t.same(changes, [120000, 210000], 'back with new content: applied')
})

t.test('a file unreadable at start: the first readable content counts as a change', async t => {
  const { clock, file, changes, errors, w } = setup(new Error('EACCES'))
  w.start()
  t.equal(errors.length, 1)
  file.content = 'A'
  clock.advance(30000)
  t.same(changes, [30000])
})

t.test('a failing apply is not retried on every poll; the next edit is', async t => {
  const { clock, file, changes, w } = setup('good')
  w.start()
  file.content = 'bad' // the daemon would log a reload error and keep the old policy
  clock.advance(30000)
  clock.advance(60000)
  t.same(changes, [30000], 'one attempt for that content')
  file.content = 'fixed'
  clock.advance(30000)
  t.same(changes, [30000, 120000])
})

t.test('onChange throwing does not stop polling', async t => {
  const clock = new FakeClock()
  let content = 'A'
  const errors: unknown[] = []
  let calls = 0
  const w = new ConfigWatcher({
    path: 'p',
    intervalMs: 1000,
    readFile: () => content,
    onChange: () => {
      calls++
      throw new Error('apply failed')
    },
    onError: e => errors.push(e),
    clock,
    random: () => 0.5,
  })
  w.start()
  content = 'B'
  clock.advance(1000)
  content = 'C'
  clock.advance(1000)
  t.equal(calls, 2)
  t.equal(errors.length, 2)
})

t.test('markApplied after SIGHUP: the content it applied is not applied again by the poller', async t => {
  const { clock, file, changes, w } = setup('A')
  w.start()
  file.content = 'B'
  w.markApplied(contentHash('B')) // SIGHUP applied B
  clock.advance(30000)
  t.same(changes, [])
})

t.test('stop cancels the timer; start is idempotent', async t => {
  const { clock, file, w } = setup('A')
  w.start()
  w.start()
  t.equal(clock.pending.length, 1, 'one timer')
  w.stop()
  t.same(clock.pending, [])
  const reads = file.reads
  clock.advance(120000)
  t.equal(file.reads, reads, 'no read after stop')
})

t.test('contentHash is FNV-1a 64 (published vectors), the same for a string and its bytes', async t => {
  t.equal(contentHash(''), 'cbf29ce484222325')
  t.equal(contentHash('a'), 'af63dc4c8601ec8c')
  t.equal(contentHash('foobar'), '85944171f73967e8')
  t.equal(contentHash(Buffer.from('{"delay": 5}')), contentHash('{"delay": 5}'))
  t.not(contentHash('{"delay": 5}'), contentHash('{"delay": 6}'))
})
