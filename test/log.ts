import t from 'tap'
import { createLogger, silentLogger } from '../src/log.js'

t.test('JSON lines, level filter, errors and bigints serialised', async t => {
  const lines: string[] = []
  const log = createLogger('info', l => lines.push(l))
  log.debug('hidden')
  log.info('hello', { n: 1, big: 2n })
  log.error('boom', { err: Object.assign(new Error('bad'), { code: 'EBUSY' }) })
  t.equal(lines.length, 2)
  t.ok(lines.every(l => l.endsWith('\n') && !l.slice(0, -1).includes('\n')))
  const a = JSON.parse(lines[0]!) as Record<string, unknown>
  t.match(a, { level: 'info', msg: 'hello', n: 1, big: '2' })
  t.match(a.time, /^\d{4}-\d\d-\d\dT/)
  t.match(JSON.parse(lines[1]!), { level: 'error', err: { message: 'bad', code: 'EBUSY' } })
  const w: string[] = []
  const warnOnly = createLogger('warn', l => w.push(l))
  warnOnly.info('x')
  warnOnly.warn('y')
  t.equal(w.length, 1)
  silentLogger.error('nothing')
})
