import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  checkExpectedSigns,
  formatChecks,
  guestConsoleLines,
  isShownConsoleLine,
  judgeShapedRow,
  parseGuestInfo,
  parseRaceReport,
  probeFigures,
  probeSigns,
  readGuestResults,
} from '../../../lab/kernels/results.js'
import type { ProbeRun } from '../../../lab/kernels/results.js'
import type { RaceRow } from '../../../lab/race/race.js'

function row(p: Partial<RaceRow>): RaceRow {
  return {
    id: 'a',
    clash: 'lab switch lab_pre56_clash=1',
    shaper: '(a) no shaper',
    service: 'iptables',
    client: 'split',
    family: 4,
    snat: false,
    lookups: 100,
    failed: 0,
    slowOver1s: 0,
    answersLost: 0,
    clashResolve: 0,
    insertFailed: 0,
    drop: 0,
    p50Us: 100,
    p99Us: 900,
    aP50Us: null,
    aaaaP50Us: null,
    elapsedS: 1,
    shaperCounters: null,
    raw: { lookups: 100, failed: 0, slow_over_1s: 0, p50_us: 100, p99_us: 900, max_us: 1000, elapsed_s: 1 },
    ...p,
  }
}

t.test('guest-info and console lines', async t => {
  t.same(parseGuestInfo('kernel=5.10.262\ncmdline=console=ttyS0 root=/dev/root\nlab_pre56_clash=N\njunk\n'), {
    kernel: '5.10.262',
    cmdline: 'console=ttyS0 root=/dev/root',
    lab_pre56_clash: 'N',
  })
  t.same(
    guestConsoleLines('[    0.1] Linux version\r\ndnss-guest: kernel 5.10\r\nother\ndnss-guest: race lab exited 0\r\n'),
    ['dnss-guest: kernel 5.10', 'dnss-guest: race lab exited 0'],
  )
})

t.test('a dns-shaper row: kernel drops are bad; a lost answer only when the client does not explain it', async t => {
  t.same(judgeShapedRow(row({})), { bad: false, note: null })
  t.equal(judgeShapedRow(row({ insertFailed: 1 })).bad, true)
  t.equal(judgeShapedRow(row({ drop: 1 })).bad, true, 'any conntrack drop')
  t.equal(judgeShapedRow(row({ answersLost: 1, failed: 1 })).bad, true, 'a loss nothing explains')
  const stalled = row({
    answersLost: 2,
    failed: 1,
    raw: { ...row({}).raw, release_skew_ns_max: 1_340_912_430 },
  })
  const v = judgeShapedRow(stalled)
  t.equal(v.bad, false)
  t.match(v.note, /no kernel drop: a sender stalled 1\.34 s, past the client's 1 s timeout/)
  const stalledAndDropped = row({ insertFailed: 1, raw: { ...row({}).raw, release_skew_ns_max: 2e9 } })
  t.equal(judgeShapedRow(stalledAndDropped).bad, true, 'a stall never excuses a kernel drop')
  const counters = { held: 10, pairReleased: 6, deadlineReleased: 4, bypassed: 0 }
  const late = row({ answersLost: 3, failed: 3, shaperCounters: counters, raw: { ...row({}).raw, max_us: 1_179_099 } })
  t.equal(judgeShapedRow(late).bad, false)
  t.match(
    judgeShapedRow(late).note,
    /no kernel drop and every held packet released \(late or lost past conntrack; p99 0\.00 s\)/,
  )
  const kept = row({ answersLost: 1, shaperCounters: { ...counters, deadlineReleased: 3 }, raw: late.raw })
  t.equal(judgeShapedRow(kept).bad, true, 'a held packet never released is the shaper losing it')
  const bypassed = row({ answersLost: 1, shaperCounters: { ...counters, bypassed: 1 }, raw: late.raw })
  t.equal(judgeShapedRow(bypassed).bad, true, 'bypassed packets are not accounted for')
  const unshaped = row({ answersLost: 1, shaperCounters: null })
  t.equal(judgeShapedRow(unshaped).bad, true, 'no shaper counters: nothing accounts for the loss')
})

t.test('console lines shown live: guest, table, skips, errors; not kernel chatter', async t => {
  for (const l of [
    'dnss-guest: kernel 5.10.262',
    '36 rows',
    'shaper                 client      fam',
    '(a) no shaper          split        v4    no',
    'skip: (b) netem node egress / split / snat off: kernel lacks sch_netem',
    'race-cli: DNS service 192.0.2.10 does not answer',
    '[    3.2] Kernel panic - not syncing: Attempted to kill init!',
  ])
    t.ok(isShownConsoleLine(l), l)
  for (const l of ['[    0.000000] Linux version 5.10.262', 'random: crng init done', '36 rows of text'])
    t.notOk(isShownConsoleLine(l), l)
})

t.test('race report parsing checks the fields the table and the signs use', async t => {
  const r = parseRaceReport(JSON.stringify({ date: 'd', kernel: '5.10', cpus: 2, rows: [row({})], skipped: ['x'] }))
  t.equal(r.rows.length, 1)
  t.same(r.skipped, ['x'])
  t.throws(() => parseRaceReport('{"rows":[]}'), /not a race-lab report/)
  t.throws(
    () => parseRaceReport(JSON.stringify({ kernel: 'k', rows: [{ ...row({}), insertFailed: 'many' }] })),
    /row 0: insertFailed is not a number/,
  )
  t.throws(() => parseRaceReport('not json'))
})

t.test('readGuestResults: what the guest left, and why when it left nothing', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'dnss-kres-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  let g = readGuestResults(dir)
  t.equal(g.report, null)
  t.match(g.problem, /never reached the lab.*9P_FS/)
  writeFileSync(join(dir, 'guest-info'), 'kernel=5.10.262\nlab_pre56_clash=N\n')
  writeFileSync(join(dir, 'guest-rc'), '1\n')
  g = readGuestResults(dir)
  t.equal(g.rc, 1)
  t.match(g.problem, /wrote no report \(exit 1\)/)
  writeFileSync(join(dir, 'race.json'), JSON.stringify({ date: 'd', kernel: '5.10.262', cpus: 2, rows: [row({})] }))
  writeFileSync(join(dir, 'guest-rc'), '0\n')
  g = readGuestResults(dir)
  t.equal(g.problem, null)
  t.equal(g.rc, 0)
  t.equal(g.report?.kernel, '5.10.262')
  t.equal(g.info['lab_pre56_clash'], 'N')
})

t.test('expected signs: drops without a shaper, none with dns-shaper, stock resolves', async t => {
  const good = [
    row({ id: 'a', insertFailed: 40, client: 'split' }),
    row({ id: 'a', insertFailed: 0, client: 'gai-glibc', answersLost: null }),
    row({ id: 'd', shaper: '(d) raw fixed 5 ms' }),
    row({ id: 'e', shaper: '(e) raw pair (max 5 ms)', snat: true }),
    row({ id: 'f', clash: 'lab switch lab_pre56_clash=0 (stock)', clashResolve: 55 }),
  ]
  const c = checkExpectedSigns(good)
  t.same(
    c.map(x => x.status),
    ['PASS', 'PASS', 'PASS', 'PASS'],
    formatChecks(c),
  )
  t.match(c[0]!.detail, /insert_failed 40 over 1 split-CPU row/)

  const bad = checkExpectedSigns([
    row({ id: 'a', insertFailed: 0 }),
    row({ id: 'd', insertFailed: 3 }),
    row({ id: 'e', answersLost: 2, snat: true }),
    row({ id: 'f', insertFailed: 1, clashResolve: 9 }),
  ])
  t.same(
    bad.map(x => x.status),
    ['FAIL', 'FAIL', 'FAIL', 'FAIL'],
  )
  t.match(bad[0]!.detail, /is the lab switch on/)
  t.match(bad[1]!.detail, /split snat=off: insert_failed 3, drop 0/)
  t.match(bad[2]!.detail, /snat=on: lost 2, failed 0 with no kernel drop/)

  const none = checkExpectedSigns([])
  t.same(
    none.map(x => x.status),
    ['SKIP', 'SKIP', 'SKIP', 'SKIP'],
    'rows that did not run are never a PASS',
  )
  t.match(formatChecks(none), /^SKIP \(a\) drops without a shaper: no \(a\) split rows ran/)
})

t.test('expected signs of a kube-proxy mode run: dns-shaper rows per mode, no lettered-row noise', async t => {
  const counters = { held: 100, pairReleased: 60, deadlineReleased: 40, bypassed: 0 }
  const ipvs = (p: Partial<RaceRow>): RaceRow =>
    row({ id: null, clash: null, service: 'ipvs', shaper: 'no shaper', ...p })
  const good = checkExpectedSigns([
    ipvs({ insertFailed: 7, clashResolve: 2, answersLost: 7 }),
    ipvs({ shaper: 'raw fixed 5 ms', shaperCounters: counters }),
    ipvs({ shaper: 'raw pair (max 5 ms)', shaperCounters: counters, snat: true }),
  ])
  t.same(
    good.map(c => [c.name, c.status]),
    [['(ipvs) dns-shaper rows: no drops', 'PASS']],
    formatChecks(good),
  )
  t.match(good[0]!.detail, /over 2 row\(s\).*without a shaper: clash_resolve 2, insert_failed 7 over 1 row/)

  const bad = checkExpectedSigns([ipvs({ shaper: 'raw fixed 5 ms', shaperCounters: counters, insertFailed: 1 })])
  t.equal(bad[0]!.status, 'FAIL')
  t.match(bad[0]!.detail, /insert_failed 1/)

  const unread = checkExpectedSigns([ipvs({ shaper: 'raw pair (max 5 ms)', shaperCounters: null })])
  t.match(unread[0]!.detail, /over 1 row/, 'a dns-shaper row whose /metrics was not read is still judged')
  const unshaped = checkExpectedSigns([ipvs({})])
  t.same(
    unshaped.map(c => c.status),
    ['SKIP'],
    'no dns-shaper row ran: SKIP, never PASS',
  )
})

t.test('probe signs: switch on drops, switch off resolves; no figures or the wrong verdict fail', async t => {
  // The shape of `dns-shaper check --probe --json` (report.probe = ProbeResult), cut to what is read.
  const figures = (outcome: string, dropped: number, resolved: number): unknown => ({
    ready: true,
    probe: {
      verdict: {
        outcome,
        ...(dropped + resolved === 0 ? { reason: 'no-overlap' } : {}),
        // Only the figures the lab reads (the product adds queries, answered, lost).
        figures: { pairs: 300, clashes: dropped + resolved, dropped, resolved },
        text: `this kernel ${outcome}`,
      },
      release: '5.10.262',
      elapsedSeconds: 20,
    },
  })
  const run = (handling: 'pre56' | 'stock' | 'asis', json: unknown): ProbeRun => ({ handling, rc: 0, json, stderr: '' })
  t.same(probeFigures(figures('drops', 5, 1)), {
    verdict: 'drops',
    text: 'this kernel drops',
    pairs: 300,
    clashes: 6,
    dropped: 5,
    resolved: 1,
  })
  t.equal(probeFigures({ probe: { verdict: { outcome: 'drops', figures: { pairs: 1 } } } }), null, 'all four figures')
  t.equal(probeFigures({ probe: { error: 'boom' } }), null)
  const good = probeSigns([run('pre56', figures('drops', 12, 3)), run('stock', figures('resolves', 0, 40))], true)
  t.same(
    good.map(c => c.status),
    ['PASS', 'PASS'],
    formatChecks(good),
  )
  t.match(good[0]!.detail, /verdict drops: 300 pairs, 15 clashes, 12 dropped, 3 resolved/)
  const bad = probeSigns(
    [
      run('pre56', figures('inconclusive', 0, 0)),
      { handling: 'stock', rc: 1, json: null, stderr: 'check: --probe needs CAP_SYS_ADMIN' },
    ],
    true,
  )
  t.same(
    bad.map(c => c.status),
    ['FAIL', 'FAIL'],
  )
  t.match(bad[0]!.detail, /verdict inconclusive \(no-overlap\): 300 pairs, 0 clashes/)
  t.match(bad[1]!.detail, /exited 1 with no probe figures: check: --probe needs CAP_SYS_ADMIN/)
  const notRun = probeSigns(
    [
      {
        handling: 'pre56',
        rc: 0,
        json: { probe: { verdict: { outcome: 'inconclusive', text: 'probe not run: x' } } },
        stderr: '',
      },
    ],
    true,
  )
  t.match(notRun[0]!.detail, /no probe figures: probe not run: x/, "the probe's own sentence when it has no figures")
  t.same(
    probeSigns([run('stock', figures('resolves', 2, 40))], true).map(c => c.status),
    ['SKIP', 'FAIL'],
    'a stock probe that dropped anything fails; a missing run is SKIP',
  )
  t.match(probeSigns([run('asis', figures('drops', 1, 0))], true)[0]!.detail, /no lab switch/)
  t.same(probeSigns([], false), [], 'not asked: no signs')
})

t.test('readGuestResults: the probe runs the guest left', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'dnss-kres-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'guest-info'), 'kernel=5.10.262\n')
  writeFileSync(join(dir, 'guest-rc'), '0\n')
  writeFileSync(join(dir, 'probe-pre56.rc'), '1\n')
  writeFileSync(join(dir, 'probe-pre56.json'), '{"probe":{"verdict":{"outcome":"drops"}}}')
  writeFileSync(join(dir, 'probe-stock.rc'), '2\n')
  writeFileSync(join(dir, 'probe-stock.json'), 'not json')
  writeFileSync(join(dir, 'probe-stock.err'), 'boom\n')
  const g = readGuestResults(dir, { raceAsked: false })
  t.equal(g.problem, null, 'a probe-only run expects no race report')
  t.same(
    g.probes.map(p => [p.handling, p.rc, p.json === null, p.stderr]),
    [
      ['pre56', 1, false, ''],
      ['stock', 2, true, 'boom\n'],
    ],
  )
  t.match(readGuestResults(dir).problem, /wrote no report/, 'a race run still needs its report')
})
