// Wires `dns-shaper check` to the real system: backend detection from the rule manager, and a
// feature probe that tries NFQUEUE and xt_bpf rules in a throwaway network namespace (never in the
// node's own tables), removed again whatever happens.
import { randomBytes } from 'node:crypto'
import type { Config } from './config-types.js'
import { systemProbes, type CheckProbes, type FeatureProbe, type IptablesProbe } from './check.js'
import { RuleManager } from './iptables.js'
import { binaries, type Backend } from './iptables-backend.js'
import { run as defaultRun, type Runner } from './exec.js'

async function ok(run: Runner, argv: string[]): Promise<true | Error> {
  try {
    const r = await run(argv, { timeoutMs: 10000 })
    return r.code === 0 ? true : new Error(`${argv.slice(3).join(' ')}: ${r.stderr.trim() || `exit ${String(r.code)}`}`)
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e))
  }
}

/** Adds an NFQUEUE rule and an xt_bpf rule in a new namespace, reports which worked, deletes the namespace. */
export async function probeFeatures(backend: Backend, run: Runner = defaultRun): Promise<FeatureProbe> {
  const ns = `dnss-chk-${randomBytes(3).toString('hex')}`
  const add = await ok(run, ['ip', 'netns', 'add', ns])
  if (add !== true) {
    const e = new Error(`cannot create a throwaway network namespace to test rules: ${add.message}`)
    return { nfqueue: e, xtBpf: e }
  }
  try {
    const ipt = [
      'ip',
      'netns',
      'exec',
      ns,
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

export function systemProbesFor(config: Config, run: Runner = defaultRun): CheckProbes {
  const rules = new RuleManager({ config })
  let backend: Promise<IptablesProbe> | undefined
  const detect = (): Promise<IptablesProbe> =>
    (backend ??= rules.detectBackend().then(
      d => ({ backend: d.backend, reason: d.reason }),
      (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
    ))
  const save = async (family: 'ipv4' | 'ipv6'): Promise<string> => {
    const d = await detect()
    const b = d instanceof Error ? 'nft' : d.backend
    const r = await run([binaries(b, family).save, '-t', 'raw'])
    if (r.code !== 0) throw new Error(`${binaries(b, family).save}: ${r.stderr.trim()}`)
    return r.stdout
  }
  return systemProbes({
    ipv6: config.ipv6,
    iptables: detect,
    features: async () => {
      const d = await detect()
      return probeFeatures(d instanceof Error ? 'nft' : d.backend, run)
    },
    rawRules: async () => (await save('ipv4')) + (config.ipv6 ? await save('ipv6').catch(() => '') : ''),
  })
}
