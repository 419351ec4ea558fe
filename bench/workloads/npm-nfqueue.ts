// Optional: the npm `nfqueue` package driven by bench/workloads/npm-nfqueue-worker.cjs.
// Skipped with a reason when the package is not installed or its addon was not built.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { lastJsonLine, startSupervised } from '../../harness/process.js'
import type { BenchContext, Running, Variant } from './types.js'

const worker = (ctx: BenchContext): string => join(ctx.repoRoot, 'bench', 'workloads', 'npm-nfqueue-worker.cjs')

async function start(ctx: BenchContext, mode: 'accept' | 'hold'): Promise<Running> {
  const p = await startSupervised(
    ctx.lab.router.ns,
    [process.execPath, worker(ctx), String(ctx.queue), mode, String(ctx.delayMs)],
    /bound queue/,
    { env: { ...process.env, NFQ_NPM_DIR: ctx.npmNfqueueDir } },
  )
  return { pid: p.pid, stop: async () => lastJsonLine((await p.stop()).stderr, o => 'packets' in o) }
}

export function npmNfqueueUnavailable(dir: string): string | undefined {
  if (!existsSync(join(dir, 'package.json')))
    return `npm nfqueue not installed at ${dir} (npm install --prefix /tmp/nfq-npm nfqueue)`
  if (!existsSync(join(dir, 'build', 'Release', 'nfqueue.node'))) {
    return `npm nfqueue at ${dir} has no built addon (cd ${dir} && npx node-gyp rebuild --nodedir=/usr)`
  }
  return undefined
}

export function npmNfqueue(mode: 'accept' | 'hold'): Variant {
  return {
    id: `npm-nfqueue-${mode}`,
    label: `npm nfqueue ${mode === 'hold' ? 'hold AAAA' : 'accept'}`,
    queue: true,
    holdsAAAA: mode === 'hold',
    unavailable: ctx => Promise.resolve(npmNfqueueUnavailable(ctx.npmNfqueueDir)),
    start: ctx => start(ctx, mode),
  }
}
