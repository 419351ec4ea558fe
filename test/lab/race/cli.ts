// `npm run lab:race` flags (lab/race/cli.ts): parseArgs-based, one message per bad flag that names it.
import t from 'tap'
import { parseRaceArgs } from '../../../lab/race/cli.js'

t.test('defaults and flags reach the matrix options', async t => {
  t.same(parseRaceArgs([]), { opts: {}, out: 'bench/results/race-lab.json', matrix: 'race' })
  t.same(parseRaceArgs(['--quick', '--lookups', '300', '--natural-lookups', '500', '--services', 'iptables,ipvs']), {
    opts: { quick: true, splitLookups: 300, pairLookups: 500, gaiLookups: 200, services: ['iptables', 'ipvs'] },
    out: 'bench/results/race-lab.json',
    matrix: 'race',
  })
  t.same(parseRaceArgs(['--matrix', 'kernels', '--rows', 'a,g', '--gai-lookups', '7', '--out', 'x.json']), {
    opts: { rows: ['a', 'g'], gaiLookups: 7 },
    out: 'x.json',
    matrix: 'kernels',
  })
})

t.test('bad flags: a message naming the flag; --help asks for the usage', async t => {
  const cases: [string[], RegExp][] = [
    [['--lookups', '0'], /--lookups needs an integer 1\.\.1000000/],
    [['--lookups'], /--lookups needs an integer/],
    [['--threads', '65'], /--threads needs an integer 1\.\.64/],
    [['--services', 'iptables,bogus'], /--services takes iptables/],
    [['--matrix', 'other'], /--matrix needs race or kernels/],
    [['--rows', 'a,z'], /--rows needs row ids a-h/],
    [['--clash', 'old'], /--clash needs pre56 or stock/],
    [['--frobnicate'], /unknown flag --frobnicate/],
    [['extra'], /unexpected argument extra/],
  ]
  const wrong = cases.flatMap(([argv, re]) => {
    const r = parseRaceArgs(argv)
    return typeof r === 'string' && re.test(r) ? [] : [`${argv.join(' ')} -> ${JSON.stringify(r)}`]
  })
  t.same(wrong, [], 'every bad flag is refused with its message')
  t.equal(parseRaceArgs(['--quick', '-h']), '')
  const clash = parseRaceArgs(['--services', 'ipvs', '--clash', 'pre56'])
  t.same(
    typeof clash === 'string' ? clash : clash.opts,
    { services: ['ipvs'], clash: 'pre56' },
    '--clash reaches the matrix',
  )
})
