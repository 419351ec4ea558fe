#!/usr/bin/env node
// `npm run lab:kernels`: boots a QEMU guest (default: the cached 5.10 lab kernel), runs dns-shaper's race
// probe there with the lab switch on and off and the race lab's kernel matrix, prints the probe verdicts,
// the race-lab table and the lab's expected signs (PASS/FAIL/SKIP), writes the JSON.
// It never builds the kernel (lab/kernels/build-kernel.sh does) and changes nothing on the host but its run dir.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { formatTable } from '../race/race.js'
import { builtPath, repoRoot } from '../../harness/paths.js'
import { parseKernelLabArgs, USAGE } from './args.js'
import { checkExpectedSigns, formatChecks, isShownConsoleLine, probeFigures, probeSigns } from './results.js'
import { bootGuest, defaultKernel, makeRunDir, removeRunDir } from './run.js'

async function main(): Promise<number> {
  const repo = repoRoot()
  const p = parseKernelLabArgs(process.argv.slice(2), {
    kernel: defaultKernel(),
    out: join(repo, 'bench/results/kernel-lab.json'),
  })
  if (p.kind === 'help') {
    process.stdout.write(USAGE + '\n')
    return 0
  }
  if (p.kind === 'error') {
    process.stderr.write(`lab:kernels: ${p.message}\n${USAGE}\n`)
    return 2
  }
  const o = p.opts
  if (process.getuid?.() !== 0) {
    process.stderr.write('lab:kernels: needs root (QEMU reads the whole root file system for the guest)\n')
    return 1
  }
  if (!existsSync(o.kernel)) {
    process.stderr.write(
      `lab:kernels: no kernel at ${o.kernel}: build it with \`sudo bash lab/kernels/build-kernel.sh\` ` +
        '(20-30 min on 2 cores, cached outside the checkout) or pass --kernel FILE\n',
    )
    return 1
  }
  const raceCli = builtPath('lab/race/cli.ts', repo)
  const shaperCli = join(repo, 'dist/cli.js')
  for (const f of [raceCli, shaperCli, join(repo, 'build/Release/nfqueue.node')]) {
    if (!existsSync(f)) {
      process.stderr.write(`lab:kernels: ${f} is missing: run npm run build first\n`)
      return 1
    }
  }
  const runDir = makeRunDir()
  process.stdout.write(`booting ${o.kernel} (TCG, ${o.smp} vCPUs, ${o.memoryMb} MiB); run dir ${runDir}\n`)
  const vm = await bootGuest(
    {
      repo,
      node: process.execPath,
      raceCli: o.probe === 'only' ? null : raceCli,
      ...(o.probe === 'off' ? {} : { probeCli: shaperCli }),
      raceArgs: o.raceArgs,
      runDir,
      kernel: o.kernel,
      memoryMb: o.memoryMb,
      smp: o.smp,
      append: o.append,
      qemu: o.qemu,
    },
    {
      timeoutMin: o.timeoutMin,
      // The guest's own lines and the race table; kernel messages stay in console.log.
      onLine: l => {
        if (isShownConsoleLine(l)) process.stdout.write(l + '\n')
      },
    },
  )
  const { results } = vm
  process.stdout.write(
    `\nVM: ${vm.timedOut ? `killed after ${o.timeoutMin} min` : `QEMU exited ${vm.qemuCode}`} after ${vm.elapsedS.toFixed(0)} s; ` +
      `guest kernel ${results.info['kernel'] ?? '?'}, lab switch ${results.info['lab_pre56_clash'] ?? '?'}\n`,
  )
  const probeChecks = probeSigns(results.probes, o.probe !== 'off')
  for (const p of results.probes) {
    const f = probeFigures(p.json)
    process.stdout.write(
      `check --probe (${p.handling}): ${f ? `verdict ${f.verdict}, ${f.pairs} pairs, ${f.clashes} clashes, ${f.dropped} dropped, ${f.resolved} resolved` : `no figures (exit ${p.rc ?? '?'})`}\n`,
    )
  }
  if (o.probe === 'only' && results.problem === null) {
    const file = resolve(o.out)
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(
      file,
      JSON.stringify(
        {
          date: new Date().toISOString(),
          guest: results.info,
          vm: { elapsedS: vm.elapsedS, qemu: o.qemu, smp: o.smp },
          probes: results.probes,
          checks: probeChecks,
        },
        null,
        2,
      ) + '\n',
    )
    process.stdout.write(`\nexpected signs:\n${formatChecks(probeChecks)}\nJSON: ${file}\n`)
    if (!o.keep) removeRunDir(runDir)
    return probeChecks.some(c => c.status === 'FAIL') ? 1 : 0
  }
  if (!results.report) {
    const tail = readFileSync(vm.consoleLog, 'utf8').split('\n').slice(-25).join('\n')
    process.stderr.write(`lab:kernels: FAIL: ${results.problem}\nlast console lines:\n${tail}\n`)
    if (!o.keep) process.stderr.write(`(run dir kept for the log: ${runDir})\n`)
    return 1
  }
  const report = results.report
  const checks = [...probeChecks, ...checkExpectedSigns(report.rows)]
  process.stdout.write(`\n${formatTable(report.rows)}\n\n`)
  for (const s of report.skipped) process.stdout.write(`skipped: ${s}\n`)
  process.stdout.write(
    `kernel ${report.kernel}, ${report.cpus} vCPUs (TCG), ${report.date}\n\nexpected signs:\n${formatChecks(checks)}\n`,
  )
  const file = resolve(o.out)
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(
    file,
    JSON.stringify(
      {
        ...report,
        guest: results.info,
        vm: { elapsedS: vm.elapsedS, qemu: o.qemu, smp: o.smp },
        probes: results.probes,
        checks,
      },
      null,
      2,
    ) + '\n',
  )
  process.stdout.write(`JSON: ${file}\n`)
  if (!o.keep) removeRunDir(runDir)
  const failed = checks.some(c => c.status === 'FAIL') || results.rc !== 0
  if (results.rc !== 0) process.stdout.write(`FAIL: the race lab in the guest exited ${results.rc}\n`)
  return failed ? 1 : 0
}

main().then(
  code => {
    process.exitCode = code
  },
  (e: unknown) => {
    process.stderr.write(`lab:kernels: ${e instanceof Error ? e.message : String(e)}\n`)
    process.exitCode = 1
  },
)
