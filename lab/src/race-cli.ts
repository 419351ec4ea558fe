#!/usr/bin/env node
// `npm run lab:race`: runs the conntrack race matrix (lab/src/race.ts) in throwaway namespaces,
// prints one table row per scenario and writes the full JSON. It measures; it judges nothing.
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { kernelMatrix, raceMatrix, runRaceMatrix, tableHeader, tableRow } from './race.js'
import type { RaceMatrixOptions } from './race.js'
import { SERVICE_MODES, type ServiceMode } from './kube-proxy-modes.js'

const USAGE = `usage: node dist-lab/lab/src/race-cli.js [--quick] [--lookups N] [--natural-lookups N] [--max-seconds S] [--threads P] [--services LIST] [--out FILE]
                                       [--matrix race|kernels] [--gai-lookups N] [--rows LIST] [--time-scale K]
                                       [--clash pre56|stock]
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
(npx node-gyp rebuild && npx tsc -p tsconfig.build.json).`

function parseArgs(argv: string[]): { opts: RaceMatrixOptions; out: string; matrix: 'race' | 'kernels' } | string {
  const opts: RaceMatrixOptions = {}
  let out = 'bench/results/race-lab.json'
  let matrix: 'race' | 'kernels' = 'race'
  const int = (flag: string, v: string | undefined, max: number): number | string => {
    const n = Number(v)
    return v !== undefined && Number.isInteger(n) && n >= 1 && n <= max ? n : `${flag} needs an integer 1..${max}`
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const v = argv[i + 1]
    if (a === '--quick') {
      opts.quick = true
      continue
    }
    if (a === '--help' || a === '-h') return ''
    let n: number | string
    switch (a) {
      case '--lookups':
        n = int(a, v, 1_000_000)
        if (typeof n === 'string') return n
        opts.splitLookups = n
        break
      case '--natural-lookups':
        n = int(a, v, 1_000_000)
        if (typeof n === 'string') return n
        opts.pairLookups = n
        opts.gaiLookups = Math.max(1, Math.round(n / 2.5))
        break
      case '--max-seconds':
        n = int(a, v, 600)
        if (typeof n === 'string') return n
        opts.maxSeconds = n
        break
      case '--threads':
        n = int(a, v, 64)
        if (typeof n === 'string') return n
        opts.splitThreads = n
        break
      case '--services': {
        const list = (v ?? '').split(',').filter(Boolean)
        const bad = list.find(m => !(SERVICE_MODES as readonly string[]).includes(m))
        if (list.length === 0 || bad !== undefined) return `--services takes ${SERVICE_MODES.join(', ')}`
        opts.services = list as ServiceMode[]
        break
      }
      case '--out':
        if (!v) return '--out needs a file name'
        out = v
        break
      case '--matrix':
        if (v !== 'race' && v !== 'kernels') return '--matrix needs race or kernels'
        matrix = v
        break
      case '--gai-lookups':
        n = int(a, v, 1_000_000)
        if (typeof n === 'string') return n
        opts.gaiLookups = n
        break
      case '--rows':
        if (!v || !/^[a-h](,[a-h])*$/.test(v)) return '--rows needs row ids a-h, comma-separated (kernel matrix)'
        opts.rows = v.split(',')
        break
      case '--clash':
        if (v !== 'pre56' && v !== 'stock') return '--clash needs pre56 or stock'
        opts.clash = v
        break
      case '--time-scale':
        n = int(a, v, 100)
        if (typeof n === 'string') return n
        opts.timeScale = n
        break
      default:
        return `unknown flag ${a}`
    }
    i++
  }
  return { opts, out, matrix }
}

async function main(): Promise<number> {
  const p = parseArgs(process.argv.slice(2))
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

main().then(
  code => {
    process.exitCode = code
  },
  (e: unknown) => {
    process.stderr.write(`race-cli: ${e instanceof Error ? e.message : String(e)}\n`)
    process.exitCode = 1
  },
)
