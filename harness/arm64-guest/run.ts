// Boots the arm64 guest (plan.ts) on the arm64 image's exported root filesystem: fetches Debian's arm64
// kernel and busybox-static once into a cache outside the checkout (a private apt config; the system's
// sources are never read or written), packs an initramfs with busybox, the modules the guest needs and
// the probe client, starts qemu-system-aarch64 bounded in time, and reads back what the guest wrote.
import { execFileSync } from 'node:child_process'
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { builtPath } from '../paths.js'
import { runQemu } from '../qemu.js'
import {
  GUEST_FILES,
  GUEST_LOG_PREFIX,
  GUEST_MODULES,
  RESPONDER_JS,
  guestInitScript,
  guestModuleName,
  insmodOrder,
  qemuArgv,
  type GuestPlan,
} from './plan.js'

export const QEMU_AARCH64 = 'qemu-system-aarch64'
/** Debian suite the kernel and busybox come from: the image's own base. */
const SUITE = 'trixie'

export function arm64CacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env['DNS_SHAPER_ARM64_CACHE'] || '/var/cache/dns-shaper-arm64-guest'
}

/** Why the guest cannot run here, or undefined when it can (qemu-system-aarch64, xz, cpio, kmod, apt-get). */
export function arm64GuestUnavailable(): string | undefined {
  for (const tool of [QEMU_AARCH64, 'xz', 'cpio', 'depmod', 'modprobe', 'apt-get', 'dpkg-deb']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' })
    } catch {
      return `${tool} missing (scripts/system-deps.sh installs qemu-system-arm, cpio, xz-utils and kmod)`
    }
  }
  return undefined
}

/** Options for a private apt that reads only `dir` (its own sources, lists and cache) for arm64. */
export function privateApt(dir: string): string[] {
  return [
    '-o',
    `Dir::Etc::sourcelist=${join(dir, 'sources.list')}`,
    '-o',
    'Dir::Etc::sourceparts=-',
    '-o',
    `Dir::Etc::preferencesparts=${join(dir, 'preferences.d')}`,
    '-o',
    `Dir::State::Lists=${join(dir, 'lists')}`,
    '-o',
    `Dir::Cache=${join(dir, 'cache')}`,
    '-o',
    'APT::Sandbox::User=root',
    '-o',
    'APT::Architecture=arm64',
    '-o',
    'APT::Architectures=arm64',
  ]
}

export interface Arm64Assets {
  /** The kernel image (vmlinuz), unpacked from Debian's package. */
  kernel: string
  /** The tree `modprobe -d` reads (it holds lib/modules/VERSION, indexed by depmod) and the version. */
  modulesBase: string
  kernelVersion: string
  busybox: string
}

/** Debian's arm64 kernel and busybox-static, downloaded and unpacked once into the cache. */
export function fetchArm64Assets(cache = arm64CacheDir()): Arm64Assets {
  const unpacked = join(cache, 'unpacked')
  const found = (): Arm64Assets | undefined => {
    if (!existsSync(join(unpacked, 'done'))) return undefined
    const boot = join(unpacked, 'kernel/boot')
    const vmlinuz = readdirSync(boot).find(f => f.startsWith('vmlinuz-'))
    const base = join(unpacked, 'kernel/usr')
    const version = existsSync(join(base, 'lib/modules')) ? readdirSync(join(base, 'lib/modules'))[0] : undefined
    if (!vmlinuz || !version || !existsSync(join(base, 'lib/modules', version, 'modules.dep'))) return undefined
    return {
      kernel: join(boot, vmlinuz),
      modulesBase: base,
      kernelVersion: version,
      busybox: join(unpacked, 'busybox/usr/bin/busybox'),
    }
  }
  const have = found()
  if (have) return have
  const apt = join(cache, 'apt')
  for (const d of ['lists/partial', 'cache/archives/partial', 'preferences.d'])
    mkdirSync(join(apt, d), { recursive: true })
  writeFileSync(
    join(apt, 'sources.list'),
    `deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian ${SUITE} main\n`,
  )
  const opts = privateApt(apt)
  const run = (cmd: string, args: string[], cwd?: string): string =>
    execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 })
  run('apt-get', [...opts, '-qq', 'update'])
  // linux-image-arm64 is a metapackage: the kernel is the package it depends on.
  const depends = /^Depends: (linux-image-[^\s,]+)/m.exec(run('apt-cache', [...opts, 'show', 'linux-image-arm64']))?.[1]
  if (!depends) throw new Error(`apt-cache show linux-image-arm64 (${SUITE}, arm64) names no kernel package`)
  const debs = join(cache, 'debs')
  rmSync(debs, { recursive: true, force: true })
  mkdirSync(debs, { recursive: true })
  run('apt-get', [...opts, '-qq', 'download', depends, 'busybox-static'], debs)
  rmSync(unpacked, { recursive: true, force: true })
  for (const f of readdirSync(debs)) {
    const into = join(unpacked, f.startsWith('busybox') ? 'busybox' : 'kernel')
    mkdirSync(into, { recursive: true })
    run('dpkg-deb', ['-x', join(debs, f), into])
  }
  rmSync(debs, { recursive: true, force: true })
  // The package ships no module indexes (its postinst makes them): the host's depmod reads arm64 modules too.
  const base = join(unpacked, 'kernel/usr')
  for (const version of existsSync(join(base, 'lib/modules')) ? readdirSync(join(base, 'lib/modules')) : [])
    run('depmod', ['-b', base, version])
  writeFileSync(join(unpacked, 'done'), `${depends}\n`)
  const got = found()
  if (!got) throw new Error(`unpacked ${depends} and busybox-static into ${unpacked}, but found no vmlinuz or modules`)
  return got
}

/**
 * The compiled probe client and every harness module it imports (relative imports, followed), so the
 * guest runs the same client as the tests, on the image's node, with the image's dns-packet.
 */
export function probeClientFiles(entry = builtPath('harness/probe.ts')): string[] {
  const files: string[] = []
  const visit = (file: string): void => {
    if (files.includes(file)) return
    if (!existsSync(file)) throw new Error(`${file} missing: run \`npm run harness:build\``)
    files.push(file)
    for (const m of readFileSync(file, 'utf8').matchAll(/^(?:import|export)[^'"]*from '(\.\/[^']+)'/gm))
      visit(join(dirname(file), m[1]!))
  }
  visit(entry)
  return files
}

/** Packs the initramfs: busybox as /bin/busybox, /init, the modules (decompressed: busybox's insmod does not), /guest. */
export function packInitramfs(assets: Arm64Assets, plan: Omit<GuestPlan, 'modules'>, out: string): GuestPlan {
  const files = insmodOrder(
    GUEST_MODULES.map(m =>
      execFileSync('modprobe', ['-d', assets.modulesBase, '-S', assets.kernelVersion, '--show-depends', m], {
        encoding: 'utf8',
      }),
    ),
  )
  const full: GuestPlan = { ...plan, modules: files.map(guestModuleName) }
  const root = mkdtempSync(join(tmpdir(), 'dnss-arm64-initrd-'))
  try {
    for (const d of ['bin', 'modules', 'guest']) mkdirSync(join(root, d))
    copyFileSync(assets.busybox, join(root, 'bin/busybox'))
    chmodSync(join(root, 'bin/busybox'), 0o755)
    writeFileSync(join(root, 'init'), guestInitScript(full), { mode: 0o755 })
    for (const file of files) {
      const ko = join(root, 'modules', `${guestModuleName(file)}.ko`)
      if (file.endsWith('.xz')) writeFileSync(ko, execFileSync('xz', ['-dc', file], { maxBuffer: 64 << 20 }))
      else if (file.endsWith('.ko')) copyFileSync(file, ko)
      else throw new Error(`${file}: only .ko and .ko.xz modules are handled`)
    }
    for (const f of probeClientFiles()) copyFileSync(f, join(root, 'guest', f.slice(f.lastIndexOf('/') + 1)))
    writeFileSync(join(root, 'guest/responder.js'), RESPONDER_JS)
    writeFileSync(join(root, 'guest/package.json'), '{ "type": "module" }\n')
    // newc: the format the kernel unpacks; uncompressed, so nothing more is needed on either side.
    const list = execFileSync('find', ['.', '-mindepth', '1'], { cwd: root, encoding: 'utf8' })
    writeFileSync(
      out,
      execFileSync('cpio', ['-o', '-H', 'newc', '--quiet', '--owner=0:0'], {
        cwd: root,
        input: list,
        maxBuffer: 256 << 20,
      }),
    )
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
  return full
}

export interface Arm64GuestRun {
  /** The guest's result files (GUEST_FILES keys) that exist, read as text. */
  files: Partial<Record<keyof typeof GUEST_FILES | 'fail', string>>
  qemuCode: number | null
  timedOut: boolean
  elapsedS: number
  /** The guest's own console lines (GUEST_LOG_PREFIX), and the tail of the console. */
  guestLines: string[]
  consoleTail: string
}

/** Boots the guest on `rootfs` and returns what it wrote; removes its temporary files. */
export async function runArm64Guest(
  rootfs: string,
  plan: Omit<GuestPlan, 'modules'>,
  opts: { timeoutMs: number; smp?: number; memoryMb?: number; onLine?: (line: string) => void },
): Promise<Arm64GuestRun> {
  const assets = fetchArm64Assets()
  const runDir = mkdtempSync(join(tmpdir(), 'dnss-arm64-guest-'))
  try {
    const initrd = join(runDir, 'initrd.cpio')
    packInitramfs(assets, plan, initrd)
    const results = join(runDir, 'results')
    mkdirSync(results)
    const argv = qemuArgv({
      qemu: QEMU_AARCH64,
      kernel: assets.kernel,
      initrd,
      rootfs,
      runDir: results,
      smp: opts.smp ?? 2,
      memoryMb: opts.memoryMb ?? 1536,
    })
    let console = ''
    const guestLines: string[] = []
    const exit = await runQemu(argv, {
      timeoutMs: opts.timeoutMs,
      packageName: 'qemu-system-arm',
      onData: d => (console = (console + d.toString('utf8')).slice(-16_384)),
      onLine: l => {
        if (l.startsWith(GUEST_LOG_PREFIX)) guestLines.push(l)
        opts.onLine?.(l)
      },
    })
    const files: Arm64GuestRun['files'] = {}
    for (const [k, name] of [...Object.entries(GUEST_FILES), ['fail', 'fail']] as [
      keyof Arm64GuestRun['files'],
      string,
    ][]) {
      const p = join(results, name)
      if (existsSync(p)) files[k] = readFileSync(p, 'utf8')
    }
    return {
      files,
      qemuCode: exit.code,
      timedOut: exit.timedOut,
      elapsedS: exit.elapsedS,
      guestLines,
      consoleTail: console.slice(-4096),
    }
  } finally {
    rmSync(runDir, { recursive: true, force: true })
  }
}
