// The probe's command line: flags -> ProbeOptions (node:util parseArgs through harness/args) and back
// (probeArgv), and the time bound a probe run gets. Pure: no network, no exit.
import { parseFlags, str, toggle, valued, type Flags } from './args.js'
import { PROBE_DEFAULTS, PROBE_LIMITS, PROBE_TYPES, type ProbeOptions, type ProbeType } from './probe-lib.js'

export class ProbeArgError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ProbeArgError'
  }
}

export const PROBE_USAGE = `usage: probe --server IP [--port 53] [--type A|AAAA|A,AAAA] [--name NAME | --names a,b,c]
             [--count N] [--interval-ms MS] [--timeout-ms MS] [--pair] [--fresh-socket]
             [--no-samples] [--max-duration-ms MS]
Prints one JSON object: {sent, received, lost, samples:[{seq, name, type, rttUs, rcode, answers}], byType, ...}`

function intArg(flag: string, v: string, min: number, max: number): number {
  if (!/^\d+$/.test(v)) throw new ProbeArgError(`${flag}: expected an integer ${min}..${max}, got "${v}"`)
  const n = Number(v)
  if (n < min || n > max) throw new ProbeArgError(`${flag}: expected an integer ${min}..${max}, got ${n}`)
  return n
}

function isIp(s: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(s) || (s.includes(':') && /^[0-9a-fA-F:.]+$/.test(s))
}

export function parseTypes(v: string): ProbeType[] {
  const out: ProbeType[] = []
  for (const raw of v.split(',')) {
    const t = raw.trim().toUpperCase()
    if (!(PROBE_TYPES as readonly string[]).includes(t)) {
      throw new ProbeArgError(`--type: unknown type "${raw}"; accepted: ${PROBE_TYPES.join(', ')}`)
    }
    out.push(t as ProbeType)
  }
  if (out.length === 0) throw new ProbeArgError('--type: empty')
  return out
}

function parseNames(v: string): string[] {
  const names = v
    .split(',')
    .map(s => s.trim())
    .filter(s => s.length > 0)
  if (names.length === 0 || names.length > PROBE_LIMITS.maxNames)
    throw new ProbeArgError(`--names: expected 1..${PROBE_LIMITS.maxNames} names`)
  for (const n of names) {
    if (n.length > 253 || !/^[A-Za-z0-9_.-]+$/.test(n)) throw new ProbeArgError(`--name: invalid name "${n}"`)
  }
  return names
}

const PROBE_FLAGS: Flags = {
  help: { type: 'boolean', short: 'h' },
  server: valued('an IPv4 or IPv6 address'),
  port: valued('a port 1..65535'),
  type: { type: 'string', needs: `types, comma separated: ${PROBE_TYPES.join(', ')}` },
  types: { type: 'string', needs: `types, comma separated: ${PROBE_TYPES.join(', ')}` },
  name: valued('a name'),
  names: valued('names, comma separated'),
  count: valued('a count'),
  'interval-ms': valued('milliseconds'),
  'timeout-ms': valued('milliseconds'),
  'max-duration-ms': valued('milliseconds'),
  pair: toggle,
  'fresh-socket': toggle,
  'no-samples': toggle,
}

/** Parses probe CLI flags (node:util parseArgs through harness/args). Throws ProbeArgError naming the flag. */
export function parseProbeArgs(argv: readonly string[]): ProbeOptions {
  const p = parseFlags(argv, PROBE_FLAGS)
  if ('error' in p) {
    if (argv.includes('--help') || argv.includes('-h')) throw new ProbeArgError(PROBE_USAGE)
    throw new ProbeArgError(`${p.error.replace(/ needs .*/, ': missing value')}\n${PROBE_USAGE}`)
  }
  const v = p.values
  if (v['help'] === true) throw new ProbeArgError(PROBE_USAGE)
  const o: ProbeOptions = { ...PROBE_DEFAULTS, types: [...PROBE_DEFAULTS.types], names: [...PROBE_DEFAULTS.names] }
  const server = str(v, 'server')
  if (server === undefined) throw new ProbeArgError('--server: required')
  if (!isIp(server)) throw new ProbeArgError(`--server: expected an IPv4 or IPv6 address, got "${server}"`)
  o.server = server
  const int = (flag: string, min: number, max: number, dflt: number): number => {
    const text = str(v, flag)
    return text === undefined ? dflt : intArg(`--${flag}`, text, min, max)
  }
  o.port = int('port', 1, 65535, o.port)
  o.count = int('count', 1, PROBE_LIMITS.maxCount, o.count)
  o.intervalMs = int('interval-ms', 0, PROBE_LIMITS.maxIntervalMs, o.intervalMs)
  o.timeoutMs = int('timeout-ms', 1, PROBE_LIMITS.maxTimeoutMs, o.timeoutMs)
  o.maxDurationMs = int('max-duration-ms', 1, PROBE_LIMITS.maxDurationMs, o.maxDurationMs)
  const types = str(v, 'types') ?? str(v, 'type')
  if (types !== undefined) o.types = parseTypes(types)
  const names = str(v, 'names') ?? str(v, 'name')
  if (names !== undefined) o.names = parseNames(names)
  if (v['pair'] === true) o.pair = true
  if (v['fresh-socket'] === true) o.freshSocket = true
  if (v['no-samples'] === true) o.samples = false
  if (o.pair && types === undefined) o.types = ['A', 'AAAA']
  return o
}

/** CLI arguments for `probe.js` that parseProbeArgs() turns back into the same options. */
export function probeArgv(opts: Partial<ProbeOptions> & { server: string }): string[] {
  const o = { ...PROBE_DEFAULTS, ...opts }
  if (opts.pair && !opts.types) o.types = ['A', 'AAAA']
  const a = ['--server', o.server, '--port', String(o.port), '--type', o.types.join(','), '--names', o.names.join(',')]
  a.push('--count', String(o.count), '--interval-ms', String(o.intervalMs), '--timeout-ms', String(o.timeoutMs))
  a.push('--max-duration-ms', String(o.maxDurationMs))
  if (o.pair) a.push('--pair')
  if (o.freshSocket) a.push('--fresh-socket')
  if (!o.samples) a.push('--no-samples')
  return a
}

/** Wall-clock bound (ms) a probe run with these options can take, plus slack. */
export function probeTimeBoundMs(opts: Partial<ProbeOptions>): number {
  const o = { ...PROBE_DEFAULTS, ...opts }
  if (opts.pair && !opts.types) o.types = ['A', 'AAAA']
  const perLookup = o.timeoutMs * (o.pair ? 1 : o.types.length) + o.intervalMs
  return Math.min(o.maxDurationMs + o.timeoutMs, o.count * perLookup) + 5000
}

/** A recursive-desired query for name/type with the given id. */
