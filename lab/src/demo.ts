// The demo (`npm run demo`, entry lab/src/demo-cli.ts): a throwaway lab (client ─ router with the shaper ─ DNS server, each its own
// network namespace) that shows A passing and AAAA held, then removes everything it made, also on
// Ctrl-C. It never touches the host's own network namespace.
import { createLab, type Lab } from './topology.js'
import { startUnbound } from './unbound.js'
import { runProbeIn } from './probe-runner.js'
import type { ProbeResult } from './dns-probe-lib.js'
import { CLI_PATH } from './paths.js'

export interface DemoIo {
  out: (s: string) => void
  err: (s: string) => void
}

const CLI = CLI_PATH
const COUNT = 40

function ms(us: number | null | undefined): string {
  return us === null || us === undefined ? '-' : (us / 1000).toFixed(2)
}

export async function runDemo(argv: string[], io: DemoIo): Promise<number> {
  const delay = argv[0] === '--delay' && argv[1] ? Number(argv[1]) : 5
  if (process.getuid?.() !== 0) {
    io.err('demo: needs root (it creates network namespaces); run it with sudo\n')
    return 1
  }
  if (!CLI.endsWith('.js')) {
    io.err('demo: run the built lab (npm run demo) after `npm ci`\n')
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
    const child = l.router.ns.spawn(
      [process.execPath, CLI, 'run', '--delay', String(delay), '--hooks', 'prerouting', '--metrics-listen', 'off'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    )
    let log = ''
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`shaper did not become ready:\n${log}`)), 15000)
      child.stderr?.setEncoding('utf8')
      child.stderr?.on('data', (d: string) => {
        log += d
        if (log.includes('"msg":"ready"')) {
          clearTimeout(timer)
          resolve()
        }
      })
      child.once('exit', code => {
        clearTimeout(timer)
        reject(new Error(`shaper exited (${String(code)}):\n${log}`))
      })
    })
    await measure('on')
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the shaper exited early:\n${log}`)
    const exited = new Promise(r => child.once('exit', r))
    child.kill('SIGTERM')
    await exited
    const stopped = log.split('\n').find(x => x.includes('"msg":"stopped"'))
    const header = ['shaper', 'family', 'query', 'p50 ms', 'p99 ms', 'min ms', 'lost']
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
    const fmt = (r: string[]): string =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd() + '\n'
    io.out('\n' + fmt(header) + rows.map(fmt).join(''))
    if (stopped) {
      const s = JSON.parse(stopped) as Record<string, number>
      io.out(
        `\nshaper counted: ${s.accepted} accepted at once, ${s.held} held, ${s.malformed} malformed, ${s.bypassed} bypassed\n`,
      )
    }
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
