// Boots the cached kernel-lab kernel (lab/kernels/build-kernel.sh) in QEMU with the generated init, and
// runs a probe in the guest instead of the whole race lab (minutes, not an hour): the 9p root, the tmpfs
// overlay, the results share, the lab switch at run time, and the netfilter/tc features the rows use.
// Then dns-shaper's own `check --probe` in the guest: it must say "drops" with the lab switch on and
// "resolves" with it off (the lab's expected-sign self-check, as `npm run lab:kernels` prints it).
// Skips, with the reason, where there is no cached bzImage (CI never builds it), no QEMU or no root.
import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { bootGuest, defaultKernel, makeRunDir, removeRunDir } from '../../lab/kernels/run.js'
import { GUEST_FILES } from '../../lab/kernels/guest.js'
import { formatChecks, probeSigns } from '../../lab/kernels/results.js'
import { skipFileUnless } from '../../harness/skip.js'

const kernel = defaultKernel()
skipFileUnless({ root: 'QEMU exports the root file system to the guest', tools: ['qemu-system-x86_64'] })
if (!existsSync(kernel))
  skipFileUnless({ files: [{ path: kernel, make: 'bash lab/kernels/build-kernel.sh (20-30 min)' }] })

// Two boots under TCG take minutes: the runner's per-file timeout for integration tests is 20 min
// (scripts/test-summary.mjs; a file's own t.setTimeout can only shorten it), this file's is 35.
t.setTimeout(35 * 60_000)

t.test('the lab kernel boots on the 9p root and has what the rows need', { timeout: 600_000 }, async t => {
  const runDir = makeRunDir()
  const repo = join(import.meta.dirname, '../..')
  const vm = await bootGuest(
    {
      repo,
      node: process.execPath,
      raceCli: join(repo, 'test/fixtures/kernel-lab/probe.mjs'),
      raceArgs: [],
      runDir,
      kernel,
      memoryMb: 1024,
      smp: 2,
      append: ['nf_conntrack.lab_pre56_clash=1'],
      qemu: 'qemu-system-x86_64',
    },
    { timeoutMin: 8 },
  )
  t.teardown(() => removeRunDir(runDir))
  const log = readFileSync(vm.consoleLog, 'utf8')
  t.equal(vm.timedOut, false, 'the guest powers itself off')
  t.equal(vm.results.problem, null, log.slice(-3000))
  t.match(vm.results.info['kernel'], /^5\.10\./)
  t.equal(vm.results.info['lab_pre56_clash'], 'Y', 'the boot parameter took')
  t.equal(vm.results.info['cpus'], '2')
  t.equal(vm.results.rc, 0)
  const j = JSON.parse(readFileSync(join(runDir, GUEST_FILES.report), 'utf8')) as {
    probe: { switch: string[]; commands: Record<string, string> }
  }
  t.same(j.probe.switch, ['Y', 'N'], 'the switch flips at run time through sysfs')
  for (const [name, result] of Object.entries(j.probe.commands)) t.equal(result, 'ok', name)
})

t.test(
  'check --probe in the 5.10 guest: drops with the lab switch on, resolves with it off',
  { timeout: 1_500_000 },
  async t => {
    const repo = join(import.meta.dirname, '../..')
    const cli = join(repo, 'dist/cli.js')
    if (!existsSync(cli)) {
      t.plan(0, `${cli} is missing: npm run build first`)
      return
    }
    const runDir = makeRunDir()
    t.teardown(() => removeRunDir(runDir))
    const vm = await bootGuest(
      {
        repo,
        node: process.execPath,
        raceCli: null,
        probeCli: cli,
        raceArgs: [],
        runDir,
        kernel,
        memoryMb: 2048, // as lab:kernels: its 1 GiB runs provoked 5 clashes where 2 GiB ones gave 76-80
        smp: 2,
        append: [],
        qemu: 'qemu-system-x86_64',
      },
      { timeoutMin: 22 },
    )
    const log = readFileSync(vm.consoleLog, 'utf8')
    t.equal(vm.timedOut, false, 'the guest powers itself off')
    t.equal(vm.results.problem, null, log.slice(-3000))
    t.same(
      vm.results.probes.map(p => p.handling),
      ['pre56', 'stock'],
      'the probe ran with the switch on, then off',
    )
    const checks = probeSigns(vm.results.probes, true)
    t.same(
      checks.map(c => c.status),
      ['PASS', 'PASS'],
      `${formatChecks(checks)}\n${vm.results.probes
        .map(p => p.stderr)
        .join('\n')
        .slice(-2000)}`,
    )
  },
)
