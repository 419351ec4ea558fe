// The C reference (bench/ref/nfq_ref.c, `make -C bench/ref`): accept-all, or hold AAAA for the delay.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { lastJsonLine, startSupervised } from '../../harness/process.js'
import type { Supervised } from '../../harness/process.js'
import type { BenchContext, Running, Variant } from './types.js'

const binary = (ctx: BenchContext): string => join(ctx.repoRoot, 'bench', 'ref', 'nfq_ref')

async function startOne(ctx: BenchContext, mode: 'accept' | 'hold', queue: number): Promise<Supervised> {
  return startSupervised(
    ctx.lab.router.ns,
    [binary(ctx), '--queue', String(queue), '--mode', mode, '--delay-ms', String(ctx.delayMs)],
    /bound queue/,
  )
}

/** One process per queue: with --queues 2 the C floor runs twice, each instance on its own queue. */
async function start(ctx: BenchContext, mode: 'accept' | 'hold'): Promise<Running> {
  const ps: Supervised[] = []
  try {
    for (let i = 0; i < (ctx.queues ?? 1); i++) ps.push(await startOne(ctx, mode, ctx.queue + i))
  } catch (e: unknown) {
    await Promise.all(ps.map(p => p.stop()))
    throw e
  }
  return {
    pid: ps[0]!.pid,
    pids: ps.map(p => p.pid),
    stop: async () => {
      const out = await Promise.all(ps.map(async p => lastJsonLine((await p.stop()).stderr, o => 'packets' in o)))
      return out.length === 1 ? out[0] : { instances: out }
    },
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
