// Kernel-lab guest set-up: the generated PID-1 init script, the kernel command line and the QEMU argv.
// Pure text and argv builders (no I/O), so they can be read and unit-tested; run.ts writes and starts them.

import { QEMU_HEADLESS } from '../../harness/qemu.js'

/** Mount tag of the writable results share (a run directory on the host). */
export const RESULTS_TAG = 'dnssresults'
/** 9p tag of the checkout, read-only: mounted in the guest only where its fresh /tmp or /run hides it. */
export const REPO_TAG = 'dnssrepo'
/** Where the guest mounts that share. */
export const GUEST_RESULTS_DIR = '/run/dnss-results'
/** Files the guest writes into the results share. */
export const GUEST_FILES = { report: 'race.json', rc: 'guest-rc', info: 'guest-info' } as const
/**
 * Clash handling each `check --probe` run in the guest had: pre-5.6 and stock through the lab switch,
 * or the kernel as it is where it has no switch. The guest writes probe-<handling>.json/.err/.rc.
 */
export type ProbeHandling = 'pre56' | 'stock' | 'asis'
export const PROBE_HANDLINGS: readonly ProbeHandling[] = ['pre56', 'stock', 'asis']
export const probeFile = (h: ProbeHandling, ext: 'json' | 'err' | 'rc'): string => `probe-${h}.${ext}`
const SWITCH = '/sys/module/nf_conntrack/parameters/lab_pre56_clash'
/** Marks the guest's own console lines, so the host can tell them from kernel messages. */
export const GUEST_LOG_PREFIX = 'dnss-guest:'

export interface GuestPlan {
  /** The checkout (seen at the same path in the guest through the 9p root). */
  repo: string
  /** The node binary to run in the guest (host path, same in the guest). */
  node: string
  /** Compiled race-lab CLI (dist-harness/lab/race/cli.js); null runs no race lab (the probe only). */
  raceCli: string | null
  /** dns-shaper's CLI (dist/cli.js): when set, `check --probe --json` runs first, switch on then off. */
  probeCli?: string
  /** race-cli flags (`--matrix kernels ...`); --out is added here. */
  raceArgs: readonly string[]
  /** Host run directory: holds the generated init, becomes the guest's results share. */
  runDir: string
  kernel: string
  memoryMb: number
  smp: number
  append: readonly string[]
  qemu: string
}

/** POSIX shell single-quoting. */
export function shQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`
}

/** The init script's path on the host, which is also its path in the guest (same root). */
export function initPath(plan: Pick<GuestPlan, 'runDir'>): string {
  return `${plan.runDir}/init`
}

export function kernelCmdline(plan: Pick<GuestPlan, 'runDir' | 'append'>): string {
  return [
    'console=ttyS0',
    // The host's / read-only over virtio-9p: the mount tag must be /dev/root for root=/dev/root.
    'root=/dev/root',
    'rootfstype=9p',
    // cache=loose: the host tree does not change during a run, and TCG makes every 9p round trip dear.
    'rootflags=trans=virtio,version=9p2000.L,msize=262144,cache=loose',
    'ro',
    `init=${initPath(plan)}`,
    // A failing init panics the guest; panic=-1 reboots at once and -no-reboot turns that into QEMU's exit.
    'panic=-1',
    'quiet',
    'loglevel=4',
    ...plan.append,
  ].join(' ')
}

export function qemuArgv(plan: GuestPlan): string[] {
  // security_model=none: files are read with QEMU's (root's) rights; readonly=on so the guest cannot write the host.
  return [
    plan.qemu,
    '-accel',
    'tcg,thread=multi',
    '-cpu',
    'max',
    '-smp',
    String(plan.smp),
    '-m',
    String(plan.memoryMb),
    ...QEMU_HEADLESS,
    '-kernel',
    plan.kernel,
    '-append',
    kernelCmdline(plan),
    '-fsdev',
    'local,id=rootfs,path=/,security_model=none,readonly=on,multidevs=remap',
    '-device',
    'virtio-9p-pci,fsdev=rootfs,mount_tag=/dev/root',
    '-fsdev',
    `local,id=results,path=${plan.runDir},security_model=none`,
    '-device',
    `virtio-9p-pci,fsdev=results,mount_tag=${RESULTS_TAG}`,
    '-fsdev',
    `local,id=repo,path=${plan.repo},security_model=none,readonly=on`,
    '-device',
    `virtio-9p-pci,fsdev=repo,mount_tag=${REPO_TAG}`,
  ]
}

/**
 * PID 1 of the guest. Stage 1 mounts proc/sys/dev and makes the read-only 9p root writable with a
 * tmpfs overlay (or, if overlayfs refuses 9p, tmpfs on /tmp, /run, /var/tmp and a tmpfs copy of /etc),
 * then re-executes itself as stage 2 in that root. Stage 2 mounts the results share, runs dns-shaper's
 * race probe (when asked) and the race lab, and powers off. It refuses to run unless it is PID 1, so running it on a host by mistake does nothing.
 */
export function guestInitScript(plan: GuestPlan): string {
  const q = shQuote
  const report = `${GUEST_RESULTS_DIR}/${GUEST_FILES.report}`
  const race =
    plan.raceCli === null
      ? `say "no race lab asked for"\nrc=0`
      : `say "starting the race lab"\n${[plan.node, plan.raceCli, ...plan.raceArgs, '--out', report].map(q).join(' ')}\nrc=$?\nsay "race lab exited $rc"`
  const out = (h: string, ext: 'json' | 'err' | 'rc'): string => `${GUEST_RESULTS_DIR}/probe-${h}.${ext}`
  // The probe runs before the race lab, so a race lab that overruns the VM's time still leaves it.
  // The switch is put back to its boot value afterwards: --append may have set it for the race lab.
  const probe =
    plan.probeCli === undefined
      ? ''
      : `run_probe() {
  say "dns-shaper check --probe ($1 clash handling)"
  ${[plan.node, plan.probeCli, 'check', '--probe', '--json'].map(q).join(' ')} >${out('$1', 'json')} 2>${out('$1', 'err')}
  echo $? >${out('$1', 'rc')}
  say "check --probe ($1) exited $(cat ${out('$1', 'rc')})"
}
if [ -e ${SWITCH} ]; then
  boot=$(cat ${SWITCH})
  echo 1 >${SWITCH} && run_probe pre56
  echo 0 >${SWITCH} && run_probe stock
  if [ "$boot" = Y ]; then echo 1 >${SWITCH}; else echo 0 >${SWITCH}; fi
else
  run_probe asis
fi
`
  return `#!/bin/sh
# dns-shaper kernel lab: PID 1 of the QEMU guest. Generated by lab/kernels/guest.ts for one run; do not edit.
# Must only write to tmpfs and to the results share (${GUEST_RESULTS_DIR}); the host root is read-only.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
HOME=/tmp
LANG=C.UTF-8
export PATH HOME LANG
say() { echo "${GUEST_LOG_PREFIX} $*"; }
off() {
  sync
  # sysrq o powers off through ACPI; if that fails, init exiting panics and panic=-1 + -no-reboot ends QEMU.
  echo o >/proc/sysrq-trigger 2>/dev/null
  sleep 10
  exit 1
}
if [ "$$" != 1 ]; then
  echo "this is the kernel-lab guest init; it runs only as PID 1 inside QEMU" >&2
  exit 1
fi

if [ "\${1:-}" != stage2 ]; then
  mount -t proc proc /proc
  mount -t sysfs sysfs /sys
  mount -t devtmpfs devtmpfs /dev 2>/dev/null
  mount -t tmpfs -o mode=0755 tmpfs /mnt || { say "FAIL: cannot mount tmpfs"; off; }
  mkdir -p /mnt/upper /mnt/work /mnt/root
  if mount -t overlay overlay -o lowerdir=/,upperdir=/mnt/upper,workdir=/mnt/work /mnt/root 2>/dev/null; then
    for d in proc sys dev; do mount -n --move /$d /mnt/root/$d; done
    say "root: 9p (read-only) + tmpfs overlay"
    exec chroot /mnt/root /bin/sh ${q(initPath(plan))} stage2
  fi
  say "root: overlayfs refused 9p; tmpfs on /tmp /run /var/tmp and a tmpfs copy of /etc"
  mkdir -p /mnt/etc
  cp -a /etc/. /mnt/etc/
  mount --bind /mnt/etc /etc
  mount -t tmpfs -o mode=1777 tmpfs /var/tmp
  exec /bin/sh ${q(initPath(plan))} stage2
fi

# stage 2: a writable root; fresh /tmp and /run so nothing of the host's (netns files, locks) shows through
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p ${GUEST_RESULTS_DIR}
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 ${RESULTS_TAG} ${GUEST_RESULTS_DIR} ||
  { say "FAIL: cannot mount the results share"; off; }
# A checkout under /tmp or /run (a CI clone, say) is hidden by the fresh mounts above: mount its own share.
if [ ! -d ${q(plan.repo)} ]; then
  mkdir -p ${q(plan.repo)} &&
    mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=loose,ro ${REPO_TAG} ${q(plan.repo)} ||
    { say "FAIL: cannot mount the checkout share at ${plan.repo}"; off; }
fi
ip link set lo up
{
  echo "kernel=$(uname -r)"
  echo "cmdline=$(cat /proc/cmdline)"
  if [ -e /sys/module/nf_conntrack/parameters/lab_pre56_clash ]; then
    echo "lab_pre56_clash=$(cat /sys/module/nf_conntrack/parameters/lab_pre56_clash)"
  else
    echo "lab_pre56_clash=absent"
  fi
  echo "cpus=$(nproc)"
} >${GUEST_RESULTS_DIR}/${GUEST_FILES.info}
say "kernel $(uname -r), $(nproc) CPUs"
cd ${q(plan.repo)} || { say "FAIL: no checkout at ${plan.repo}"; off; }
${probe}${race}
echo "$rc" >${GUEST_RESULTS_DIR}/${GUEST_FILES.rc}
off
`
}
