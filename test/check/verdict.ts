// src/check/verdict.ts: the verdict table and rate formatting.
import t from 'tap'
import { decideVerdict, formatRate, type VerdictInput } from '../../src/check/verdict.js'
import { handling } from '../helpers/check.js'
import type { ProbeVerdict } from '../../src/probe/verdict.js'

/** A 6.18 node with DNS tracked and nothing sampled: each case overrides what it is about. */
const BASE: VerdictInput = {
  release: '6.18.44',
  kernel: handling('6.18.44'),
  conntrackLoaded: true,
  dnsUntracked: undefined,
  rates: undefined,
  blockers: [],
}

t.test('verdict table', async t => {
  const base = BASE
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
      'only an eBPF service dataplane: inert, beats the kernel and the counters',
      {
        release: '4.14.1',
        kernel: handling('4.14.1'),
        rates: { insertFailed: 9, clashResolve: undefined },
        dataplaneInert: 'Cilium kube-proxy replacement translates services in eBPF before netfilter',
      },
      'not-needed',
      /^not needed: Cilium kube-proxy replacement translates services in eBPF before netfilter$/,
    ],
    [
      'DNS not tracked beats an inert dataplane',
      { dnsUntracked: '', dataplaneInert: 'Calico eBPF dataplane translates services' },
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

t.test('the race probe outranks the kernel version table', async t => {
  const base = BASE
  const figures = (dropped: number, resolved: number) => ({
    pairs: 300,
    queries: 600,
    answered: 600 - dropped,
    lost: dropped,
    clashes: dropped + resolved,
    dropped,
    resolved,
  })
  const phase = (counter: 'clash_resolve' | 'insert_failed') => ({
    ...figures(0, 0),
    masquerade: false,
    skewP50Us: 0.2,
    counter,
  })
  const drops: ProbeVerdict = {
    outcome: 'drops',
    figures: figures(12, 100),
    phases: [phase('clash_resolve')],
    text: '',
  }
  const resolves: ProbeVerdict = {
    outcome: 'resolves',
    figures: figures(0, 250),
    phases: [phase('insert_failed')],
    text: '',
  }
  const inconclusive: ProbeVerdict = {
    outcome: 'inconclusive',
    reason: 'no-overlap',
    figures: figures(0, 0),
    text: 'probe inconclusive: no clash',
  }

  // A 6.18 kernel whose version says "resolves" but whose probe dropped (a lab switch, a regression).
  const d = decideVerdict({ ...base, probe: drops })
  t.equal(d.need, 'recommended')
  t.match(
    d.line,
    /^shaping recommended: the probe saw this kernel drop 12 of 112 clashes \(measured; the probe outranks the kernel version table\)$/,
  )

  // RHEL 8's 4.18 with the 5.6 backport: the version says "drops", the probe resolves.
  const rhel = { release: '4.18.0-553.el8_10.x86_64', kernel: handling('4.18.0-553.el8_10.x86_64') }
  const r = decideVerdict({ ...base, ...rhel, probe: resolves })
  t.equal(r.need, 'optional')
  t.match(r.line, /resolve 250 clashes and drop none .*outranks the kernel version table, which says "drop"\)$/)
  // ...and insert_failed rising there counts resolved clashes too (no clash counter): not proof of drops.
  const rising = decideVerdict({
    ...base,
    ...rhel,
    probe: resolves,
    rates: { insertFailed: 3, clashResolve: undefined },
  })
  t.equal(rising.need, 'optional')
  // On a kernel with a clash counter insert_failed counts only drops: rising still recommends.
  const risingCounted = decideVerdict({
    ...base,
    probe: { ...resolves, phases: [phase('clash_resolve')] },
    rates: { insertFailed: 3, clashResolve: 9 },
  })
  t.equal(risingCounted.need, 'recommended')

  // Inconclusive: the version table decides and the line says the probe could not.
  const i = decideVerdict({ ...base, ...rhel, probe: inconclusive })
  t.equal(i.need, 'recommended')
  t.match(
    i.line,
    /drops clashing UDP conntrack entries \(probe inconclusive: no clash; decided by the kernel version table\)$/,
  )
  t.match(
    decideVerdict({ ...base, probe: inconclusive }).line,
    /^optional: the kernel resolves clashes \(not sampled\) \(probe inconclusive/,
  )

  // What makes the race impossible on this node still wins: DNS untracked.
  t.equal(decideVerdict({ ...base, dnsUntracked: '', probe: drops }).need, 'not-needed')
})
