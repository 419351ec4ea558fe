#!/usr/bin/env node
// Command line: argv -> subcommand. main() returns an exit code (0 ok, 1 runtime problem, 2 bad usage
// or config); only the bottom of this file calls process.exit.
import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { loadConfig, reconcileIntervalFromEnv, RUN_FLAGS } from './config/load.js'
import { parseFlags } from './config/flags.js'
import { createLogger, type Logger } from './log.js'
import { errorMessage, exitCodeFor } from './errors.js'
import type { Config } from './config/types.js'
import { PROBE_USAGE } from './probe/usage.js'

const RUN_FLAGS_HELP = `run flags (each also as env DNS_SHAPER_<FLAG>, or a key of the --config file):
  --queue N                first NFQUEUE number (0)         --queues N       queues, balanced (1)
  --delay MS               hold for held types (5; fractions allowed)
  --qtypes LIST            held query types (AAAA; names or numbers, comma-separated)
  --mode pair|fixed        pair: release each AAAA right behind its A, at most --delay; fixed: hold --delay (pair)
  --pair-window MS         pair mode: an A this recent releases its AAAA at once (5)
  --rules manage|none      install rules at start, remove at stop (manage)
  --dns-port PORT (53)     --interfaces IF,...    --hooks prerouting,output
  --dns-ip CIDR,...|auto   shape DNS to these addresses only (any); auto: the nameservers of --resolv-conf
  --resolv-conf FILE       the resolv.conf --dns-ip auto reads (/etc/resolv.conf)
  --ipv4 on|off (on)       --ipv6 on|off (on)     off: no rules for that family, its iptables optional
  --iptables-backend auto|nft|legacy (auto)
  --kernel-filter auto|bpf|u32|off  classify in the kernel: bpf queues only held types (A too in
                           pair mode), u32 only queries, off everything; auto: bpf, else u32, else off
  --metrics-listen HOST:PORT|off (127.0.0.1:9363)   IPv6, and IPv4 if you like, in brackets: [::1]:9363
  --max-held N             beyond N held packets, accept at once and count (10000)
  --dry-run                classify and count, hold nothing
  --config FILE            JSON file with the flag names as keys, plus "holds": {"AAAA": 5}
  --config-poll-interval S read --config every S seconds (with jitter) and apply a change as SIGHUP
                           does (30; 0: on SIGHUP only)
  --log-level debug|info|warn|error (info)
`

export const USAGE = `dns-shaper: hold AAAA DNS queries behind their A to stop the conntrack A/AAAA race

usage:
  dns-shaper run [flags]              the daemon (flags below, or env DNS_SHAPER_<FLAG>, or --config FILE)
  dns-shaper rules print|install|remove [flags]
                                      the exact iptables-restore input, or install/remove it once
  dns-shaper check [--json] [--sample SECONDS] [--probe [--probe-pairs N]] [flags]
                                      can this node run the shaper, and does it need it?
  dns-shaper probe [--json] [--pairs N] [--serve HOST:PORT]
                                      measure whether this kernel drops conntrack clashes
  dns-shaper version | help [COMMAND]
  dns-shaper COMMAND --help           that command's usage

${RUN_FLAGS_HELP}`

/** `dns-shaper COMMAND --help` (or -h, or `help COMMAND`): that command's usage, on stdout, exit 0. */
export const COMMAND_USAGE: Record<string, string> = {
  run: `usage: dns-shaper run [flags]
  the daemon: binds the queue, installs the rules, shapes until SIGTERM; SIGHUP (or a changed
  --config file) reloads the config

${RUN_FLAGS_HELP}`,
  rules: `usage: dns-shaper rules print|install|remove [run flags]
  print    the exact iptables-restore input for this config (IPv4, then IPv6)
  install  install it once and exit (for operators who run the daemon with --rules none)
  remove   remove dns-shaper's rules, e.g. left behind by a killed daemon

${RUN_FLAGS_HELP}`,
  check: `usage: dns-shaper check [--json] [--sample SECONDS] [--probe [--probe-pairs N]] [run flags]
  can this node run the shaper, and does it need it? Read-only. Exit 0 ready, 1 problems.
  --json                   the report as JSON
  --sample SECONDS         how long to watch the conntrack clash counters (10; 0..3600)
  --probe                  also measure: provoke clashes in network namespaces of its own (never the
                           node's) and count what the kernel drops; the verdict then follows the
                           probe, not the kernel version table (needs CAP_SYS_ADMIN and two CPUs)
  --probe-pairs N          split-CPU A/AAAA pairs the probe sends (300; 2..20000)

${RUN_FLAGS_HELP}`,
  probe: PROBE_USAGE,
  version: `usage: dns-shaper version
  prints the version
`,
}

const isHelp = (a: string): boolean => a === '--help' || a === '-h'

export interface CliIo {
  out: (s: string) => void
  err: (s: string) => void
  env: NodeJS.ProcessEnv
}

const defaultIo: CliIo = {
  out: s => process.stdout.write(s),
  err: s => process.stderr.write(s),
  env: process.env,
}

async function version(): Promise<string> {
  const { createRequire } = await import('node:module')
  const pkg = createRequire(import.meta.url)('../package.json') as { version: string }
  return pkg.version
}

async function ruleManager(config: Config, log: Logger) {
  const { RuleManager } = await import('./rules/manager.js')
  return new RuleManager({
    config,
    log: {
      debug: (m: string, f?: Record<string, unknown>) => log.debug(m, f),
      info: (m: string, f?: Record<string, unknown>) => log.info(m, f),
      warn: (m: string, f?: Record<string, unknown>) => log.warn(m, f),
    },
  })
}

async function cmdRun(argv: string[], io: CliIo): Promise<number> {
  const loaded = loadConfig(argv, { env: io.env })
  const log = createLogger(loaded.config.logLevel, io.err)
  const { Daemon } = await import('./daemon/lifecycle.js')
  const { RuleManager } = await import('./rules/manager.js')
  const { ruleManagerRules } = await import('./rules/sync.js')
  const { guardExits } = await import('./daemon/exit-guard.js')
  const daemon = new Daemon({
    argv,
    reconcileIntervalMs: reconcileIntervalFromEnv(io.env),
    loaded,
    log,
    env: io.env,
    createRules: (config, l) =>
      ruleManagerRules(new RuleManager({ config, log: { debug: l.debug, info: l.info, warn: l.warn } })),
  })
  // Installed before start: a crash while installing must still release and unbind.
  guardExits(daemon, log)
  const onSignal = (sig: NodeJS.Signals): void => {
    void daemon.stop(sig)
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
  process.on('SIGHUP', () => {
    daemon.reload()
  })
  try {
    await daemon.start()
  } catch (e) {
    log.error('could not start', { err: errorMessage(e) })
    return exitCodeFor(e)
  }
  return daemon.done
}

async function cmdRules(argv: string[], io: CliIo): Promise<number> {
  const [action, ...rest] = argv
  if (action !== 'print' && action !== 'install' && action !== 'remove') {
    io.err(`dns-shaper rules: expected print, install or remove\n\n${COMMAND_USAGE.rules}`)
    return 2
  }
  const { config } = loadConfig(rest, { env: io.env })
  const log = createLogger(config.logLevel, io.err)
  const m = await ruleManager(config, log)
  if (action === 'print') {
    const { renderRestore } = await import('./rules/restore.js')
    if (config.ipv4) io.out(`# IPv4: iptables-restore --noflush\n${renderRestore(config, 'ipv4')}`)
    if (config.ipv6) io.out(`# IPv6: ip6tables-restore --noflush\n${renderRestore(config, 'ipv6')}`)
    return 0
  }
  const result = action === 'install' ? await m.install() : await m.remove()
  io.out(
    `${action}: backend ${result.backend.backend} (${result.backend.reason}); ` +
      result.families
        .map(f => `${f.family} ${f.skipped ? `skipped (${f.skipped})` : f.changed ? 'changed' : 'unchanged'}`)
        .join(', ') +
      '\n',
  )
  return 0
}

async function cmdCheck(argv: string[], io: CliIo): Promise<number> {
  const own = ['json', 'sample', 'probe', 'probe-pairs']
  const { values } = parseFlags(argv, [...RUN_FLAGS, ...own], new Set(['json', 'probe', 'dry-run', 'ipv4', 'ipv6']))
  const json = values.get('json') === 'true' || values.get('json') === true
  const probe = values.get('probe') === 'true' || values.get('probe') === true
  const sample = values.get('sample')
  const rest: string[] = []
  for (const [k, v] of values) if (!own.includes(k)) rest.push(`--${k}=${String(v)}`)
  const { config } = loadConfig(rest, { env: io.env })
  const sampleSeconds = sample === undefined ? undefined : Number(sample)
  if (sampleSeconds !== undefined && !(sampleSeconds >= 0 && sampleSeconds <= 3600)) {
    io.err(`--sample: "${String(sample)}" is not valid (accepted: seconds 0..3600)\n`)
    return 2
  }
  const { parseProbePairs } = await import('./probe/command.js')
  const probePairs = parseProbePairs(values.get('probe-pairs'), '--probe-pairs')
  const { runCheck } = await import('./check/run.js')
  const { systemProbesFor } = await import('./check/probes.js')
  const { renderJson, renderText } = await import('./check/render.js')
  const report = await runCheck(config, systemProbesFor(config, undefined, probePairs), { sampleSeconds, probe })
  io.out(json ? renderJson(report) : renderText(report))
  return report.exitCode
}

export async function main(argv: readonly string[], io: CliIo = defaultIo): Promise<number> {
  const [cmd, ...rest] = argv
  if (cmd !== undefined && Object.hasOwn(COMMAND_USAGE, cmd) && rest.some(isHelp)) {
    io.out(COMMAND_USAGE[cmd]!)
    return 0
  }
  try {
    switch (cmd) {
      case 'run':
        return await cmdRun(rest, io)
      case 'rules':
        return await cmdRules(rest, io)
      case 'check':
        return await cmdCheck(rest, io)
      case 'probe':
        return await (await import('./probe/command.js')).probeCommand(rest, io)
      case 'version':
      case '--version':
        io.out(`${await version()}\n`)
        return 0
      case 'help':
      case '--help':
      case '-h': {
        const topic = rest[0]
        if (topic !== undefined && !Object.hasOwn(COMMAND_USAGE, topic)) {
          io.err(`dns-shaper help: no command "${topic}" (accepted: ${Object.keys(COMMAND_USAGE).join(', ')})\n`)
          return 2
        }
        io.out(topic === undefined ? USAGE : COMMAND_USAGE[topic]!)
        return 0
      }
      case undefined:
        // Usage printed because of an error goes to stderr; asked for (help), to stdout.
        io.err(USAGE)
        return 2
      default:
        io.err(`dns-shaper: unknown command "${cmd}" (accepted: run, rules, check, probe, version, help)\n`)
        return 2
    }
  } catch (e) {
    // The one place an error becomes an exit status: 2 for configuration (ConfigError, PolicyError), else 1.
    io.err(`dns-shaper: ${errorMessage(e)}\n`)
    return exitCodeFor(e)
  }
}

function isEntryPoint(): boolean {
  try {
    return realpathSync(process.argv[1] ?? '') === realpathSync(fileURLToPath(import.meta.url))
  } catch {
    return false
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2)).then(
    code => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`dns-shaper: ${String(e)}\n`)
      process.exit(1)
    },
  )
}
