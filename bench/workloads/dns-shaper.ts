// dns-shaper itself (dist/cli.js), with --rules none: the benchmark installs the same rule for
// every variant. Metrics listen on the router's loopback and are scraped only between runs.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { startDaemon } from '../../harness/daemon.js'
import { lastJsonLine } from '../../harness/process.js'
import type { BenchContext, Running, Variant } from './types.js'

const cli = (ctx: BenchContext): string => join(ctx.repoRoot, 'dist', 'cli.js')

async function start(ctx: BenchContext, mode: 'fixed' | 'pair', kernelFilter: boolean): Promise<Running> {
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
  const d = await startDaemon(ns, argv, { cli: cli(ctx) })
  return {
    pid: d.child.pid ?? -1,
    metrics: async () => d.metrics().catch(() => undefined),
    stop: async () => {
      await d.stop()
      return lastJsonLine(d.stderr, o => o['msg'] === 'stopped')
    },
  }
}

export function dnsShaper(mode: 'fixed' | 'pair', kernelFilter = false): Variant {
  return {
    id: `dns-shaper-${mode}${kernelFilter ? '-kfilter' : ''}`,
    label: `dns-shaper ${mode}${kernelFilter ? ' + kernel filter' : ''}`,
    queue: !kernelFilter,
    holdsAAAA: true,
    pairMode: mode === 'pair',
    unavailable: ctx =>
      Promise.resolve(existsSync(cli(ctx)) ? undefined : `${cli(ctx)} missing: run \`npx tsc -p tsconfig.build.json\``),
    start: ctx => start(ctx, mode, kernelFilter),
  }
}
