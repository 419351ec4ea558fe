import t from 'tap'
import {
  createRunner,
  LineSplitter,
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

t.test('rejects when stderr exceeds maxBuffer', async t => {
  const runner = createRunner({ maxBuffer: 1000 })
  await t.rejects(runner([node, '-e', 'process.stderr.write("x".repeat(5000))']), {
    code: 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER',
  })
})

t.test('LineSplitter: the lines of the text wherever the chunks break, long lines cut', async t => {
  const text = 'first\n\nthird line\n-A X -j Y\nlast without newline'
  for (const size of [1, 2, 3, 7, text.length]) {
    const got: string[] = []
    const s = new LineSplitter(l => got.push(l))
    for (let i = 0; i < text.length; i += size) s.push(text.slice(i, i + size))
    s.end()
    t.same(got, text.split('\n'), `chunks of ${size}`)
  }
  const got: string[] = []
  const s = new LineSplitter(l => got.push(l), 4)
  s.push('abcdefgh')
  s.push('ij\nkl\n')
  s.push('\n')
  s.end()
  t.same(got, ['abcd', 'kl', ''], 'the rest of an over-long line is dropped, the next line is whole')
})

t.test('onStdoutLine streams stdout by line and keeps none of it', async t => {
  const lines: string[] = []
  const script = 'process.stdout.write("a\\nb"); setTimeout(() => process.stdout.write("c\\n\\u00e9\\nend"), 50)'
  const r = await run([node, '-e', script], { onStdoutLine: l => lines.push(l) })
  t.same(lines, ['a', 'bc', '\u00e9', 'end'])
  t.same(r, { code: 0, signal: null, stdout: '', stderr: '', timedOut: false })

  // A UTF-8 character split across two writes arrives whole.
  const split: string[] = []
  await run(
    [
      node,
      '-e',
      'process.stdout.write(Buffer.from([0xc3])); setTimeout(() => process.stdout.write(Buffer.from([0xa9, 10])), 50)',
    ],
    { onStdoutLine: l => split.push(l) },
  )
  t.same(split, ['\u00e9'])
})

t.test('streamed output is not held: far more than maxBuffer passes through', async t => {
  const runner = createRunner({ maxBuffer: 1000 })
  let n = 0
  let chars = 0
  const r = await runner(
    [node, '-e', 'for (let i = 0; i < 20000; i++) process.stdout.write("-A KUBE-SVC-X -j MARK " + i + "\\n")'],
    {
      onStdoutLine: l => {
        n++
        chars += l.length
      },
    },
  )
  t.equal(r.code, 0)
  t.equal(n, 20000)
  t.ok(chars > 100 * 1000, `${chars} characters streamed with maxBuffer 1000`)
  t.equal(r.stdout, '')
})

t.test('onStdoutLine: timeouts as before; a throwing callback kills the child and rejects', async t => {
  const forever = [node, '-e', 'process.stdout.write("x\\n"); setTimeout(() => {}, 10000)']
  const started = Date.now()
  const r = await createRunner({ timeoutMs: 200 })(forever, { onStdoutLine: () => {} })
  t.equal(r.timedOut, true)
  t.equal(r.signal, 'SIGKILL')
  const boom = new Error('boom')
  await t.rejects(
    run(forever, {
      onStdoutLine: () => {
        throw boom
      },
    }),
    boom,
  )
  t.ok(Date.now() - started < 5000, 'the child did not run its 10 s')
  await t.rejects(run(['dns-shaper-no-such-program-xyz'], { onStdoutLine: () => {} }), { code: 'ENOENT' })
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
