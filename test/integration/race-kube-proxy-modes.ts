// The conntrack A/AAAA race with the service DNAT written as kube-proxy's nftables mode writes it (its own
// `table ip kube-proxy`, numgen random at priority dstnat), and in IPVS mode where the kernel has ip_vs.
// Without a shaper the split-CPU pairs clash; with dns-shaper's iptables-nft raw rule (priority -300,
// before conntrack and before the nft DNAT) in pair or fixed mode there must be none and nothing lost.
import t from 'tap'
import type { ShaperSetup } from '../../lab/race/race.js'
import { ipvsAvailable, type ServiceMode } from '../../lab/race/kube-proxy-modes.js'
import { describeRow as describe, expectNoClashNothingLost, requireRaceLab, useRaceLab } from '../helpers/race.js'

requireRaceLab('nft, iptables, NFQUEUE')

// Measured on 6.18/veth with the nft DNAT: 1777 of 2000 pairs clashed with no shaper (1898 with
// masquerade), so 1000 pairs leave a wide margin for the control. A 5 ms fixed hold caps one thread
// pair near 190 pairs/s: 1000 pairs take about 6 s.
const PAIRS = 1000
const DELAY_MS = 5
const race = useRaceLab(PAIRS, { service: 'nftables' })
const row = (service: ServiceMode, shaper: ShaperSetup, snat: boolean) => race.row({ service, shaper, snat })

t.test('the lab service is kube-proxy nftables mode, next to the shaper-to-be raw table', async t => {
  const tables = (await race.lab().router.execOk(['nft', 'list', 'tables'])).stdout
  t.match(tables, /^table ip kube-proxy$/m)
  t.match(tables, /^table ip6 kube-proxy$/m)
  const nat = (await race.lab().router.execOk(['iptables-save', '-t', 'nat'])).stdout
  t.notMatch(nat, /DNAT/, 'no iptables DNAT: the nft table alone translates the service')
})

t.test('nftables mode, no shaper: forced A/AAAA pairs clash (control)', async t => {
  const r = await row('nftables', { kind: 'none' }, false)
  t.comment(describe(r))
  t.equal(r.lookups, PAIRS, 'every pair ran')
  t.ok(
    r.clashResolve + r.insertFailed > 0,
    `clashes without the shaper: ${r.clashResolve} resolved, ${r.insertFailed} failed`,
  )
})

t.test(`nftables mode, pair mode (max ${DELAY_MS} ms): no clash, nothing lost`, async t => {
  const r = await row('nftables', { kind: 'raw', delayMs: DELAY_MS, mode: 'pair' }, false)
  t.comment(describe(r))
  expectNoClashNothingLost(t, r, PAIRS)
  t.ok((r.aaaaP50Us ?? Infinity) < (DELAY_MS * 1000) / 2, `AAAA p50 ${r.aaaaP50Us} us is well below the hold`)
})

t.test(`nftables mode with masquerade, fixed ${DELAY_MS} ms: no clash, nothing lost`, async t => {
  const r = await row('nftables', { kind: 'raw', delayMs: DELAY_MS, mode: 'fixed' }, true)
  t.comment(describe(r))
  expectNoClashNothingLost(t, r, PAIRS)
  t.equal(r.shaperCounters?.held, PAIRS, 'every AAAA was held')
})

t.test('nftables mode, one-statement `dnat to numgen random mod N map`, masquerade, pair mode: no clash', async t => {
  const r = await row('nftables-map', { kind: 'raw', delayMs: DELAY_MS, mode: 'pair' }, true)
  t.comment(describe(r))
  expectNoClashNothingLost(t, r, PAIRS)
})

t.test('IPVS mode (where the kernel has ip_vs)', async t => {
  const why = await ipvsAvailable(race.lab().router)
  if (why !== true) {
    // This development host's kernel has no ip_vs; the kernel lab's 5.10 guest has it.
    t.plan(0, `IPVS rows skipped: ${why}`)
    return
  }
  const control = await row('ipvs', { kind: 'none' }, false)
  t.comment(describe(control))
  t.equal(control.lookups, PAIRS, 'every pair ran through IPVS')
  const r = await row('ipvs', { kind: 'raw', delayMs: DELAY_MS, mode: 'pair' }, false)
  t.comment(describe(r))
  expectNoClashNothingLost(t, r, PAIRS)
})
