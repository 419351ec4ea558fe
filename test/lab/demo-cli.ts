// lab/src/demo-cli.ts: `npm run demo` validates its flags before building anything.
import t from 'tap'
import { demoMain, parseDemoFlags } from '../../lab/src/demo-cli.js'

t.test('demo validates its flags before building anything', async t => {
  t.same(parseDemoFlags([]), { delayMs: 5 })
  t.same(parseDemoFlags(['--delay', '2.5']), { delayMs: 2.5 })
  t.same(parseDemoFlags(['--delay=20']), { delayMs: 20 })
  for (const [argv, re] of [
    [['--delay', 'soon'], /--delay: "soon" is not a valid value/],
    [['--delay'], /--delay: needs a value/],
    [['--bogus'], /--bogus: unknown flag \(accepted: --delay\)/],
    [['extra'], /extra: unexpected argument/],
    [['--delay', '20000'], /milliseconds 0\.\.10000/],
  ] as const) {
    let out = ''
    let err = ''
    let built = false
    const code = await demoMain(argv, { out: s => void (out += s), err: s => void (err += s) }, async () => {
      built = true
      return 0
    })
    t.equal(code, 2, `demo ${argv.join(' ')}: exit 2`)
    t.match(err, re)
    t.equal(out, '', 'nothing started')
    t.notOk(built, 'the lab was not built')
  }
})

t.test('good flags reach the demo', async t => {
  let got: string[] = []
  const code = await demoMain(['--delay', '7'], { out: () => {}, err: () => {} }, async argv => {
    got = argv
    return 0
  })
  t.equal(code, 0)
  t.same(got, ['--delay', '7'])
})
