// Benchmark options: the variants it can run and the flags (node:util parseArgs through harness/args), with
// --quick's smaller defaults. Pure: no file system, no root; the entry point passes in the repository root.
import { join } from 'node:path'
import { parseFlags, str, toggle, valued, type Flags, type FlagValues } from '../harness/args.js'
import { SWEEPS } from './lib/sweep.js'
import type { SweepName } from './lib/sweep.js'
import { baseline } from './workloads/baseline.js'
import { dnsShaperFixed, dnsShaperFixedKfilter } from './workloads/dns-shaper-fixed.js'
import { dnsShaperPair } from './workloads/dns-shaper-pair.js'
import { nfqRefAccept } from './workloads/nfq-ref-accept.js'
import { nfqRefHold } from './workloads/nfq-ref-hold.js'
import { npmNfqueue } from './workloads/npm-nfqueue.js'
import type { Variant } from './workloads/types.js'

export const ALL_VARIANTS: Variant[] = [
  baseline,
  nfqRefAccept,
  nfqRefHold,
  dnsShaperFixed,
  dnsShaperFixedKfilter,
  dnsShaperPair,
  npmNfqueue('hold'),
  npmNfqueue('accept'),
]
export const DEFAULT_VARIANTS = [
  'baseline',
  'nfq-ref-accept',
  'nfq-ref-hold',
  'dns-shaper-fixed',
  'dns-shaper-fixed-kfilter',
  'dns-shaper-pair',
  'npm-nfqueue-hold',
]

export interface Options {
  quick: boolean
  rates: number[]
  durationS: number
  variants: string[]
  delayMs: number
  /** Max-rate search: probes after the cap (0 disables the search). */
  searchSteps: number
  searchDurationS: number
  searchCapQps: number
  /** Top up each variant's packet count to this many before the final RSS reading (0: no top-up). */
  rssPackets: number
  /** Also run baseline and pair mode with one client socket, where A and AAAA of a name share a flow. */
  pairs: boolean
  outDir: string
  npmNfqueueDir: string
  queue: number
  hosts: number
  /** Node binary the dns-shaper variants run on (default: the one running the benchmark). */
  daemonNode: string
  /** Another built checkout whose dns-shaper runs right after this one's, in the same lab and run. */
  compare?: string
  /** Scaling sweeps to run instead of the operating-point benchmark (empty: none). */
  sweeps: SweepName[]
  /** Re-render sweeps.md and its plots from this sweeps.json, run nothing. */
  rerender?: string
}

export const USAGE = `usage: npm run bench -- [options]   (root: network namespaces; node dist-harness/bench/run.js [options])
  --quick               smoke run (< 60 s): one rate (5000), 2 s runs, a 1-step search capped at 4x it, no top-up
  --rates LIST          dnsperf -Q rates, comma separated (default 1000,10000,50000)
  --duration S          seconds per measured run (default 8)
  --variants LIST       of ${ALL_VARIANTS.map(v => v.id).join(', ')} (default ${DEFAULT_VARIANTS.join(',')})
  --delay MS            AAAA hold (default 5)
  --search-steps N      zero-loss max-rate probes after the cap (default 5; 0 = off)
  --search-duration S   seconds per probe (default 2)
  --search-cap QPS      highest rate tried (default 200000)
  --rss-packets N       packets each variant sees before the final RSS reading (default 1000000)
  --no-pairs            skip the stub-client runs (one socket per A+AAAA, bench/clients/stub_load) of
                        baseline, nfq_ref hold and pair mode
  --compare DIR         also run DIR's dns-shaper (another built checkout, e.g. main) right after each
                        dns-shaper variant, as <id>@before, in the same lab and run
  --daemon-node PATH    node binary for the dns-shaper variants, e.g. the image's Node.js 24
                        (default: this one); they run with the image's node flags (Dockerfile ENTRYPOINT)
  --npm-nfqueue DIR     npm nfqueue package dir (default /tmp/nfq-npm/node_modules/nfqueue)
  --sweeps LIST         instead: the scaling sweeps ${SWEEPS.join(',')} or all (bench/results/sweeps.*);
                        with --quick a smoke run of each
  --rerender-sweeps F   re-render sweeps.md and the plots into --out from a saved sweeps.json (no root)
  --out DIR             results directory (default bench/results)`

const FLAGS: Flags = {
  help: { type: 'boolean', short: 'h' },
  quick: toggle,
  'no-pairs': toggle,
  rates: valued('rates, comma separated'),
  duration: valued('seconds'),
  variants: valued('variant ids, comma separated'),
  delay: valued('milliseconds'),
  'search-steps': valued('a non-negative integer'),
  'search-duration': valued('seconds'),
  'search-cap': valued('queries per second'),
  'rss-packets': valued('a non-negative integer'),
  'npm-nfqueue': valued('a directory'),
  compare: valued('a built checkout directory'),
  'daemon-node': valued('a node binary'),
  out: valued('a directory'),
  'rerender-sweeps': valued('a sweeps.json file'),
  sweeps: { type: 'string', needs: `${SWEEPS.join(',')} or all` },
}

function posNum(flag: string, v: string, int = true): number {
  const n = Number(v)
  if (v.trim() === '' || !Number.isFinite(n) || n < 0 || (int && !Number.isInteger(n)))
    throw new Error(`${flag} needs a non-negative ${int ? 'integer' : 'number'}, got ${v}`)
  return n
}

const list = (v: string): string[] =>
  v
    .split(',')
    .map(s => s.trim())
    .filter(Boolean)

/** Flags -> Options; throws with the usage on --help or a bad flag. */
export function parseOptions(argv: readonly string[], repo: string): Options {
  const p = parseFlags(argv, FLAGS)
  if ('error' in p) throw new Error(`${p.error}\n${USAGE}`)
  const v: FlagValues = p.values
  if (v['help'] === true) throw new Error(USAGE)
  const num = (name: string, dflt: number, int = true): number => {
    const text = str(v, name)
    return text === undefined ? dflt : posNum(`--${name}`, text, int)
  }
  const quick = v['quick'] === true
  const given = (name: string): boolean => v[name] !== undefined
  const rates =
    str(v, 'rates') === undefined
      ? quick
        ? [5000]
        : [1000, 10_000, 50_000]
      : (str(v, 'rates') ?? '')
          .split(',')
          .map(s => posNum('--rates', s))
          .filter(n => n > 0)
  const o: Options = {
    quick,
    rates,
    durationS: num('duration', quick ? 2 : 8, false),
    variants: str(v, 'variants') === undefined ? DEFAULT_VARIANTS : list(str(v, 'variants')!),
    delayMs: num('delay', 5, false),
    searchSteps: num('search-steps', quick ? 1 : 5),
    searchDurationS: num('search-duration', quick ? 1 : 2, false),
    searchCapQps: given('search-cap') || !quick ? num('search-cap', 200_000) : 4 * Math.max(...rates),
    rssPackets: num('rss-packets', quick ? 0 : 1_000_000),
    pairs: v['no-pairs'] !== true,
    outDir: str(v, 'out') ?? join(repo, 'bench', 'results'),
    npmNfqueueDir: str(v, 'npm-nfqueue') ?? '/tmp/nfq-npm/node_modules/nfqueue',
    queue: 0,
    hosts: 250,
    daemonNode: str(v, 'daemon-node') ?? process.execPath,
    sweeps: [],
  }
  const compare = str(v, 'compare')
  if (compare !== undefined) o.compare = compare
  const rerender = str(v, 'rerender-sweeps')
  if (rerender !== undefined) o.rerender = rerender
  const sweeps = str(v, 'sweeps')
  if (sweeps !== undefined) {
    const asked = list(sweeps)
    const names = asked.includes('all') ? [...SWEEPS] : asked
    const bad = names.filter(x => !(SWEEPS as readonly string[]).includes(x))
    if (bad.length || names.length === 0)
      throw new Error(`--sweeps takes ${SWEEPS.join(',')} or all, got ${asked.join(',') || 'nothing'}`)
    o.sweeps = [...new Set(names)] as SweepName[]
  }
  if (o.rates.length === 0) throw new Error('--rates needs at least one positive rate')
  if (o.durationS <= 0 || o.durationS > 120) throw new Error('--duration must be in (0, 120] seconds')
  if (o.searchDurationS <= 0 || o.searchDurationS > 30) throw new Error('--search-duration must be in (0, 30] seconds')
  if (o.searchSteps > 10) throw new Error('--search-steps must be at most 10')
  const unknown = o.variants.filter(id => !ALL_VARIANTS.some(x => x.id === id))
  if (unknown.length)
    throw new Error(`unknown variant(s) ${unknown.join(', ')}; known: ${ALL_VARIANTS.map(x => x.id).join(', ')}`)
  return o
}
