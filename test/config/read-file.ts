// src/config/read-file.ts: only a regular file, at most the limit; a FIFO never blocks. And the CLI
// on such a --config or resolv.conf: exit 2 at once (in a child process, so a hang fails the test
// instead of stopping it).
import t from 'tap'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { MAX_CONFIG_FILE_BYTES, readConfigFile } from '../../src/config/read-file.js'

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dnss-read-'))
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
const fifo = path.join(dir, 'fifo.json')
spawnSync('mkfifo', [fifo])
const huge = path.join(dir, 'huge.json')
fs.closeSync(fs.openSync(huge, 'w'))
fs.truncateSync(huge, 64 * 2 ** 20) // sparse: 64 MiB that take no disk
const small = path.join(dir, 'small.json')
fs.writeFileSync(small, '{"delay": 7}')

t.test('a regular file within the limit is read', async t => {
  t.equal(readConfigFile(small), '{"delay": 7}')
  const edge = path.join(dir, 'edge')
  fs.writeFileSync(edge, 'x'.repeat(100))
  t.equal(readConfigFile(edge, 100).length, 100, 'exactly the limit')
  t.throws(() => readConfigFile(edge, 99), /is 100 bytes, more than the 99 accepted/)
})

t.test('a FIFO, a directory, a device or a huge file is refused at once, naming what it is', async t => {
  t.ok(fs.statSync(fifo).isFIFO(), 'mkfifo made a FIFO')
  t.throws(() => readConfigFile(fifo), /fifo\.json is a FIFO, not a regular file/)
  t.throws(() => readConfigFile(dir), /is a directory/)
  t.throws(() => readConfigFile('/dev/zero'), /is a device/)
  t.throws(() => readConfigFile(huge), new RegExp(`67108864 bytes, more than the ${MAX_CONFIG_FILE_BYTES}`))
  t.throws(() => readConfigFile(path.join(dir, 'none')), { code: 'ENOENT' })
})

const cli = fileURLToPath(new URL('../../src/cli.ts', import.meta.url))
const run = (args: string[]): ReturnType<typeof spawnSync> =>
  spawnSync(process.execPath, [...process.execArgv, cli, 'run', '--metrics-listen', 'off', ...args], {
    encoding: 'utf8',
    timeout: 20_000,
    // A child blocked in open() of a FIFO never runs a SIGTERM handler (tap's loader installs one).
    killSignal: 'SIGKILL',
  })

t.test('the CLI exits 2 on a --config or resolv.conf that is a FIFO or huge, before binding anything', async t => {
  for (const [args, flag] of [
    [['--config', fifo], '--config'],
    [['--config', huge], '--config'],
    [['--dns-ip', 'auto', '--resolv-conf', fifo], '--dns-ip'],
    [['--dns-ip', 'auto', '--resolv-conf', huge], '--dns-ip'],
  ] as const) {
    const r = run([...args])
    t.equal(r.status, 2, `${args.join(' ')}: exit 2 (${r.signal ?? ''} ${String(r.stderr).slice(-300)})`)
    t.match(String(r.stderr), new RegExp(`${flag}: .*(FIFO|more than)`), 'the line names the flag and why')
  }
})
