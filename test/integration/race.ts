// The conntrack A/AAAA race, short: kube-proxy-like random DNAT on the router, split_cpu_client
// sending each A and AAAA of one socket from two CPUs at once. Without a shaper the router's
// conntrack resolves clashes (clashres grows); with dns-shaper in the raw table, fixed 5 ms or pair
// mode, there must be none, nothing lost, nothing failed; pair mode must not make the AAAA wait.
// Queued from mangle instead (after conntrack) the clashes come back.
import t from 'tap'
import type { ShaperSetup } from '../../lab/race/race.js'
import { describeRow as describe, expectNoClashNothingLost, requireRaceLab, useRaceLab } from '../helpers/race.js'

requireRaceLab('iptables, NFQUEUE')

// Measured on 6.18/veth: 70-95 % of pairs clash with no shaper, so 2000 pairs leave a wide margin.
const PAIRS = 2000
const DELAY_MS = 5
const race = useRaceLab(PAIRS)
const row = (shaper: ShaperSetup) => race.row({ shaper })

t.test('no shaper: forced A/AAAA pairs clash in the router conntrack', async t => {
  const r = await row({ kind: 'none' })
  t.comment(describe(r))
  t.equal(r.lookups, PAIRS, 'every pair ran')
  t.ok(
    r.clashResolve + r.insertFailed > 0,
    `clashes happen without the shaper (control): ${r.clashResolve} resolved, ${r.insertFailed} failed`,
  )
})

t.test(`raw table, fixed ${DELAY_MS} ms: no clash, nothing lost`, async t => {
  const r = await row({ kind: 'raw', delayMs: DELAY_MS, mode: 'fixed' })
  t.comment(describe(r))
  expectNoClashNothingLost(t, r, PAIRS)
  t.ok((r.aaaaP50Us ?? 0) >= DELAY_MS * 1000, `the AAAA waited the hold (p50 ${r.aaaaP50Us} us)`)
  t.equal(r.shaperCounters?.held, PAIRS, 'every AAAA was held')
})

t.test(`raw table, pair mode (max ${DELAY_MS} ms): no clash, nothing lost, AAAA right behind its A`, async t => {
  const r = await row({ kind: 'raw', delayMs: DELAY_MS, mode: 'pair' })
  t.comment(describe(r))
  expectNoClashNothingLost(t, r, PAIRS)
  const a = r.aP50Us ?? NaN
  const aaaa = r.aaaaP50Us ?? NaN
  t.ok(aaaa < (DELAY_MS * 1000) / 2, `AAAA p50 ${aaaa} us is well below the ${DELAY_MS} ms hold`)
  t.ok(aaaa - a < 1000, `AAAA p50 ${aaaa} us within 1 ms of A p50 ${a} us`)
  // Most AAAA leave with their A; a sender descheduled past the hold (busy CI) may leave a few to the deadline.
  t.ok(
    (r.shaperCounters?.pairReleased ?? 0) >= PAIRS / 2,
    `pair_released ${r.shaperCounters?.pairReleased} of ${PAIRS}`,
  )
})

t.test(`mangle table (after conntrack), fixed ${DELAY_MS} ms: the same daemon does not prevent clashes`, async t => {
  // The control for the two rows above: the zero comes from the queue's place, not from the daemon being there.
  const r = await race.row({ shaper: { kind: 'mangle', delayMs: DELAY_MS }, lookups: PAIRS / 2 })
  t.comment(describe(r))
  t.equal(r.shaperCounters?.held, PAIRS / 2, 'every AAAA went through the queue and was held')
  t.ok(
    r.clashResolve + r.insertFailed > 0,
    `clashes with the queue after conntrack: ${r.clashResolve} resolved, ${r.insertFailed} failed`,
  )
})
