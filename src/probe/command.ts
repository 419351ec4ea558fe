// `dns-shaper probe`: runs the race probe once, prints its verdict (a line of JSON with --json, for
// `kubectl logs`), and with --serve keeps its figures on /metrics until SIGTERM (the fleet survey).
// Returns an exit code; the CLI exits. It changes nothing outside the probe's own namespaces.
import { parseFlags } from '../config/flags.js'
import { parseHostPort } from '../config/host-port.js'
import { ConfigError } from '../errors.js'
import { MAX_PROBE_PAIRS } from './limits.js'
import { runProbe, type ProbeResult } from './run.js'

export interface ProbeCommandIo {
  out: (s: string) => void
  err: (s: string) => void
  env: NodeJS.ProcessEnv
}

export function parseProbePairs(v: string | boolean | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined
  const n = Number(v)
  if (!Number.isInteger(n) || n < 2 || n > MAX_PROBE_PAIRS)
    throw new ConfigError(flag, `"${String(v)}" is not valid`, `2..${MAX_PROBE_PAIRS}`)
  return n
}

/** The JSON line: what an operator greps from `kubectl logs`. */
export function probeJson(r: ProbeResult, node: string | undefined): string {
  return JSON.stringify({
    node,
    kernel: r.release,
    ...r.verdict,
    rules: r.rules,
    served: r.served,
    cpus: r.cpus,
    elapsedSeconds: r.elapsedSeconds,
  })
}

export function probeText(r: ProbeResult): string {
  const f = r.verdict.figures
  const figures =
    f === undefined
      ? ''
      : `\npairs ${f.pairs}, clashes ${f.clashes}, dropped ${f.dropped}, resolved ${f.resolved}, queries ${f.queries}, answered ${f.answered}`
  return `kernel ${r.release}: ${r.verdict.text}${figures} (${r.elapsedSeconds} s)\n`
}

export interface ProbeFlags {
  json: boolean
  pairs: number | undefined
  serve: string | undefined
}

/** `dns-shaper probe`'s flags; a bad one is a ConfigError naming it (exit 2). */
export function parseProbeFlags(argv: readonly string[]): ProbeFlags {
  const { values, positionals } = parseFlags(argv, ['json', 'pairs', 'serve'], new Set(['json']))
  if (positionals.length > 0)
    throw new ConfigError(
      positionals[0]!,
      'unexpected argument',
      'dns-shaper probe [--json] [--pairs N] [--serve HOST:PORT]',
    )
  const serve = values.get('serve')
  if (serve !== undefined && (typeof serve !== 'string' || parseHostPort(serve) === undefined))
    throw new ConfigError('--serve', `"${String(serve)}" is not HOST:PORT`, 'e.g. 0.0.0.0:9364 or [::]:9364')
  return {
    json: values.get('json') === true || values.get('json') === 'true',
    pairs: parseProbePairs(values.get('pairs'), '--pairs'),
    serve,
  }
}

export async function probeCommand(argv: readonly string[], io: ProbeCommandIo): Promise<number> {
  const { json, pairs, serve } = parseProbeFlags(argv)
  // The listener is checked before the probe runs: a taken port should not cost a probe run first.
  const { HttpServer } = await import('../daemon/http.js')
  let registryText: () => Promise<string> = () => Promise.resolve('')
  let contentType = 'text/plain'
  let done = false
  const http = new HttpServer({
    metrics: () => registryText(),
    get contentType() {
      return contentType
    },
    healthy: () => ({ ok: true, detail: 'probe process alive' }),
    ready: () => ({ ok: done, detail: done ? 'probe finished' : 'probe running' }),
  })
  if (typeof serve === 'string') await http.listen(serve)
  const node = io.env.NODE_NAME || undefined
  const result = await runProbe({ pairs, log: json ? undefined : l => io.err(`${l}\n`) })
  io.out(json ? `${probeJson(result, node)}\n` : probeText(result))
  const code = result.verdict.outcome === 'inconclusive' ? 1 : 0
  if (typeof serve !== 'string') {
    await http.close()
    return code
  }
  const { probeRegistry } = await import('./metrics.js')
  const registry = probeRegistry(result, node)
  registryText = () => registry.metrics()
  contentType = registry.contentType
  done = true
  // The survey's pod stays up so Prometheus can scrape it; SIGTERM (rollout, delete) ends it cleanly.
  await new Promise<void>(resolve => {
    process.once('SIGTERM', () => resolve())
    process.once('SIGINT', () => resolve())
  })
  await http.close()
  return 0
}
