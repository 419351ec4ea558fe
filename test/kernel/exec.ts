import t from 'tap'
import {
  createRunner,
  netnsWrap,
  output,
  run,
  wrapRunner,
  type ExecResult,
  type Runner,
} from '../../src/kernel/exec.js'

const node = process.execPath

t.test('resolves exit status, stdout and stderr', async t => {
  const r = await run([node, '-e', 'process.stdout.write("out"); process.stderr.write("err"); process.exit(3)'])
  t.same(r, { code: 3, signal: null, stdout: 'out', stderr: 'err', timedOut: false })
  const ok = await run([node, '-e', 'console.log("hi")'])
  t.equal(ok.code, 0)
  t.equal(ok.stdout, 'hi\n')
})

t.test('arguments are passed verbatim, never through a shell', async t => {
  const evil = '$(touch /nonexistent); echo `id` | cat > x; "quoted"'
  const r = await run([node, '-e', 'process.stdout.write(process.argv[1])', evil])
  t.equal(r.stdout, evil)
})

t.test('writes input to stdin', async t => {
  const r = await run(
    [node, '-e', 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.stdout.write(s.toUpperCase()))'],
    {
      input: '*raw\nCOMMIT\n',
    },
  )
  t.equal(r.stdout, '*RAW\nCOMMIT\n')
})

t.test('a child that ignores stdin does not break the input write', async t => {
  const r = await run([node, '-e', 'process.exit(0)'], { input: 'x'.repeat(1 << 20) })
  t.equal(r.code, 0)
})

t.test('times out and reports it', async t => {
  const runner = createRunner({ timeoutMs: 200 })
  const started = Date.now()
  const r = await runner([node, '-e', 'setTimeout(() => {}, 10000)'])
  t.equal(r.timedOut, true)
  t.equal(r.code, null)
  t.equal(r.signal, 'SIGKILL')
  t.ok(Date.now() - started < 5000)
  const r2 = await createRunner()([node, '-e', 'setTimeout(() => {}, 10000)'], { timeoutMs: 100 })
  t.equal(r2.timedOut, true)
  const r3 = await createRunner({ timeoutMs: 0 })([node, '-e', '1'])
  t.equal(r3.code, 0, 'timeout 0 disables the timer')
})

t.test('a process killed by a signal (not our timeout) reports the signal', async t => {
  const r = await run([node, '-e', 'process.kill(process.pid, "SIGKILL")'])
  t.equal(r.code, null)
  t.equal(r.signal, 'SIGKILL')
  t.equal(r.timedOut, false)
})

t.test('rejects when the program cannot be started', async t => {
  await t.rejects(run(['dns-shaper-no-such-program-xyz']), {
    code: 'ENOENT',
    syscall: 'spawn dns-shaper-no-such-program-xyz',
  })
  await t.rejects(run([]), TypeError)
  await t.rejects(run(['']), TypeError)
})

t.test('rejects when output exceeds maxBuffer', async t => {
  const runner = createRunner({ maxBuffer: 1000 })
  await t.rejects(runner([node, '-e', 'process.stdout.write("x".repeat(5000))']), {
    code: 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER',
  })
})

t.test('wrap prefixes every argv', async t => {
  const runner = createRunner({ wrap: [node, '-e', 'process.stdout.write(JSON.stringify(process.argv.slice(1)))'] })
  const r = await runner(['a', 'b c'])
  t.same(JSON.parse(r.stdout), ['a', 'b c'])

  const seen: string[][] = []
  const fake: Runner = async (argv): Promise<ExecResult> => {
    seen.push([...argv])
    return { code: 0, signal: null, stdout: '', stderr: '', timedOut: false }
  }
  t.equal(wrapRunner(fake, []), fake, 'empty wrap returns the runner itself')
  await wrapRunner(fake, netnsWrap('dnss-1-ab'))(['iptables-nft-save'])
  t.same(seen, [['ip', 'netns', 'exec', 'dnss-1-ab', 'iptables-nft-save']])
})

t.test('netnsWrap rejects names ip would misread', async t => {
  t.throws(() => netnsWrap('-n'), TypeError)
  t.throws(() => netnsWrap('a b'), TypeError)
  t.throws(() => netnsWrap(''), TypeError)
  t.throws(() => netnsWrap('a/b'), TypeError)
  t.same(netnsWrap('ns_1.x-y'), ['ip', 'netns', 'exec', 'ns_1.x-y'])
})

t.test('output: stdout of a command that succeeds, else an Error naming the command', async t => {
  t.equal(await output(run, [process.execPath, '-e', 'process.stdout.write("hi")']), 'hi')
  await t.rejects(output(run, [process.execPath, '-e', 'process.stderr.write("bad\\n"); process.exit(3)']), {
    message: /-e .*: bad$/,
  })
  await t.rejects(output(run, [process.execPath, '-e', 'process.exit(4)']), { message: /: exit 4$/ })
  await t.rejects(output(run, ['/nonexistent/dnss-cmd']), { message: /^\/nonexistent\/dnss-cmd: .*ENOENT/ })
})
