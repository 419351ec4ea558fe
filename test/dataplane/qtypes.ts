// src/dataplane/qtypes.ts: query type names and numbers.
import t from 'tap'
import { parseQtype, qtypeName, queuedQtypes } from '../../src/dataplane/qtypes.js'

t.test('qtype names', async t => {
  t.equal(parseQtype('aaaa'), 28)
  t.equal(parseQtype('HTTPS'), 65)
  t.equal(parseQtype('svcb'), 64)
  t.equal(parseQtype('TYPE99'), 99)
  t.equal(parseQtype('99'), 99)
  t.equal(parseQtype('0'), undefined)
  t.equal(parseQtype('70000'), undefined)
  t.equal(parseQtype('nope'), undefined)
  t.equal(qtypeName(28), 'AAAA')
  t.equal(qtypeName(65), 'HTTPS')
  t.equal(qtypeName(64), 'SVCB')
  t.equal(qtypeName(65280), 'TYPE65280')
})

t.test('queued query types: the held ones in order, and A first in pair mode', async t => {
  t.same(queuedQtypes([28, 65], false), [28, 65])
  t.same(queuedQtypes([65, 28, 65], false), [65, 28], 'order kept, duplicates once')
  t.same(queuedQtypes([28], true), [1, 28], 'pair mode needs the A in user space')
  t.same(queuedQtypes([1, 28], true), [1, 28], 'A held already: once')
  t.same(queuedQtypes([], true), [], 'nothing held: nothing queued, not even A')
})
