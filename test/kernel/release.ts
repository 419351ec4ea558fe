import t from 'tap'
import {
  clashHandling,
  compareKernel,
  kernelAtLeast,
  parseKernelRelease,
  type ClashLevel,
} from '../../src/kernel/release.js'

t.test('parseKernelRelease', async t => {
  const cases: [string, [number, number, number] | undefined][] = [
    ['6.18.44-fc-v769', [6, 18, 44]],
    ['5.4.0-150-generic', [5, 4, 0]],
    ['4.19.0-26-amd64', [4, 19, 0]],
    ['3.10.0-1160.el7.x86_64', [3, 10, 0]],
    ['5.14.0-427.13.1.el9_4.x86_64', [5, 14, 0]],
    ['6.1.0-rc3', [6, 1, 0]],
    ['6.1', [6, 1, 0]],
    ['5.10.205-195.807.amzn2.x86_64\n', [5, 10, 205]],
    ['linux', undefined],
    ['', undefined],
    ['6', undefined],
  ]
  for (const [s, want] of cases) {
    const v = parseKernelRelease(s)
    t.same(v === undefined ? undefined : [v.major, v.minor, v.patch], want, JSON.stringify(s))
  }
  t.equal(parseKernelRelease(' 5.10.1-x\n')!.release, '5.10.1-x', 'release kept, trimmed')
})

t.test('compare', async t => {
  const v = (s: string) => parseKernelRelease(s)!
  t.ok(compareKernel(v('4.19.0'), v('5.0.0')) < 0)
  t.ok(compareKernel(v('5.10.1'), v('5.9.20')) > 0, 'numeric, not lexical')
  t.equal(compareKernel(v('5.4.3'), v('5.4.3-foo')), 0)
  t.ok(kernelAtLeast(v('5.10.0'), 5, 10))
  t.notOk(kernelAtLeast(v('5.9.99'), 5, 10))
})

t.test('clashHandling table', async t => {
  // Releases grouped by what they should get: clash level, then whether the clash counter exists.
  const groups: [ClashLevel, boolean, string[]][] = [
    ['drop', false, ['3.10.0-1160.el7.x86_64', '4.14.336', '4.18.0-553.el8.x86_64']],
    ['same-tuple', false, ['4.19.0-26-amd64', '5.0.0', '5.4.0-150-generic', '5.5.19']],
    ['all', false, ['5.6.0', '5.9.16']],
    ['all', true, ['5.10.0', '5.15.0-100-generic', '6.18.44-fc-v769']],
  ]
  const table = groups.flatMap(([level, counter, rels]) => rels.map(rel => [rel, level, counter] as const))
  t.equal(table.length, 12, 'every release in the table is checked')
  for (const [rel, level, counter] of table) {
    const h = clashHandling(parseKernelRelease(rel)!)
    t.equal(h.level, level, `${rel} level`)
    t.equal(h.clashCounter, counter, `${rel} clash counter`)
    t.equal(h.insertFailedMeansDrop, counter, `${rel} insert_failed meaning`)
    t.match(h.summary, rel, 'summary names the release')
  }
})

t.test('summaries', async t => {
  const s = (r: string) => clashHandling(parseKernelRelease(r)!).summary
  t.match(s('4.14.1'), /drops .*5 s.*backports/)
  t.match(s('4.19.1'), /same-origin SNAT clashes only from 5\.0/)
  t.notMatch(s('5.4.1'), /only from 5\.0/)
  t.match(s('5.4.1'), /different endpoints.*backports/)
  t.match(s('5.6.1'), /no clash counter/)
  t.match(s('5.10.1'), /clashres/)
})
