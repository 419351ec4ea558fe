import t from 'tap'
import { EventEmitter } from 'node:events'
import { guardExits, type GuardedDaemon } from '../../src/daemon/exit-guard.js'
import { createLogger } from '../../src/log.js'

function fixture(stop: () => Promise<number> = async () => 0) {
  const calls: string[] = []
  const logs: Record<string, unknown>[] = []
  const exits: number[] = []
  let exited: () => void = () => {}
  const exitedOnce = new Promise<void>(r => {
    exited = r
  })
  const proc = Object.assign(new EventEmitter(), {
    exit: (code: number) => {
      exits.push(code)
      exited()
    },
  })
  const daemon: GuardedDaemon = {
    stop: async reason => {
      calls.push(`stop ${reason}`)
      return stop()
    },
    stopNow: reason => {
      calls.push(`stopNow ${reason}`)
    },
  }
  const log = createLogger('debug', l => logs.push(JSON.parse(l) as Record<string, unknown>))
  const off = guardExits(daemon, log, { proc, graceMs: 100 })
  return { proc, calls, logs, exits, exitedOnce, off }
}

t.test('an uncaught exception: cause logged with its stack, clean stop, exit 1', async t => {
  const f = fixture()
  f.proc.emit('uncaughtException', new Error('boom'))
  await f.exitedOnce
  t.same(f.calls, ['stop uncaught exception'])
  t.same(f.exits, [1])
  t.match(f.logs[0], {
    level: 'error',
    msg: /^uncaught exception: stopping/,
    err: 'boom',
    stack: /Error: boom\n\s+at /,
  })
})

t.test('an unhandled rejection: the same, non-Error reasons included', async t => {
  const f = fixture()
  f.proc.emit('unhandledRejection', 'plain string')
  await f.exitedOnce
  t.same(f.calls, ['stop unhandled promise rejection'])
  t.same(f.exits, [1])
  t.match(f.logs[0], { err: 'plain string' })
})

t.test('a stop that hangs: released synchronously after the grace time, exit 1', async t => {
  const f = fixture(() => new Promise<number>(() => {}))
  f.proc.emit('uncaughtException', new Error('boom'))
  await f.exitedOnce
  t.same(f.calls, ['stop uncaught exception', 'stopNow uncaught exception'])
  t.same(f.exits, [1])
  t.ok(f.logs.some(l => /took over 100 ms; exiting now/.test(String(l.msg))))
})

t.test('a second crash while stopping: released at once, exit 1', async t => {
  const f = fixture(() => new Promise<number>(() => {}))
  f.proc.emit('uncaughtException', new Error('first'))
  f.proc.emit('unhandledRejection', new Error('second'))
  t.same(f.calls, ['stop uncaught exception', 'stopNow unhandled promise rejection'])
  t.same(f.exits, [1])
  f.off()
})

t.test('process.exit from anywhere: released synchronously with the caller’s stack', async t => {
  const f = fixture()
  let detail: Record<string, unknown> | undefined
  const proc = Object.assign(new EventEmitter(), { exit: () => {} })
  guardExits(
    {
      stop: async () => 0,
      stopNow: (reason, d) => {
        f.calls.push(`stopNow ${reason}`)
        detail = d
      },
    },
    createLogger('error', () => {}),
    { proc },
  )
  proc.emit('exit', 3)
  t.same(f.calls, ['stopNow process exit with code 3'])
  t.match(detail, { stack: /process\.exit/ })
})

t.test('off() removes every handler', async t => {
  const f = fixture()
  f.off()
  t.equal(f.proc.listenerCount('uncaughtException'), 0)
  t.equal(f.proc.listenerCount('unhandledRejection'), 0)
  t.equal(f.proc.listenerCount('exit'), 0)
})
