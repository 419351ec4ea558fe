// Runs the scaling sweeps (`bench/run.ts --sweeps depth,flows,queues,memory`) in one throwaway lab,
// records the machine's load before and after, and writes bench/results/sweeps.{json,md} and the
// sweeps-*.svg plots. Like the rest of the benchmark it reports ratios and never asserts them.

import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { createRunLab } from '../../harness/topology.js'
import { startBenchServer } from '../lib/server.js'
import { writeQueryFile } from '../lib/dnsperf.js'
import { parseTopBusiest } from '../lib/proc.js'
import type { Machine } from '../lib/report.js'
import { shortenConntrackTimeouts, stubUnavailable } from '../lib/stub.js'
import { estimateSeconds, sweepPlan } from '../lib/sweep.js'
import type { SweepName } from '../lib/sweep.js'
import { renderSweepsMarkdown } from '../lib/sweep-report.js'
import { depthPlot, flowsPlot, memoryPlot, queuesPlot } from '../lib/sweep-plots.js'
import type { LoadSnapshot, SweepReport } from '../lib/sweep-report.js'
import type { Variant } from '../workloads/types.js'
import type { SweepEnv } from './common.js'
import { depthSweep } from './depth.js'
import { flowsSweep } from './flows.js'
import { memorySweep } from './memory.js'
import { queuesSweep } from './queues.js'

export interface SweepRunOptions {
  sweeps: SweepName[]
  quick: boolean
  outDir: string
  repoRoot: string
  queue: number
  hosts: number
  npmNfqueueDir: string
  clkTck: number
}

/** Load averages and the busiest processes over the last half second (the other work sharing the CPUs). */
export function loadSnapshot(): LoadSnapshot {
  let top: string[] = []
  try {
    top = parseTopBusiest(
      execFileSync('top', ['-b', '-n', '2', '-d', '0.5', '-w', '200'], { encoding: 'utf8', timeout: 10_000 }),
    )
  } catch {
    /* top missing: load averages only */
  }
  return { loadavg: loadavg(), top }
}

export async function runSweeps(
  o: SweepRunOptions,
  mach: Machine,
  variants: Variant[],
  log: (s: string) => void,
): Promise<number> {
  const missing = stubUnavailable(o.repoRoot)
  if (missing) {
    process.stderr.write(`bench: ${missing}\n`)
    return 1
  }
  const byId = (id: string): Variant => {
    const v = variants.find(x => x.id === id)
    if (!v) throw new Error(`no variant ${id}`)
    return v
  }
  const plan = sweepPlan(o.quick)
  const estimateS = estimateSeconds(plan, o.sweeps)
  const t0 = Date.now()
  const report: SweepReport = {
    date: new Date().toISOString(),
    machine: mach,
    load: { before: loadSnapshot() },
    plan,
    quick: o.quick,
    estimateS,
    notes: [],
    elapsedS: 0,
  }
  log(
    `sweeps ${o.sweeps.join(',')}: planned ≈ ${estimateS} s; load ${report.load.before.loadavg.map(v => v.toFixed(2)).join(' ')}`,
  )
  const q = writeQueryFile(o.hosts)
  const { lab, close } = await createRunLab()
  try {
    await startBenchServer(lab, o.hosts)
    await shortenConntrackTimeouts(lab.router.ns)
    const env: SweepEnv = {
      lab,
      repoRoot: o.repoRoot,
      clkTck: o.clkTck,
      quick: o.quick,
      dataFile: q.path,
      queue: o.queue,
      metricsPort: 9363,
      npmNfqueueDir: o.npmNfqueueDir,
      log,
    }
    for (const s of o.sweeps) {
      if (s === 'depth') report.depth = await depthSweep(env, plan.depth, plan.depth.variants.map(byId))
      if (s === 'flows')
        report.flows = await flowsSweep(env, plan.flows, byId('dns-shaper-pair'), byId('nfq-ref-accept'))
      if (s === 'queues')
        report.queues = await queuesSweep(env, plan.queues, {
          dnsperf: ['baseline', 'nfq-ref-hold', 'dns-shaper-fixed'].map(byId),
          stub: ['baseline', 'nfq-ref-hold', 'dns-shaper-pair'].map(byId),
        })
      if (s === 'memory')
        report.memory = await memorySweep(env, plan.memory, ['nfq-ref-hold', 'dns-shaper-fixed'].map(byId))
    }
  } finally {
    await close(log)
    q.remove()
  }
  report.load.after = loadSnapshot()
  report.elapsedS = (Date.now() - t0) / 1000
  if (report.load.before.loadavg[0]! > mach.nproc * 0.5 || (report.load.after.loadavg[0] ?? 0) > mach.nproc * 0.5)
    report.notes.push(
      `load average ${report.load.before.loadavg[0]!.toFixed(2)} before and ${report.load.after.loadavg[0]!.toFixed(2)} after on ${mach.nproc} CPUs: ` +
        'other work shared the CPUs, so absolute latencies and CPU times are inflated and noisy; compare the ratios to the C floor of the same run',
    )
  writeSweepFiles(report, o.outDir, log)
  const rows: Array<{ error?: string }> = [
    ...(report.depth?.rows ?? []),
    ...(report.flows?.rows ?? []),
    ...(report.queues?.rows ?? []),
    ...(report.memory?.rows ?? []),
  ]
  const errors = rows.filter(r => r.error)
  return errors.length ? 1 : 0
}

/** Writes sweeps.{json,md} and the plots of a report (also used to re-render a saved report). */
export function writeSweepFiles(report: SweepReport, outDir: string, log: (s: string) => void, json = true): void {
  const mach = report.machine
  mkdirSync(outDir, { recursive: true })
  const sub = `${report.date} · ${mach.nproc} CPUs · kernel ${mach.kernel} · load ${report.load.before.loadavg[0]!.toFixed(1)}`
  const svgs: string[] = []
  const put = (name: string, svg: string): void => {
    writeFileSync(join(outDir, name), svg)
    svgs.push(name)
  }
  if (report.depth) put('sweeps-depth.svg', depthPlot(report.depth, sub))
  if (report.flows) put('sweeps-flows.svg', flowsPlot(report.flows, sub))
  if (report.queues) put('sweeps-queues.svg', queuesPlot(report.queues, sub))
  if (report.memory) put('sweeps-memory.svg', memoryPlot(report.memory, sub))
  if (json) writeFileSync(join(outDir, 'sweeps.json'), JSON.stringify(report, null, 1) + '\n')
  writeFileSync(join(outDir, 'sweeps.md'), renderSweepsMarkdown(report, svgs))
  log(`wrote ${join(outDir, 'sweeps.{json,md}')} and ${svgs.join(', ')} in ${report.elapsedS.toFixed(0)} s`)
}

/** Re-renders sweeps.md and the plots from a saved sweeps.json (after a change to the rendering). */
export function rerenderSweeps(jsonPath: string, outDir: string, log: (s: string) => void): number {
  const report = JSON.parse(readFileSync(jsonPath, 'utf8')) as SweepReport
  writeSweepFiles(report, outDir, log, false)
  return 0
}
