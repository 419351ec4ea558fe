// `npm run lab:kernels` arguments: flags -> validated KernelLabOptions, with one clear message per bad flag.
// Pure (no file system, no environment reads): the CLI passes in the defaults it computed.
import { intFlag, intNeeds, parseFlags, str, type Flags } from '../../harness/args.js'
import { SERVICE_MODES } from '../race/kube-proxy-modes.js'

export interface KernelLabOptions {
  /** bzImage to boot (default: the cached build of lab/kernels/build-kernel.sh). */
  kernel: string
  /** Guest memory in MiB. */
  memoryMb: number
  /** Guest vCPUs (the split-CPU client pins to CPU 0 and 1, so at least 2). */
  smp: number
  /** Wall-clock bound on the whole VM run, in minutes; QEMU is killed past it. */
  timeoutMin: number
  /** Race-lab flags passed through to the guest (`race-cli --matrix kernels ...`). */
  raceArgs: string[]
  /** JSON report on the host. */
  out: string
  /** Extra kernel command-line words (e.g. nf_conntrack.lab_pre56_clash=1). */
  append: string[]
  /** Keep the run directory (generated init, console log, guest JSON) after the run. */
  keep: boolean
  /**
   * `dns-shaper check --probe` in the guest before the race lab, with pre-5.6 and stock handling:
   * 'with' (default), 'only' (no race lab: a few minutes), or 'off'.
   */
  probe: 'with' | 'only' | 'off'
  qemu: string
}

export const USAGE = `usage: npm run lab:kernels -- [--kernel bzImage] [--quick] [--rows LIST | --services LIST [--clash C]]
                            [--max-seconds S] [--lookups N] [--gai-lookups N] [--memory MB] [--smp N]
                            [--timeout-min M] [--append WORD] [--out FILE] [--keep] [--qemu PATH]
                            [--probe-only | --no-probe]
Boots another kernel in QEMU (TCG, no KVM needed), with this machine's root file system read-only over
virtio-9p and tmpfs for everything the lab writes; runs dns-shaper check --probe there with the lab
switch on, then off, and the race lab (rows a-f, see docs/race-lab.md).
  --kernel FILE      bzImage to boot (default: the cache of lab/kernels/build-kernel.sh). It needs
                     virtio-pci, 9p, tmpfs, devtmpfs and the lab's netfilter/tc features built in (=y)
  --probe-only       only dns-shaper check --probe, lab switch on then off (no race lab; minutes)
  --no-probe         no check --probe before the race lab
  --quick            split-client rows only, fewer lookups
  --rows LIST        rows to run (default a,b,c,d,e,f; g, h: (d) with the kernel filter off / a 25 ms hold)
  --services LIST    instead of rows a-f, the kube-proxy mode rows (no shaper, fixed 5 ms, pair; split,
                     glibc, musl; masquerade off and on) for these modes, e.g. ipvs
  --clash C          with --services: pre56 or stock clash handling through the lab switch (default:
                     as booted, i.e. stock unless --append nf_conntrack.lab_pre56_clash=1)
  --max-seconds S    per-row bound on starting lookups inside the guest (default 12)
  --lookups N        split_cpu_client pairs per row (default 1500)
  --gai-lookups N    getaddrinfo lookups per row (default 300)
  --memory MB        guest memory (default 2048)
  --smp N            guest vCPUs (default 2, at least 2)
  --timeout-min M    kill the VM after M minutes (default 75)
  --append WORD      extra kernel command-line word (repeatable)
  --out FILE         JSON report (default bench/results/kernel-lab.json; -probe.json with --probe-only)
  --keep             keep the run directory (init, console log, guest JSON)
  --qemu PATH        qemu-system-x86_64 binary
Needs root (the guest runs the lab as root; the host only starts QEMU), qemu-system-x86, and a built tree.`

export type ParsedArgs = { kind: 'run'; opts: KernelLabOptions } | { kind: 'help' } | { kind: 'error'; message: string }

export interface ArgDefaults {
  kernel: string
  out: string
}

// A kernel command-line word the guest init could misread (quotes, spaces, init= or root= overrides).
const SAFE_APPEND = /^[A-Za-z0-9_.-]+(=[A-Za-z0-9_.,:/-]*)?$/
const RESERVED_APPEND = /^(init|root|rootfstype|rootflags|console)=/
const APPEND_NEEDS = 'one kernel word like nf_conntrack.lab_pre56_clash=1 (not init=, root=, console=)'
const ROWS_NEEDS = 'row ids a-h, comma-separated (e.g. a,d,e,g,h)'

/** Integer flags: [min, max, default]. */
const INTS = {
  'max-seconds': [1, 600, 12],
  lookups: [1, 1_000_000, 1500],
  'gai-lookups': [1, 1_000_000, 300],
  memory: [512, 65536, 2048],
  smp: [2, 64, 2],
  'timeout-min': [1, 24 * 60, 75],
} as const

const FLAGS: Flags = {
  help: { type: 'boolean', short: 'h' },
  quick: { type: 'boolean' },
  keep: { type: 'boolean' },
  kernel: { type: 'string', needs: 'a bzImage path' },
  out: { type: 'string', needs: 'a file name' },
  qemu: { type: 'string', needs: 'a path' },
  append: { type: 'string', multiple: true, needs: APPEND_NEEDS },
  rows: { type: 'string', needs: ROWS_NEEDS },
  services: { type: 'string', needs: `${SERVICE_MODES.join(', ')}, comma-separated` },
  clash: { type: 'string', needs: 'pre56 or stock' },
  'probe-only': { type: 'boolean' },
  'no-probe': { type: 'boolean' },
  ...Object.fromEntries(
    Object.entries(INTS).map(([name, [min, max]]) => [name, { type: 'string', needs: intNeeds(min, max) } as const]),
  ),
}

export function parseKernelLabArgs(argv: readonly string[], defaults: ArgDefaults): ParsedArgs {
  const p = parseFlags(argv, FLAGS)
  if ('error' in p)
    return argv.includes('--help') || argv.includes('-h') ? { kind: 'help' } : { kind: 'error', message: p.error }
  const v = p.values
  if (v['help'] === true) return { kind: 'help' }
  const n: Record<string, number> = {}
  for (const [name, [min, max, dflt]] of Object.entries(INTS)) {
    const text = str(v, name)
    const got = text === undefined ? dflt : intFlag(`--${name}`, text, min, max)
    if (typeof got === 'string') return { kind: 'error', message: got }
    n[name] = got
  }
  const append = (v['append'] as string[] | undefined) ?? []
  if (append.some(w => !SAFE_APPEND.test(w) || RESERVED_APPEND.test(w)))
    return { kind: 'error', message: `--append needs ${APPEND_NEEDS}` }
  const rows = str(v, 'rows')
  if (rows !== undefined && !/^[a-h](,[a-h])*$/.test(rows))
    return { kind: 'error', message: `--rows needs ${ROWS_NEEDS}` }
  const svc = str(v, 'services')
  const services = svc === undefined ? undefined : svc.split(',').filter(Boolean)
  if (
    services !== undefined &&
    (services.length === 0 || services.some(m => !(SERVICE_MODES as readonly string[]).includes(m)))
  )
    return { kind: 'error', message: `--services takes ${SERVICE_MODES.join(', ')}, comma-separated` }
  const clash = str(v, 'clash')
  if (clash !== undefined && clash !== 'pre56' && clash !== 'stock')
    return { kind: 'error', message: '--clash needs pre56 or stock' }
  if (v['probe-only'] === true && v['no-probe'] === true)
    return { kind: 'error', message: '--probe-only and --no-probe exclude each other' }
  const probe = v['probe-only'] === true ? 'only' : v['no-probe'] === true ? 'off' : 'with'
  const quick = v['quick'] === true
  if (probe === 'only' && (services !== undefined || rows !== undefined || quick))
    return { kind: 'error', message: '--probe-only runs no race lab: drop --rows, --services and --quick' }
  if (services !== undefined && rows !== undefined)
    return { kind: 'error', message: '--rows picks kernel rows a-h; --services runs the kube-proxy mode rows instead' }
  if (clash !== undefined && services === undefined)
    return { kind: 'error', message: '--clash applies to --services rows (rows a-h set their own handling)' }
  // The mode rows come from the race matrix; the kernel matrix stretches readiness waits 6x by itself.
  const matrix = services === undefined ? ['--matrix', 'kernels'] : ['--matrix', 'race', '--time-scale', '6']
  // A probe-only run must not overwrite the full run's report.
  const out = str(v, 'out') ?? (probe === 'only' ? defaults.out.replace(/(\.json)?$/, '-probe.json') : defaults.out)
  const opts: KernelLabOptions = {
    kernel: str(v, 'kernel') ?? defaults.kernel,
    memoryMb: n['memory']!,
    smp: n['smp']!,
    timeoutMin: n['timeout-min']!,
    raceArgs: [
      ...matrix,
      '--max-seconds',
      String(n['max-seconds']),
      '--lookups',
      String(n['lookups']),
      '--gai-lookups',
      String(n['gai-lookups']),
      ...(quick ? ['--quick'] : []),
      ...(rows !== undefined ? ['--rows', rows] : []),
      ...(services !== undefined ? ['--services', services.join(',')] : []),
      ...(clash !== undefined ? ['--clash', clash] : []),
    ],
    out,
    append,
    keep: v['keep'] === true,
    probe,
    qemu: str(v, 'qemu') ?? 'qemu-system-x86_64',
  }
  return { kind: 'run', opts }
}
