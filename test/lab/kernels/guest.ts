import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  guestInitScript,
  kernelCmdline,
  qemuArgv,
  shQuote,
  GUEST_RESULTS_DIR,
  REPO_TAG,
  RESULTS_TAG,
} from '../../../lab/kernels/guest.js'
import type { GuestPlan } from '../../../lab/kernels/guest.js'

const plan: GuestPlan = {
  repo: '/work/wt/my repo',
  node: '/usr/bin/node',
  raceCli: '/work/wt/my repo/dist-harness/lab/race/cli.js',
  raceArgs: ['--matrix', 'kernels', '--quick'],
  runDir: '/var/cache/dns-shaper-lab/runs/run-abc',
  kernel: '/var/cache/dns-shaper-lab/bzImage',
  memoryMb: 2048,
  smp: 2,
  append: ['nf_conntrack.lab_pre56_clash=1'],
  qemu: 'qemu-system-x86_64',
}

const after = (argv: string[], flag: string): string[] =>
  argv.flatMap((a, i) => (a === flag && argv[i + 1] !== undefined ? [argv[i + 1]!] : []))

t.test('qemu: TCG multi-threaded, 2 vCPUs, no disk, read-only 9p root, writable results share', async t => {
  const a = qemuArgv(plan)
  t.equal(a[0], 'qemu-system-x86_64')
  t.same(after(a, '-accel'), ['tcg,thread=multi'], 'no KVM on these machines')
  t.same(after(a, '-smp'), ['2'])
  t.same(after(a, '-m'), ['2048'])
  t.same(after(a, '-kernel'), [plan.kernel])
  t.ok(a.includes('-no-reboot'), 'a guest panic ends QEMU instead of looping')
  t.ok(a.includes('-nodefaults'), 'no NIC, no VGA: nothing the lab does not need')
  t.notOk(
    a.some(x => /-drive|-hda|kvm/.test(x)),
    'no disk image, no KVM',
  )
  const fsdevs = after(a, '-fsdev')
  t.equal(fsdevs.length, 3)
  t.match(fsdevs[0], /^local,id=rootfs,path=\/,.*readonly=on/, 'the host root, read-only')
  t.equal(fsdevs[1], `local,id=results,path=${plan.runDir},security_model=none`, 'only the run dir is writable')
  t.equal(fsdevs[2], `local,id=repo,path=${plan.repo},security_model=none,readonly=on`, 'the checkout, read-only')
  t.same(after(a, '-device'), [
    'virtio-9p-pci,fsdev=rootfs,mount_tag=/dev/root',
    `virtio-9p-pci,fsdev=results,mount_tag=${RESULTS_TAG}`,
    `virtio-9p-pci,fsdev=repo,mount_tag=${REPO_TAG}`,
  ])
  t.same(after(a, '-append'), [kernelCmdline(plan)])
})

t.test('kernel command line: 9p root, generated init, serial console, extra words last', async t => {
  const c = kernelCmdline(plan).split(' ')
  t.ok(c.includes('console=ttyS0'))
  t.ok(c.includes('root=/dev/root') && c.includes('rootfstype=9p') && c.includes('ro'))
  t.ok(c.some(w => /^rootflags=trans=virtio,version=9p2000\.L/.test(w)))
  t.ok(c.includes(`init=${plan.runDir}/init`))
  t.ok(c.includes('panic=-1'))
  t.equal(c[c.length - 1], 'nf_conntrack.lab_pre56_clash=1')
})

t.test('shell quoting survives spaces and quotes', async t => {
  t.equal(shQuote('/usr/bin/node'), '/usr/bin/node')
  t.equal(shQuote('/a b'), `'/a b'`)
  t.equal(shQuote(`it's`), `'it'\\''s'`)
  const out = execFileSync('sh', ['-c', `printf %s ${shQuote(`a 'b' "c" $d`)}`], { encoding: 'utf8' })
  t.equal(out, `a 'b' "c" $d`)
})

t.test('generated init: parses, mounts what the lab writes to, runs the lab, powers off', async t => {
  const s = guestInitScript(plan)
  t.match(s, /^#!\/bin\/sh\n/)
  const dir = mkdtempSync(join(tmpdir(), 'dnss-kinit-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'init'), s)
  execFileSync('sh', ['-n', join(dir, 'init')]) // syntax only: throws on a parse error
  t.match(s, /mount -t proc proc \/proc/)
  t.match(s, /mount -t sysfs sysfs \/sys/)
  t.match(s, /mount -t devtmpfs devtmpfs \/dev/)
  t.match(s, /mount -t overlay overlay -o lowerdir=\/,upperdir=\/mnt\/upper,workdir=\/mnt\/work \/mnt\/root/)
  t.match(s, /tmpfs \/tmp\n/)
  t.match(s, /tmpfs \/run\n/)
  t.match(s, new RegExp(`mount -t 9p -o trans=virtio[^ ]* ${RESULTS_TAG} ${GUEST_RESULTS_DIR}`))
  t.match(s, /cp -a \/etc\/\. \/mnt\/etc\//, 'fallback without overlayfs: a tmpfs copy of /etc (for /etc/netns)')
  t.match(
    s,
    /'\/work\/wt\/my repo\/dist-harness\/lab\/race\/cli.js' --matrix kernels --quick --out \/run\/dnss-results\/race.json/,
  )
  t.match(s, /cd '\/work\/wt\/my repo'/)
  t.match(
    s,
    new RegExp(
      `if \\[ ! -d '/work/wt/my repo' \\]; then\n.*\n.*mount -t 9p -o [^ ]*,ro ${REPO_TAG} '/work/wt/my repo'`,
    ),
    'a checkout hidden by the fresh /tmp or /run gets its own read-only share',
  )
  t.match(s, /echo o >\/proc\/sysrq-trigger/)
  t.match(s, /lab_pre56_clash=\$\(cat \/sys\/module\/nf_conntrack\/parameters\/lab_pre56_clash\)/)
})

t.test('generated init refuses to run unless it is PID 1 (run on a host by mistake, it does nothing)', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'dnss-kinit-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'init')
  writeFileSync(file, guestInitScript({ ...plan, runDir: dir }))
  let code = 0
  let stderr = ''
  try {
    execFileSync('sh', [file], { stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (e: unknown) {
    const err = e as { status?: number; stderr?: Buffer }
    code = err.status ?? -1
    stderr = String(err.stderr ?? '')
  }
  t.equal(code, 1)
  t.match(stderr, /runs only as PID 1/)
})

t.test('generated init: check --probe first, switch on then off and back to its boot value', async t => {
  const s = guestInitScript({ ...plan, probeCli: '/work/wt/my repo/dist/cli.js' })
  const dir = mkdtempSync(join(tmpdir(), 'dnss-kinit-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'init'), s)
  execFileSync('sh', ['-n', join(dir, 'init')])
  t.match(
    s,
    /\/usr\/bin\/node '\/work\/wt\/my repo\/dist\/cli.js' check --probe --json >\/run\/dnss-results\/probe-\$1\.json 2>\/run\/dnss-results\/probe-\$1\.err/,
  )
  const sw = '/sys/module/nf_conntrack/parameters/lab_pre56_clash'
  const on = s.indexOf(`echo 1 >${sw} && run_probe pre56`)
  const off = s.indexOf(`echo 0 >${sw} && run_probe stock`)
  const race = s.indexOf('race/cli.js')
  t.ok(on > 0 && off > on && race > off, 'pre-5.6, then stock, then the race lab')
  t.match(s, /if \[ "\$boot" = Y \]; then echo 1 >\S+; else echo 0 >\S+; fi/, 'the boot value is put back')
  t.match(s, /run_probe asis/, 'a kernel without the switch gets one probe as it is')
  t.notMatch(guestInitScript(plan), /check --probe/, 'no probe unless asked')
  const only = guestInitScript({ ...plan, raceCli: null, probeCli: '/x/cli.js' })
  t.notMatch(only, /race\/cli/, 'probe only: no race lab')
  t.match(only, /\nrc=0\n/)
  t.notMatch(only, /race lab exited/, 'no race-lab exit line when none ran')
  t.match(guestInitScript(plan), /\nrc=\$\?\nsay "race lab exited \$rc"\n/)
})
