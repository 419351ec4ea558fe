// dns-shaper itself (dist/cli.js, with the image's node flags), with --rules none: the benchmark
// installs the same rule for every variant. Metrics listen on the router's loopback and are scraped only between runs.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { checkoutImageNodeFlags, startDaemon } from '../../harness/daemon.js'
import { lastJsonLine } from '../../harness/process.js'
import type { BenchContext, Running, Variant } from './types.js'

/** Another built checkout to run side by side with this one (bench/run.ts --compare DIR). */
export interface OtherCheckout {
  root: string
  /** Suffix of the variant ids, e.g. "before". */
  tag: string
}

const rootOf = (ctx: BenchContext, other?: OtherCheckout): string => other?.root ?? ctx.repoRoot
const cli = (ctx: BenchContext, other?: OtherCheckout): string => join(rootOf(ctx, other), 'dist', 'cli.js')

/** The node flags of a checkout's image; none when its Dockerfile ran the CLI through its shebang. */
function checkoutNodeFlags(root: string, other: boolean): string[] {
  if (!other) return checkoutImageNodeFlags(root)
  try {
    return checkoutImageNodeFlags(root)
  } catch {
    return []
  }
}

async function start(
  ctx: BenchContext,
  mode: 'fixed' | 'pair',
  kernelFilter: boolean,
  other?: OtherCheckout,
): Promise<Running> {
  const ns = ctx.lab.router.ns
  const listen = `127.0.0.1:${ctx.metricsPort}`
  // With the kernel filter the daemon installs its own rule (the shared rule plus the cBPF match):
  // A queries then never reach user space.
  const rules = kernelFilter
    ? ['--rules', 'manage', '--hooks', 'prerouting', '--kernel-filter', 'bpf']
    : ['--rules', 'none']
  const argv = [
    'run',
    ...rules,
    '--queue',
    String(ctx.queue),
    '--delay',
    String(ctx.delayMs),
    '--mode',
    mode,
    '--metrics-listen',
    listen,
    '--log-level',
    'info',
  ]
  if (mode === 'pair') argv.push('--pair-window', String(ctx.pairWindowMs ?? ctx.delayMs))
  if ((ctx.queues ?? 1) > 1) argv.push('--queues', String(ctx.queues))
  if (ctx.maxHeld !== undefined) argv.push('--max-held', String(ctx.maxHeld))
  // The daemon's node binary and the image's node flags before the CLI, as the image's ENTRYPOINT has them.
  const command = [
    ctx.daemonNode ?? process.execPath,
    ...checkoutNodeFlags(rootOf(ctx, other), other !== undefined),
    cli(ctx, other),
  ]
  const d = await startDaemon(ns, argv, { command })
  return {
    pid: d.child.pid ?? -1,
    metrics: async () => d.metrics().catch(() => undefined),
    stop: async () => {
      await d.stop()
      return lastJsonLine(d.stderr, o => o['msg'] === 'stopped')
    },
  }
}

export function dnsShaper(mode: 'fixed' | 'pair', kernelFilter = false, other?: OtherCheckout): Variant {
  const tag = other ? `@${other.tag}` : ''
  return {
    id: `dns-shaper-${mode}${kernelFilter ? '-kfilter' : ''}${tag}`,
    label: `dns-shaper ${mode}${kernelFilter ? ' + kernel filter' : ''}${other ? ` (${other.tag}: ${other.root})` : ''}`,
    queue: !kernelFilter,
    holdsAAAA: true,
    pairMode: mode === 'pair',
    unavailable: ctx =>
      Promise.resolve(
        existsSync(cli(ctx, other)) ? undefined : `${cli(ctx, other)} missing: run \`npx tsc -p tsconfig.build.json\``,
      ),
    start: ctx => start(ctx, mode, kernelFilter, other),
  }
}
