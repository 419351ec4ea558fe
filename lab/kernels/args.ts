// `npm run lab:kernels` arguments: flags -> validated KernelLabOptions, with one clear message per bad flag.
// Pure (no file system, no environment reads): the CLI passes in the defaults it computed.

import { SERVICE_MODES } from '../src/kube-proxy-modes.js'

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

function intFlag(flag: string, v: string | undefined, min: number, max: number): number | string {
  const n = Number(v)
  return v !== undefined && /^[0-9]+$/.test(v) && Number.isInteger(n) && n >= min && n <= max
    ? n
    : `${flag} needs an integer ${min}..${max}`
}

// A kernel command-line word the guest init could misread (quotes, spaces, init= or root= overrides).
const SAFE_APPEND = /^[A-Za-z0-9_.-]+(=[A-Za-z0-9_.,:/-]*)?$/
const RESERVED_APPEND = /^(init|root|rootfstype|rootflags|console)=/

export function parseKernelLabArgs(argv: readonly string[], defaults: ArgDefaults): ParsedArgs {
  const opts: KernelLabOptions = {
    kernel: defaults.kernel,
    memoryMb: 2048,
    smp: 2,
    timeoutMin: 75,
    raceArgs: [],
    out: defaults.out,
    append: [],
    keep: false,
    probe: 'with',
    qemu: 'qemu-system-x86_64',
  }
  let maxSeconds = 12
  let lookups = 1500
  let gaiLookups = 300
  let quick = false
  let rows: string | undefined
  let services: string | undefined
  let outGiven = false
  let clash: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const v = argv[i + 1]
    if (a === '--help' || a === '-h') return { kind: 'help' }
    if (a === '--quick') {
      quick = true
      continue
    }
    if (a === '--keep') {
      opts.keep = true
      continue
    }
    if (a === '--probe-only' || a === '--no-probe') {
      const want = a === '--probe-only' ? 'only' : 'off'
      if (opts.probe !== 'with' && opts.probe !== want)
        return { kind: 'error', message: '--probe-only and --no-probe exclude each other' }
      opts.probe = want
      continue
    }
    let n: number | string
    switch (a) {
      case '--kernel':
        if (!v || v.startsWith('--')) return { kind: 'error', message: '--kernel needs a bzImage path' }
        opts.kernel = v
        break
      case '--out':
        if (!v || v.startsWith('--')) return { kind: 'error', message: '--out needs a file name' }
        opts.out = v
        outGiven = true
        break
      case '--qemu':
        if (!v || v.startsWith('--')) return { kind: 'error', message: '--qemu needs a path' }
        opts.qemu = v
        break
      case '--append':
        if (!v || !SAFE_APPEND.test(v) || RESERVED_APPEND.test(v))
          return {
            kind: 'error',
            message: '--append needs one kernel word like nf_conntrack.lab_pre56_clash=1 (not init=, root=, console=)',
          }
        opts.append.push(v)
        break
      case '--rows':
        if (!v || !/^[a-h](,[a-h])*$/.test(v))
          return { kind: 'error', message: '--rows needs row ids a-h, comma-separated (e.g. a,d,e,g,h)' }
        rows = v
        break
      case '--services': {
        const list = (v ?? '').split(',').filter(Boolean)
        if (list.length === 0 || list.some(m => !(SERVICE_MODES as readonly string[]).includes(m)))
          return { kind: 'error', message: `--services takes ${SERVICE_MODES.join(', ')}, comma-separated` }
        services = list.join(',')
        break
      }
      case '--clash':
        if (v !== 'pre56' && v !== 'stock') return { kind: 'error', message: '--clash needs pre56 or stock' }
        clash = v
        break
      case '--max-seconds':
        n = intFlag(a, v, 1, 600)
        if (typeof n === 'string') return { kind: 'error', message: n }
        maxSeconds = n
        break
      case '--lookups':
        n = intFlag(a, v, 1, 1_000_000)
        if (typeof n === 'string') return { kind: 'error', message: n }
        lookups = n
        break
      case '--gai-lookups':
        n = intFlag(a, v, 1, 1_000_000)
        if (typeof n === 'string') return { kind: 'error', message: n }
        gaiLookups = n
        break
      case '--memory':
        n = intFlag(a, v, 512, 65536)
        if (typeof n === 'string') return { kind: 'error', message: n }
        opts.memoryMb = n
        break
      case '--smp':
        n = intFlag(a, v, 2, 64)
        if (typeof n === 'string') return { kind: 'error', message: n }
        opts.smp = n
        break
      case '--timeout-min':
        n = intFlag(a, v, 1, 24 * 60)
        if (typeof n === 'string') return { kind: 'error', message: n }
        opts.timeoutMin = n
        break
      default:
        return { kind: 'error', message: `unknown flag ${a}` }
    }
    i++
  }
  if (opts.probe === 'only' && (services !== undefined || rows !== undefined || quick))
    return { kind: 'error', message: '--probe-only runs no race lab: drop --rows, --services and --quick' }
  // A probe-only run must not overwrite the full run's report.
  if (opts.probe === 'only' && !outGiven) opts.out = opts.out.replace(/(\.json)?$/, '-probe.json')
  if (services !== undefined && rows !== undefined)
    return { kind: 'error', message: '--rows picks kernel rows a-h; --services runs the kube-proxy mode rows instead' }
  if (clash !== undefined && services === undefined)
    return { kind: 'error', message: '--clash applies to --services rows (rows a-h set their own handling)' }
  // The mode rows come from the race matrix; the kernel matrix stretches readiness waits 6x by itself.
  const matrix = services === undefined ? ['--matrix', 'kernels'] : ['--matrix', 'race', '--time-scale', '6']
  opts.raceArgs = [
    ...matrix,
    '--max-seconds',
    String(maxSeconds),
    '--lookups',
    String(lookups),
    '--gai-lookups',
    String(gaiLookups),
    ...(quick ? ['--quick'] : []),
    ...(rows ? ['--rows', rows] : []),
    ...(services ? ['--services', services] : []),
    ...(clash ? ['--clash', clash] : []),
  ]
  return { kind: 'run', opts }
}
