// The arm64 guest's pure parts: module order from the modules' own dependencies, the init script it
// boots into, QEMU's argv, and the probe client's file closure (what the guest copies next to the image).
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import {
  GUEST_FILES,
  GUEST_NET,
  IMAGE_TAG,
  RESULTS_TAG,
  daemonArgs,
  guestInitScript,
  guestModuleName,
  insmodOrder,
  probeArgs,
  qemuArgv,
  type GuestPlan,
} from '../../harness/arm64-guest/plan.js'
import { probeClientFiles } from '../../harness/arm64-guest/run.js'
import { parseProbeArgs } from '../../harness/probe-args.js'
import { loadConfig } from '../../src/config/load.js'

t.test('insmodOrder: modprobe --show-depends of each module, each file once, dependencies first', async t => {
  const nftCompat = [
    'insmod /m/crypto/crc32c_generic.ko.xz ',
    'insmod /m/lib/libcrc32c.ko.xz ',
    'insmod /m/net/netfilter/nfnetlink.ko.xz ',
    'insmod /m/net/netfilter/x_tables.ko.xz ',
    'insmod /m/net/netfilter/nf_tables.ko.xz ',
    'insmod /m/net/netfilter/nft_compat.ko.xz ',
  ].join('\n')
  const nfqueue = 'insmod /m/net/netfilter/nfnetlink.ko.xz \ninsmod /m/net/netfilter/nfnetlink_queue.ko.xz \n'
  const ipv6 = 'builtin ipv6\n'
  const order = insmodOrder([nftCompat, nfqueue, ipv6])
  t.same(order.map(guestModuleName), [
    'crc32c_generic',
    'libcrc32c',
    'nfnetlink',
    'x_tables',
    'nf_tables',
    'nft_compat',
    'nfnetlink_queue',
  ])
  t.equal(guestModuleName('/m/x/9pnet_virtio.ko'), '9pnet_virtio', 'uncompressed too')
})

const plan: GuestPlan = {
  modules: ['nfnetlink', 'nfnetlink_queue'],
  entrypoint: ['/usr/local/bin/node', '--jitless', '/app/dist/cli.js'],
  env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'NODE_ENV=production'],
  holdMs: 200,
  count: 10,
}

t.test('the guest init is valid sh, runs only as PID 1, and runs the product only from the image', async t => {
  const script = guestInitScript(plan)
  const dir = mkdtempSync(join(tmpdir(), 'dnss-arm64-init-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'init')
  writeFileSync(file, script)
  t.doesNotThrow(() => execFileSync('sh', ['-n', file]), 'sh -n accepts it')
  let out = ''
  try {
    execFileSync('sh', [file], { stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (e) {
    out = String((e as { stderr?: Buffer }).stderr)
  }
  t.match(out, /runs only as PID 1/, 'run on a host by mistake, it stops before doing anything')
  t.match(script, /for m in nfnetlink nfnetlink_queue; do insmod \/modules\/\$m\.ko/, 'modules in the given order')
  t.match(script, new RegExp(`mount -t 9p .*${IMAGE_TAG} /image`), 'the image from its 9p share')
  t.match(script, /,ro \S+ \/image/, '... read-only')
  const daemonLine = script.split('\n').find(l => l.includes('/app/dist/cli.js'))
  t.match(
    daemonLine,
    /^chroot \/image \/usr\/bin\/env -i PATH=\S+ NODE_ENV=production \/usr\/local\/bin\/node --jitless \/app\/dist\/cli\.js run /,
    "the daemon: the image's entrypoint, in the image's root, with the image's environment only",
  )
  for (const f of Object.values(GUEST_FILES)) t.match(script, `/results/${f}`, `writes ${f}`)
  t.match(script, /kill -TERM \$daemon\nwait \$daemon/, 'stops the daemon with SIGTERM and waits for it')
  t.match(script, /poweroff -f/, 'powers off at the end')
})

t.test('the daemon and probe arguments parse with the product and the probe', async t => {
  const { config, rules } = loadConfig(daemonArgs(plan).slice(1), { env: {} })
  t.equal(config.mode, 'pair', "the DaemonSet's mode")
  t.equal(config.pairWindowMs, plan.holdMs)
  t.same(
    rules.filter(r => r.qtype === 28).map(r => r.holdMs),
    [plan.holdMs],
    "AAAA held for the plan's hold",
  )
  const parsed = (['A', 'AAAA', 'A,AAAA', 'pair'] as const).map(k => parseProbeArgs(probeArgs(plan, k)))
  t.same(
    parsed.map(p => p.server),
    parsed.map(() => GUEST_NET.server),
  )
  t.same(
    parsed.map(p => [p.types, p.pair === true]),
    [
      [['A'], false],
      [['AAAA'], false],
      [['A', 'AAAA'], false],
      [['A', 'AAAA'], true],
    ],
    'A alone, AAAA alone, both, and pairs (A then AAAA on one socket)',
  )
  for (const p of parsed) {
    t.equal(p.count, plan.count)
    t.equal(p.freshSocket, true, 'a fresh socket per lookup, as applications')
    t.ok(p.timeoutMs >= 10 * plan.holdMs, `a probe timeout (${p.timeoutMs} ms) well above the hold`)
  }
})

t.test('qemu argv: arm64 virt machine, the kernel and initramfs, the image read-only, results writable', async t => {
  const argv = qemuArgv({
    qemu: 'qemu-system-aarch64',
    kernel: '/k/vmlinuz',
    initrd: '/r/initrd.cpio',
    rootfs: '/x/rootfs',
    runDir: '/r/results',
    smp: 2,
    memoryMb: 1536,
  })
  const after = (flag: string): string[] => argv.flatMap((a, i) => (a === flag ? [argv[i + 1]!] : []))
  t.same(after('-machine'), ['virt'])
  t.same(after('-kernel'), ['/k/vmlinuz'])
  t.same(after('-initrd'), ['/r/initrd.cpio'])
  t.ok(argv.includes('-no-reboot'), 'a panicking guest ends QEMU')
  t.match(after('-append')[0], /rdinit=\/init/)
  const fsdev = after('-fsdev')
  t.match(
    fsdev.find(f => f.includes('path=/x/rootfs')),
    /readonly=on/,
    'the image share is read-only',
  )
  t.notMatch(
    fsdev.find(f => f.includes('path=/r/results')),
    /readonly/,
    'the results share is writable',
  )
  t.same(
    after('-device').map(d => /mount_tag=(\w+)/.exec(d)?.[1]),
    [IMAGE_TAG, RESULTS_TAG],
  )
})

t.test('the probe client files: probe.js and every module it imports, nothing from outside the harness', async t => {
  const files = probeClientFiles()
  t.equal(basename(files[0]!), 'probe.js')
  t.ok(files.length >= 3, `${files.map(f => basename(f)).join(', ')}`)
  for (const f of files) {
    t.match(f, /\/dist-harness\/harness\/[^/]+\.js$/, `${basename(f)} is a harness module`)
    const imports = [...readFileSync(f, 'utf8').matchAll(/from '([^']+)'/g)].map(m => m[1]!)
    t.same(
      imports.filter(i => !i.startsWith('./') && !i.startsWith('node:') && i !== 'dns-packet'),
      [],
      `${basename(f)} imports only harness modules, node built-ins and dns-packet (in the image)`,
    )
  }
})
