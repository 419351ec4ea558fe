// The C reference (bench/ref/nfq_ref.c, `make -C bench/ref`): accept-all, or hold AAAA for the delay.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { lastJsonLine, startSupervised } from '../lib/process.js'
import type { BenchContext, Running, Variant } from './types.js'

const binary = (ctx: BenchContext): string => join(ctx.repoRoot, 'bench', 'ref', 'nfq_ref')

async function start(ctx: BenchContext, mode: 'accept' | 'hold'): Promise<Running> {
  const p = await startSupervised(
    ctx.lab.router.ns,
    [binary(ctx), '--queue', String(ctx.queue), '--mode', mode, '--delay-ms', String(ctx.delayMs)],
    /bound queue/,
  )
  return {
    pid: p.pid,
    stop: async () => lastJsonLine((await p.stop()).stderr, o => 'packets' in o),
  }
}

const unavailable = (ctx: BenchContext): Promise<string | undefined> =>
  Promise.resolve(
    existsSync(binary(ctx))
      ? undefined
      : `${binary(ctx)} missing: run \`make -C bench/ref\` (needs libnetfilter-queue-dev, libmnl-dev)`,
  )

/** The reference in one mode; `hold` holds AAAA for the context's delay. */
export function nfqRef(mode: 'accept' | 'hold'): Variant {
  return {
    id: `nfq-ref-${mode}`,
    label: mode === 'accept' ? 'nfq_ref accept' : 'nfq_ref hold AAAA',
    queue: true,
    holdsAAAA: mode === 'hold',
    unavailable,
    start: ctx => start(ctx, mode),
  }
}
