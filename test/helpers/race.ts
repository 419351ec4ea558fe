// Shared by the race integration tests: the skip guards, the race lab's life cycle, one split-CPU row,
// and what the shaper promises for a row. Test-only.
import t, { type Test } from 'tap'
import { existsSync } from 'node:fs'
import {
  buildClients,
  createRaceLab,
  runScenario,
  type ClientBins,
  type RaceLab,
  type RaceRow,
  type RaceScenario,
} from '../../lab/race/race.js'
import { CLI_PATH } from '../../harness/paths.js'
import { skipFileUnless } from '../../harness/skip.js'

/** Ends the test file (as skipped, with the reason) unless it runs as root on two CPUs with a built tree. */
export function requireRaceLab(tools: string): void {
  skipFileUnless({
    root: `network namespaces, ${tools}`,
    cpus: { n: 2, why: 'split_cpu_client sends the A and the AAAA of one socket at once from two CPUs' },
  })
  // A missing build is a failure to report, not a reason to skip.
  if (!existsSync(CLI_PATH)) throw new Error(`${CLI_PATH} missing: run \`npm run build\` first`)
}

export interface RaceFixture {
  lab(): RaceLab
  bins(): ClientBins
  /** One split-CPU row of `pairs` pairs (IPv4, no masquerade unless the scenario says so). */
  row(sc: Pick<RaceScenario, 'shaper'> & Partial<RaceScenario>): Promise<RaceRow>
}

/** Builds the clients and the race lab before the file's tests, and removes both after them. */
export function useRaceLab(pairs: number, opts: Parameters<typeof createRaceLab>[0] = {}): RaceFixture {
  let rl: RaceLab | undefined
  let bins: ClientBins | undefined
  t.before(async () => {
    bins = await buildClients()
    rl = await createRaceLab(opts)
  })
  t.teardown(async () => {
    await rl?.destroy()
    bins?.remove()
  })
  const lab = (): RaceLab => rl ?? fail('race lab')
  const built = (): ClientBins => bins ?? fail('clients')
  return {
    lab,
    bins: built,
    row: sc =>
      runScenario(lab(), built(), {
        client: 'split',
        family: 4,
        lookups: pairs,
        threads: 1,
        maxSeconds: 30,
        snat: false,
        ...sc,
      }),
  }
}

function fail(what: string): never {
  throw new Error(`${what} not set up (t.before failed?)`)
}

export const describeRow = (r: RaceRow): string =>
  `${r.service} ${r.shaper}${r.snat ? ' snat' : ''}: ${r.lookups} pairs, clashres ${r.clashResolve}, ` +
  `insert_failed ${r.insertFailed}, drop ${r.drop}, lost ${r.answersLost}, A p50 ${r.aP50Us} us, ` +
  `AAAA p50 ${r.aaaaP50Us} us, shaper ${JSON.stringify(r.shaperCounters)}`

/** What the shaper promises for a row: every pair ran, conntrack saw no clash, nothing was lost. */
export function expectNoClashNothingLost(t: Test, r: RaceRow, pairs: number): void {
  t.equal(r.lookups, pairs, 'every pair ran')
  t.equal(r.clashResolve, 0, 'no clash resolved')
  t.equal(r.insertFailed, 0, 'no insert failed')
  t.equal(r.drop, 0, 'no conntrack drop')
  t.equal(r.answersLost, 0, 'no answer lost')
  t.equal(r.failed, 0, 'no lookup failed')
}
