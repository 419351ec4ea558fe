// The demo's flags (lab/demo.ts): checked before any namespace is built, exit 2 on a bad one, 0 on --help.
import t from 'tap'
import { parseDemoArgs, runDemo } from '../../lab/demo.js'

t.test('--delay is milliseconds 0..10000, default 5', async t => {
  t.same(parseDemoArgs([]), { delayMs: 5 })
  t.same(parseDemoArgs(['--delay', '2.5']), { delayMs: 2.5 })
  t.same(parseDemoArgs(['--delay=20']), { delayMs: 20 })
})

t.test('a bad flag exits 2 before anything is built', async t => {
  const cases: [string[], RegExp][] = [
    [['--delay', 'soon'], /--delay: "soon" is not milliseconds 0\.\.10000/],
    [['--delay'], /--delay.*argument missing/],
    [['--bogus'], /Unknown option '--bogus'/],
    [['extra'], /Unexpected argument 'extra'/],
    [['--delay', '20000'], /not milliseconds 0\.\.10000/],
  ]
  const wrong: string[] = []
  for (const [argv, re] of cases) {
    let out = ''
    let err = ''
    const code = await runDemo(argv, { out: s => (out += s), err: s => (err += s) })
    if (code !== 2 || !re.test(err) || !err.includes('usage: npm run demo') || out !== '')
      wrong.push(`${argv.join(' ')}: exit ${code}, out ${JSON.stringify(out)}, err ${JSON.stringify(err)}`)
  }
  t.same(wrong, [], 'every bad flag: exit 2, the reason and the usage on stderr, nothing started')
})

t.test('--help prints the usage and exits 0', async t => {
  let out = ''
  const code = await runDemo(['--help'], { out: s => (out += s), err: () => undefined })
  t.equal(code, 0)
  t.match(out, /usage: npm run demo/)
})
