// Whether NFQUEUE and xt_bpf rules can be used, tried in a throwaway network namespace; it must never add a rule outside that namespace, and deletes it whatever happens.
import { randomBytes } from 'node:crypto'
import { netnsWrap, run as defaultRun, type Runner } from '../kernel/exec.js'
import { binaries, type Backend } from '../rules/backend.js'
import { CAP_SYS_ADMIN, hasCap } from './parse.js'

/** Whether NFQUEUE and xt_bpf rules can actually be used (tried in a throwaway network namespace). */
export interface FeatureProbe {
  nfqueue: true | Error
  xtBpf: true | Error
}

/**
 * A probe that was not run because this process may not run it (not a failure of what it probes):
 * the NFQUEUE and xt_bpf probes need a throwaway network namespace, and creating one needs
 * CAP_SYS_ADMIN, which the DaemonSet's pod does not have.
 */
export class NotProbed extends Error {
  override name = 'NotProbed'
}

async function ok(run: Runner, argv: string[]): Promise<true | Error> {
  try {
    const r = await run(argv, { timeoutMs: 10000 })
    return r.code === 0 ? true : new Error(`${argv.slice(3).join(' ')}: ${r.stderr.trim() || `exit ${String(r.code)}`}`)
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e))
  }
}

/**
 * Adds an NFQUEUE rule and an xt_bpf rule in a new namespace, reports which worked, deletes the
 * namespace. Without CAP_SYS_ADMIN (`capEff`, when known) no namespace can be made: both NotProbed,
 * as when `ip netns add` is refused for lack of permission, which says nothing about NFQUEUE.
 */
export async function probeFeatures(
  backend: Backend,
  run: Runner = defaultRun,
  capEff?: bigint,
): Promise<FeatureProbe> {
  const why = 'creating the throwaway network namespace the probe uses needs CAP_SYS_ADMIN'
  if (capEff !== undefined && !hasCap(capEff, CAP_SYS_ADMIN)) {
    const e = new NotProbed(`not probed: ${why}, which this process lacks`)
    return { nfqueue: e, xtBpf: e }
  }
  const ns = `dnss-chk-${randomBytes(3).toString('hex')}`
  const add = await ok(run, ['ip', 'netns', 'add', ns])
  if (add !== true) {
    const denied = /not permitted|permission denied|EPERM|EACCES/i.test(add.message)
    const e = denied
      ? new NotProbed(`not probed: ${why} (${add.message})`)
      : new Error(`cannot create a throwaway network namespace to test rules: ${add.message}`)
    return { nfqueue: e, xtBpf: e }
  }
  try {
    const ipt = [
      ...netnsWrap(ns),
      binaries(backend, 'ipv4').iptables,
      '-w',
      '5',
      '-t',
      'raw',
      '-A',
      'OUTPUT',
      '-p',
      'udp',
      '--dport',
      '53',
    ]
    const nfqueue = await ok(run, [...ipt, '-j', 'NFQUEUE', '--queue-num', '0', '--queue-bypass'])
    // The smallest valid classic BPF program: "ret #0".
    const xtBpf = await ok(run, [...ipt, '-m', 'bpf', '--bytecode', '1,6 0 0 0', '-j', 'ACCEPT'])
    return { nfqueue, xtBpf }
  } finally {
    await run(['ip', 'netns', 'del', ns], { timeoutMs: 10000 }).catch(() => undefined)
  }
}
