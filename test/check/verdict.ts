// src/check/verdict.ts: the verdict table and rate formatting.
import t from 'tap'
import { decideVerdict, formatRate, type VerdictInput } from '../../src/check/verdict.js'
import { handling } from '../helpers/check.js'

t.test('verdict table', async t => {
  const base: VerdictInput = {
    release: '6.18.44',
    kernel: handling('6.18.44'),
    conntrackLoaded: true,
    dnsUntracked: undefined,
    rates: undefined,
    blockers: [],
  }
  const rows: [string, Partial<VerdictInput>, string, RegExp][] = [
    [
      'old kernel drops',
      { release: '4.14.1', kernel: handling('4.14.1') },
      'recommended',
      /^shaping recommended: kernel 4\.14\.1 drops clashing/,
    ],
    [
      '4.19-5.5 drops DNAT clashes',
      { release: '5.4.0', kernel: handling('5.4.0') },
      'recommended',
      /different endpoints/,
    ],
    [
      '5.10+ with insert_failed rising',
      { rates: { insertFailed: 0.5, clashResolve: 3 } },
      'recommended',
      /insert_failed rising \(0\.5\/s\)/,
    ],
    [
      '5.10+ resolves, sampled',
      { rates: { insertFailed: 0, clashResolve: 12.345 } },
      'optional',
      /^optional: the kernel resolves clashes \(12\/s seen\)$/,
    ],
    ['5.10+ resolves, not sampled', {}, 'optional', /\(not sampled\)/],
    [
      '5.6-5.9: insert_failed counts resolved clashes too',
      { release: '5.8.0', kernel: handling('5.8.0'), rates: { insertFailed: 2, clashResolve: undefined } },
      'optional',
      /resolves clashes \(2\/s seen\)/,
    ],
    [
      '4.19 + insert_failed',
      { release: '4.19.0', kernel: handling('4.19.0'), rates: { insertFailed: 1, clashResolve: undefined } },
      'recommended',
      /insert_failed rising/,
    ],
    [
      'DNS not tracked beats everything',
      {
        release: '4.14.1',
        kernel: handling('4.14.1'),
        dnsUntracked: '',
        rates: { insertFailed: 9, clashResolve: undefined },
      },
      'not-needed',
      /^not needed: DNS is not tracked$/,
    ],
    [
      'DNS not tracked to some addresses',
      { dnsUntracked: '169.254.20.10/32' },
      'not-needed',
      /not tracked \(to 169\.254\.20\.10\/32\)/,
    ],
    ['no conntrack', { conntrackLoaded: false }, 'not-needed', /conntrack is not loaded/],
    [
      'unknown kernel, no sample',
      { release: 'weird', kernel: undefined },
      'unknown',
      /unknown: .*"weird"; sample insert_failed/,
    ],
    [
      'unknown kernel, quiet sample',
      { release: 'weird', kernel: undefined, rates: { insertFailed: 0, clashResolve: undefined } },
      'unknown',
      /keep watching/,
    ],
    [
      'unknown kernel, insert_failed rising',
      { release: 'weird', kernel: undefined, rates: { insertFailed: 1, clashResolve: undefined } },
      'recommended',
      /insert_failed rising/,
    ],
  ]
  for (const [name, over, need, line] of rows) {
    const v = decideVerdict({ ...base, ...over })
    t.equal(v.need, need, `${name}: need`)
    t.match(v.line, line, `${name}: line`)
    t.equal(v.ready, true)
  }
  const blocked = decideVerdict({
    ...base,
    release: '4.14.1',
    kernel: handling('4.14.1'),
    blockers: ['privileges: no CAP_NET_ADMIN', 'queue: bound'],
  })
  t.equal(blocked.ready, false)
  t.equal(blocked.need, 'recommended', 'need still judged when blocked')
  t.match(blocked.line, /^cannot run: privileges: no CAP_NET_ADMIN; queue: bound — shaping recommended/)
})

t.test('formatRate', async t => {
  t.equal(formatRate(0), '0/s')
  t.equal(formatRate(0.333), '0.33/s')
  t.equal(formatRate(10.6), '11/s')
})
