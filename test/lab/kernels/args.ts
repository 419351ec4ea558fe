import t from 'tap'
import { parseKernelLabArgs } from '../../../lab/kernels/args.js'

const D = { kernel: '/cache/bzImage', out: '/repo/bench/results/kernel-lab.json' }

t.test('defaults: the cached kernel, 2 vCPUs, the kernel matrix sized for TCG', async t => {
  const p = parseKernelLabArgs([], D)
  if (p.kind !== 'run') throw new Error(p.kind)
  t.equal(p.opts.kernel, '/cache/bzImage')
  t.equal(p.opts.smp, 2)
  t.equal(p.opts.memoryMb, 2048)
  t.equal(p.opts.out, D.out)
  t.same(p.opts.raceArgs, ['--matrix', 'kernels', '--max-seconds', '12', '--lookups', '1500', '--gai-lookups', '300'])
  t.same(p.opts.append, [])
  t.equal(p.opts.keep, false)
})

/** Flags the kernel lab passes through to the guest's race lab unchanged. */
const RACE_FLAGS = ['--max-seconds', '5', '--lookups', '200', '--gai-lookups', '50']

t.test('flags reach the options and the guest race-lab argv', async t => {
  const p = parseKernelLabArgs(
    [
      '--kernel',
      '/k/bzImage-5.4',
      '--quick',
      '--rows',
      'a,d,g',
      ...RACE_FLAGS,
      '--smp',
      '4',
      '--memory',
      '1024',
      '--timeout-min',
      '20',
      '--append',
      'nf_conntrack.lab_pre56_clash=1',
      '--keep',
      '--qemu',
      '/opt/qemu',
      '--out',
      'x.json',
    ],
    D,
  )
  if (p.kind !== 'run') throw new Error(JSON.stringify(p))
  t.equal(p.opts.kernel, '/k/bzImage-5.4')
  t.equal(p.opts.smp, 4)
  t.equal(p.opts.memoryMb, 1024)
  t.equal(p.opts.timeoutMin, 20)
  t.same(p.opts.append, ['nf_conntrack.lab_pre56_clash=1'])
  t.equal(p.opts.keep, true)
  t.equal(p.opts.qemu, '/opt/qemu')
  t.equal(p.opts.out, 'x.json')
  t.same(p.opts.raceArgs, ['--matrix', 'kernels', ...RACE_FLAGS, '--quick', '--rows', 'a,d,g'])
})

t.test('bad flags: one message naming the flag', async t => {
  const err = (argv: string[]): string => {
    const p = parseKernelLabArgs(argv, D)
    return p.kind === 'error' ? p.message : `no error (${p.kind})`
  }
  t.match(err(['--smp', '1']), /--smp needs an integer 2\.\.64/, 'the split client needs two CPUs')
  t.match(err(['--memory', '12x']), /--memory needs an integer/)
  t.match(err(['--lookups', '-3']), /--lookups needs an integer/)
  t.match(err(['--kernel']), /--kernel needs a bzImage path/)
  t.match(err(['--kernel', '--quick']), /--kernel needs/, 'a flag is not a path')
  t.match(err(['--append', 'init=/bin/sh']), /--append/, 'the lab owns init=')
  t.match(err(['--append', 'a b']), /--append/, 'one word only')
  t.match(err(['--append', "x='1'"]), /--append/, 'no quotes')
  t.match(err(['--frobnicate']), /unknown flag --frobnicate/)
  t.match(err(['--rows', 'a,z']), /--rows needs row ids a-h/)
  t.equal(parseKernelLabArgs(['--quick', '-h'], D).kind, 'help')
})

t.test('--services: the guest runs the kube-proxy mode rows instead of rows a-f, waits stretched', async t => {
  const p = parseKernelLabArgs(['--services', 'ipvs', '--clash', 'pre56', '--quick'], D)
  if (p.kind !== 'run') throw new Error(JSON.stringify(p))
  t.same(p.opts.raceArgs, [
    '--matrix',
    'race',
    '--time-scale',
    '6',
    '--max-seconds',
    '12',
    '--lookups',
    '1500',
    '--gai-lookups',
    '300',
    '--quick',
    '--services',
    'ipvs',
    '--clash',
    'pre56',
  ])
  const err = (argv: string[]): string => {
    const q = parseKernelLabArgs(argv, D)
    return q.kind === 'error' ? q.message : `no error (${q.kind})`
  }
  t.match(err(['--services', 'ipvs,bogus']), /--services takes iptables, nftables, nftables-map, ipvs/)
  t.match(err(['--services', 'ipvs', '--rows', 'a']), /--rows picks kernel rows/)
  t.match(err(['--clash', 'pre56']), /--clash applies to --services rows/)
  t.match(err(['--services', 'ipvs', '--clash', 'old']), /--clash needs pre56 or stock/)
})

t.test('probe: with the race lab by default, --probe-only (own report file), --no-probe', async t => {
  const get = (argv: string[]): { probe: string; out: string } | string => {
    const p = parseKernelLabArgs(argv, D)
    return p.kind === 'run' ? { probe: p.opts.probe, out: p.opts.out } : p.kind === 'error' ? p.message : p.kind
  }
  t.same(get([]), { probe: 'with', out: D.out })
  t.same(get(['--probe-only']), { probe: 'only', out: '/repo/bench/results/kernel-lab-probe.json' })
  t.same(get(['--probe-only', '--out', 'p.json']), { probe: 'only', out: 'p.json' })
  t.same(get(['--no-probe']), { probe: 'off', out: D.out })
  t.match(get(['--probe-only', '--no-probe']), /exclude each other/)
  t.match(get(['--probe-only', '--services', 'ipvs']), /--probe-only runs no race lab/)
})
