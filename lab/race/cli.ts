#!/usr/bin/env node
// `npm run lab:race`: runs the conntrack race matrix (lab/race/race.ts) in throwaway namespaces,
// prints one table row per scenario and writes the full JSON. It measures; it judges nothing.
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { kernelMatrix, raceMatrix, runRaceMatrix, tableHeader, tableRow } from './race.js'
import type { RaceMatrixOptions } from './race.js'
import { SERVICE_MODES, type ServiceMode } from './kube-proxy-modes.js'
import { intFlag, intNeeds, parseFlags, str, type Flags } from '../../harness/args.js'

const USAGE = `usage: node dist-harness/lab/race/cli.js [--quick] [--lookups N] [--natural-lookups N] [--max-seconds S] [--threads P] [--services LIST] [--out FILE]
                                       [--matrix race|kernels] [--gai-lookups N] [--rows LIST] [--time-scale K] [--clash C]
  --quick             split-client rows only, 3000 pairs each (under a minute)
  --lookups N         split_cpu_client A+AAAA pairs per row (default 20000)
  --natural-lookups N pair_client lookups per row (default 5000); getaddrinfo rows use N/2.5
  --max-seconds S     per-row bound on starting lookups (default 15)
  --threads P         split_cpu_client thread pairs (default 1; keep <= CPUs/2)
  --services LIST     kube-proxy modes, comma-separated: iptables,nftables,nftables-map,ipvs
                      (default iptables,nftables,ipvs; IPVS rows are skipped where the kernel has no ip_vs)
  --out FILE          JSON report (default bench/results/race-lab.json)
  --matrix kernels    rows (a)-(f) of the kernel lab (docs/race-lab.md); npm run lab:kernels runs it in a
                      5.10 guest. Rows needing pre-5.6 clash handling or netem skip, with the reason, elsewhere
  --gai-lookups N     getaddrinfo lookups per row (after --natural-lookups)
  --rows LIST         kernel matrix rows to run, e.g. a,d,e,g,h (default a-f; g, h: extra (d) variants)
  --time-scale K      stretch readiness waits K times (slow guests; default 1, kernels matrix 6)
  --clash pre56|stock clash handling for the kube-proxy mode rows, through the kernel lab's switch
                      (rows that cannot have it on this kernel are skipped with the reason)
Needs root, iptables, nft, conntrack, unbound (ipvsadm for IPVS rows), gcc (musl-gcc for the musl rows), and a built tree
(npm run build).`

/** Integer flags: [min, max]. */
const INTS = {
  lookups: [1, 1_000_000],
  'natural-lookups': [1, 1_000_000],
  'max-seconds': [1, 600],
  threads: [1, 64],
  'gai-lookups': [1, 1_000_000],
  'time-scale': [1, 100],
} as const
const ROWS_NEEDS = 'row ids a-h, comma-separated (kernel matrix)'

const FLAGS: Flags = {
  help: { type: 'boolean', short: 'h' },
  quick: { type: 'boolean' },
  services: { type: 'string', needs: SERVICE_MODES.join(', ') },
  out: { type: 'string', needs: 'a file name' },
  matrix: { type: 'string', needs: 'race or kernels' },
  rows: { type: 'string', needs: ROWS_NEEDS },
  clash: { type: 'string', needs: 'pre56 or stock' },
  ...Object.fromEntries(
    Object.entries(INTS).map(([name, [min, max]]) => [name, { type: 'string', needs: intNeeds(min, max) } as const]),
  ),
}

/** Flags -> options; '' asks for the usage, another string is the message naming the bad flag. */
export function parseRaceArgs(
  argv: string[],
): { opts: RaceMatrixOptions; out: string; matrix: 'race' | 'kernels' } | string {
  const p = parseFlags(argv, FLAGS)
  if ('error' in p) return argv.includes('--help') || argv.includes('-h') ? '' : p.error
  const v = p.values
  if (v['help'] === true) return ''
  const n: Record<string, number | undefined> = {}
  for (const [name, [min, max]] of Object.entries(INTS)) {
    const text = str(v, name)
    if (text === undefined) continue
    const got = intFlag(`--${name}`, text, min, max)
    if (typeof got === 'string') return got
    n[name] = got
  }
  const opts: RaceMatrixOptions = {}
  if (v['quick'] === true) opts.quick = true
  if (n['lookups'] !== undefined) opts.splitLookups = n['lookups']
  if (n['natural-lookups'] !== undefined) {
    opts.pairLookups = n['natural-lookups']
    opts.gaiLookups = Math.max(1, Math.round(n['natural-lookups'] / 2.5))
  }
  if (n['max-seconds'] !== undefined) opts.maxSeconds = n['max-seconds']
  if (n['threads'] !== undefined) opts.splitThreads = n['threads']
  // An explicit --gai-lookups wins over the one --natural-lookups implies.
  if (n['gai-lookups'] !== undefined) opts.gaiLookups = n['gai-lookups']
  if (n['time-scale'] !== undefined) opts.timeScale = n['time-scale']
  const services = str(v, 'services')
  if (services !== undefined) {
    const list = services.split(',').filter(Boolean)
    if (list.length === 0 || list.some(m => !(SERVICE_MODES as readonly string[]).includes(m)))
      return `--services takes ${SERVICE_MODES.join(', ')}`
    opts.services = list as ServiceMode[]
  }
  const rows = str(v, 'rows')
  if (rows !== undefined) {
    if (!/^[a-h](,[a-h])*$/.test(rows)) return `--rows needs ${ROWS_NEEDS}`
    opts.rows = rows.split(',')
  }
  const clash = str(v, 'clash')
  if (clash !== undefined) {
    if (clash !== 'pre56' && clash !== 'stock') return '--clash needs pre56 or stock'
    opts.clash = clash
  }
  const matrix = str(v, 'matrix') ?? 'race'
  if (matrix !== 'race' && matrix !== 'kernels') return '--matrix needs race or kernels'
  return { opts, out: str(v, 'out') ?? 'bench/results/race-lab.json', matrix }
}

async function main(): Promise<number> {
  const p = parseRaceArgs(process.argv.slice(2))
  if (typeof p === 'string') {
    if (p === '') {
      process.stdout.write(USAGE + '\n')
      return 0
    }
    process.stderr.write(`race-cli: ${p}\n${USAGE}\n`)
    return 2
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('race-cli: needs root (network namespaces, iptables, NFQUEUE)\n')
    return 1
  }
  const kernels = p.matrix === 'kernels'
  const scenarios = kernels ? kernelMatrix(p.opts) : raceMatrix(p.opts)
  process.stdout.write(`${scenarios.length} rows\n${tableHeader()}\n`)
  const report = await runRaceMatrix(scenarios, {
    onRow: r => process.stdout.write(tableRow(r) + '\n'),
    onSkip: why => process.stdout.write(`skip: ${why}\n`),
    timeScale: p.opts.timeScale ?? (kernels ? 6 : 1),
  })
  const file = resolve(p.out)
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n')
  process.stdout.write(`\nkernel ${report.kernel}, ${report.cpus} CPUs, ${report.date}\n`)
  for (const s of report.skipped) process.stdout.write(`skipped: ${s}\n`)
  process.stdout.write(`JSON: ${file}\n`)
  return 0
}

// Run directly (node dist-harness/lab/race/cli.js); imported by its test, it only parses.
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().then(
    code => {
      process.exitCode = code
    },
    (e: unknown) => {
      process.stderr.write(`race-cli: ${e instanceof Error ? e.message : String(e)}\n`)
      process.exitCode = 1
    },
  )
}
