#!/usr/bin/env node
// `npm run demo`: a throwaway lab (client ─ router with the shaper ─ DNS server, each its own network
// namespace) that shows A passing and AAAA held, then removes everything it made, also on Ctrl-C.
// It never touches the host's own network namespace; it runs the built product, never imports it.
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { createLab, type Lab } from '../harness/topology.js'
import { startUnbound } from '../harness/unbound.js'
import { runProbeIn } from '../harness/probe-runner.js'
import type { ProbeResult } from '../harness/probe-lib.js'
import { DaemonProcess } from '../harness/daemon.js'
import { counterDeltas, parseProm } from '../harness/prom.js'
import { errorMessage } from '../harness/product.js'

export interface DemoIo {
  out: (s: string) => void
  err: (s: string) => void
}

const COUNT = 40
const USAGE = 'usage: npm run demo [-- --delay MS]   (MS: 0..10000, default 5; needs root)\n'
/** The shaper's metrics listener in the router namespace (its loopback: nothing outside the lab reaches it). */
const METRICS_LISTEN = '127.0.0.1:9363'

/** --delay MS, validated before anything is built; a string is the usage error. */
export function parseDemoArgs(argv: string[]): { delayMs: number } | string {
  let values: { delay?: string | undefined; help?: boolean | undefined }
  try {
    ;({ values } = parseArgs({
      args: argv,
      options: { delay: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }))
  } catch (e) {
    return `demo: ${errorMessage(e)}\n${USAGE}`
  }
  if (values.help) return USAGE
  const delayMs = values.delay === undefined ? 5 : Number(values.delay)
  if (values.delay?.trim() === '' || !Number.isFinite(delayMs) || delayMs < 0 || delayMs > 10_000)
    return `demo: --delay: "${values.delay}" is not milliseconds 0..10000\n${USAGE}`
  return { delayMs }
}

function ms(us: number | null | undefined): string {
  return us === null || us === undefined ? '-' : (us / 1000).toFixed(2)
}

export async function runDemo(argv: string[], io: DemoIo): Promise<number> {
  const parsed = parseDemoArgs(argv)
  if (typeof parsed === 'string') {
    const help = argv.includes('--help') || argv.includes('-h')
    ;(help ? io.out : io.err)(parsed)
    return help ? 0 : 2
  }
  const delay = parsed.delayMs
  if (process.getuid?.() !== 0) {
    io.err('demo: needs root (it creates network namespaces); run it with sudo\n')
    return 1
  }
  let lab: Lab | undefined
  const cleanup = async (): Promise<void> => {
    await lab?.destroy()
  }
  const onSigint = (): void => {
    void cleanup().then(() => process.exit(130))
  }
  process.once('SIGINT', onSigint)
  try {
    io.out('building a lab: client 198.51.100.2 -> router 198.51.100.1 (shaper) -> DNS server 203.0.113.53 (unbound)\n')
    lab = await createLab()
    await startUnbound({ ns: lab.server.ns, addresses: [lab.server.ipv4, lab.server.ipv6] })
    const l = lab
    const probe = (type: 'A' | 'AAAA', server: string): Promise<ProbeResult> =>
      runProbeIn(l.client.ns, {
        server,
        types: [type],
        count: COUNT,
        intervalMs: 2,
        timeoutMs: 2000,
        freshSocket: true,
      })
    const rows: string[][] = []
    const measure = async (label: string): Promise<void> => {
      for (const [fam, server] of [
        ['IPv4', l.server.ipv4],
        ['IPv6', l.server.ipv6],
      ] as const) {
        for (const type of ['A', 'AAAA'] as const) {
          const r = await probe(type, server)
          const s = r.byType[type]
          rows.push([label, fam, `${type} alone`, ms(s?.p50Us), ms(s?.p99Us), ms(s?.minUs), String(r.lost)])
        }
        // Like glibc and musl: A and AAAA back to back from one socket.
        const r = await runProbeIn(l.client.ns, {
          server,
          types: ['A', 'AAAA'],
          pair: true,
          count: COUNT,
          intervalMs: 2,
          timeoutMs: 2000,
          freshSocket: true,
        })
        for (const type of ['A', 'AAAA'] as const) {
          const s = r.byType[type]
          rows.push([
            label,
            fam,
            `${type} of a pair`,
            ms(s?.p50Us),
            ms(s?.p99Us),
            ms(s?.minUs),
            String(s?.lost ?? r.lost),
          ])
        }
      }
    }
    io.out(`measuring ${COUNT} lookups per row without the shaper...\n`)
    await measure('off')
    io.out(
      `starting the shaper in the router namespace (raw-table rule, pair mode: each AAAA leaves right behind its A, at most ${delay} ms)...\n`,
    )
    const shaper = new DaemonProcess(l.router.ns, [
      'run',
      '--delay',
      String(delay),
      '--hooks',
      'prerouting',
      '--metrics-listen',
      METRICS_LISTEN,
    ])
    await shaper.ready().catch(async (e: unknown) => {
      await shaper.stop(2000)
      throw e
    })
    await measure('on')
    if (!shaper.running) throw new Error(`the shaper exited early:\n${shaper.stderr.slice(-2000)}`)
    const metrics = await shaper.metrics()
    await shaper.stop()
    const header = ['shaper', 'family', 'query', 'p50 ms', 'p99 ms', 'min ms', 'lost']
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
    const fmt = (r: string[]): string =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd() + '\n'
    io.out('\n' + fmt(header) + rows.map(fmt).join(''))
    // Absent counters print as '-', not 0: a renamed metric must not read as "nothing held".
    const c = counterDeltas(parseProm(metrics), undefined)
    io.out(`\nshaper counted (its /metrics): ${c.accepted ?? '-'} accepted at once, ${c.held ?? '-'} held\n`)
    io.out(
      `A passes at once. An AAAA of a pair leaves right behind its A, in the same verdict batch, so it can never\n` +
        `race its A through conntrack; an AAAA with no A in sight waits ${delay} ms.\n`,
    )
    return 0
  } catch (e) {
    io.err(`demo failed: ${e instanceof Error ? e.message : String(e)}\n`)
    return 1
  } finally {
    process.off('SIGINT', onSigint)
    await cleanup()
    io.out('lab removed.\n')
  }
}

// Run directly (node dist-harness/lab/demo.js): the exit code is the demo's.
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const code = await runDemo(process.argv.slice(2), {
    out: s => process.stdout.write(s),
    err: s => process.stderr.write(s),
  })
  process.exit(code)
}
