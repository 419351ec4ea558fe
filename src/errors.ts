// Error classes, type guards and operator-facing wording for failures. No I/O, no process exit (only cli.ts exits).

/** Bad flag, env var or config file value. The CLI exits 2 with `message` as its one line. */
export class ConfigError extends Error {
  override name = 'ConfigError'
  /** The flag as an operator types it, e.g. '--dns-ip'. */
  readonly flag: string
  /** Human description of what is accepted, e.g. 'prerouting,output'. */
  readonly accepted: string | undefined

  constructor(flag: string, problem: string, accepted?: string, options?: { cause?: unknown }) {
    super(`${flag}: ${problem}${accepted !== undefined ? ` (accepted: ${accepted})` : ''}`, options)
    this.flag = flag
    this.accepted = accepted
  }
}

export type IptablesFailureKind = 'missing' | 'permission' | 'locked' | 'timeout' | 'failed'

export interface IptablesErrorDetails {
  argv: readonly string[]
  kind: IptablesFailureKind
  /** Exit status; null when the command never ran or was killed. */
  exitCode?: number | null
  stderr?: string
  /** The iptables-restore input, when there was one. */
  input?: string
  cause?: unknown
}

/** An iptables / ip6tables / *-save / *-restore command failed. */
export class IptablesError extends Error {
  override name = 'IptablesError'
  readonly argv: readonly string[]
  readonly kind: IptablesFailureKind
  readonly exitCode: number | null
  readonly stderr: string
  /** Another program held the xtables lock for longer than we waited. */
  readonly locked: boolean
  readonly input: string | undefined

  constructor(message: string, details: IptablesErrorDetails) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause })
    this.argv = [...details.argv]
    this.kind = details.kind
    this.exitCode = details.exitCode ?? null
    this.stderr = details.stderr ?? ''
    this.locked = details.kind === 'locked'
    this.input = details.input
  }
}

export function isConfigError(e: unknown): e is ConfigError {
  return e instanceof ConfigError
}

export function isIptablesError(e: unknown): e is IptablesError {
  return e instanceof IptablesError
}

/** A Node system error (errno-ish: string `code` such as 'ENOENT'). */
export function isErrnoException(e: unknown): e is NodeJS.ErrnoException {
  return e instanceof Error && typeof (e as NodeJS.ErrnoException).code === 'string'
}

/** Exit status the CLI should use for an error: 2 for configuration, 1 for everything else. */
export function exitCodeFor(e: unknown): 1 | 2 {
  return isConfigError(e) ? 2 : 1
}

export interface ErrnoContext {
  /** What we were doing, e.g. 'bind metrics listener on 0.0.0.0:9100'. */
  action?: string
  /** Install hint shown for ENOENT of a program, e.g. 'install iptables (Debian: apt-get install iptables)'. */
  install?: string
}

const PRIVILEGE_HINT = 'run as root or with CAP_NET_ADMIN and CAP_NET_RAW'

const ERRNO_HINTS: Record<string, string> = {
  EACCES: `permission denied: ${PRIVILEGE_HINT}`,
  EPERM: `operation not permitted: ${PRIVILEGE_HINT}`,
  EADDRINUSE: 'address already in use: another process listens there; pick another address or stop it',
  EADDRNOTAVAIL: 'address not available on this host: use an address of a local interface',
  EBUSY: 'resource busy: another process holds it (for an NFQUEUE: another program is bound to the queue number)',
  ENOMEM: 'out of memory (or a kernel limit such as net.core.rmem_max/locked memory was hit)',
  ENOBUFS: 'kernel ran out of buffer space: raise the socket buffer or reduce load',
  ETIMEDOUT: 'timed out',
  EPROTONOSUPPORT:
    'protocol not supported by this kernel: load the module (e.g. nfnetlink_queue) or use a kernel that has it',
  EAFNOSUPPORT: 'address family not supported by this kernel (IPv6 disabled?)',
  EINVAL: 'invalid argument',
  EMFILE: 'too many open files: raise the file descriptor limit (ulimit -n)',
  ENFILE: 'too many open files system-wide',
}

/**
 * One line for an operator from an errno-ish failure: what failed, why, what to do.
 * Unknown errors keep their own message.
 */
export function describeError(e: unknown, ctx: ErrnoContext = {}): string {
  const prefix = ctx.action !== undefined ? `${ctx.action}: ` : ''
  if (isIptablesError(e) || isConfigError(e)) return prefix + e.message
  if (isErrnoException(e)) {
    const code = e.code ?? ''
    if (code === 'ENOENT') {
      if (e.syscall !== undefined && e.syscall.startsWith('spawn')) {
        const program = e.path ?? e.syscall.slice('spawn '.length)
        return `${prefix}${program} not found${ctx.install !== undefined ? `: ${ctx.install}` : ' in PATH'}`
      }
      return `${prefix}${e.path ?? 'file'} does not exist`
    }
    const hint = ERRNO_HINTS[code]
    if (hint !== undefined) {
      const where = e.path !== undefined ? ` (${e.path})` : ''
      return `${prefix}${hint}${where} [${code}]`
    }
    return `${prefix}${e.message}`
  }
  if (e instanceof Error) return prefix + e.message
  return prefix + String(e)
}

export const IPTABLES_INSTALL_HINT = 'install iptables (Debian: apt-get install iptables)'

/** Classify a failed iptables command from its exit status and stderr. */
export function classifyIptablesFailure(stderr: string, exitCode: number | null): IptablesFailureKind {
  // Order matters: the lock message of legacy restore comes with exit 4 like permission problems.
  if (/xtables lock|holding the xtables/i.test(stderr)) return 'locked'
  if (/permission denied|must be root|operation not permitted/i.test(stderr)) return 'permission'
  // `ip netns exec` reports a missing program on stderr instead of a spawn ENOENT.
  if (/exec of ".*" failed: No such file or directory/.test(stderr)) return 'missing'
  void exitCode
  return 'failed'
}

function firstLines(text: string, n: number): string {
  const lines = text
    .split('\n')
    .map(l => l.trim())
    .filter(l => l !== '' && !/^Try `.*--help/.test(l))
  return lines.slice(0, n).join('; ')
}

/** Build the operator-facing IptablesError for a command that ran and failed. */
export function iptablesFailure(
  argv: readonly string[],
  result: { code: number | null; stderr: string; timedOut?: boolean },
  opts: { input?: string; waitSeconds?: number; timeoutMs?: number } = {},
): IptablesError {
  const cmd = commandName(argv)
  if (result.timedOut === true) {
    return new IptablesError(`${cmd} did not finish within ${opts.timeoutMs ?? '?'} ms and was killed`, {
      argv,
      kind: 'timeout',
      exitCode: null,
      stderr: result.stderr,
      input: opts.input,
    })
  }
  const kind = classifyIptablesFailure(result.stderr, result.code)
  const detail = firstLines(result.stderr, 3)
  let message: string
  switch (kind) {
    case 'locked':
      message =
        `${cmd}: another program holds the xtables lock` +
        (opts.waitSeconds !== undefined ? ` and did not release it within ${opts.waitSeconds}s` : '') +
        '; retry later (in a container, mount the host /run/xtables.lock so waits are shared)'
      break
    case 'permission':
      message = `${cmd}: permission denied: ${PRIVILEGE_HINT}`
      break
    case 'missing':
      message = `${cmd} not found: ${IPTABLES_INSTALL_HINT}`
      break
    default:
      message = `${cmd} failed (${result.code === null ? 'killed' : `exit ${result.code}`})${detail !== '' ? `: ${detail}` : ''}`
  }
  return new IptablesError(message, {
    argv,
    kind,
    exitCode: result.code,
    stderr: result.stderr,
    input: opts.input,
  })
}

/** Build the IptablesError for a command that could not be started (spawn ENOENT/EACCES, ...). */
export function iptablesSpawnFailure(argv: readonly string[], e: unknown, input?: string): IptablesError {
  const cmd = commandName(argv)
  if (isErrnoException(e) && e.code === 'ENOENT') {
    const program = e.path ?? argv[0] ?? cmd
    const hint = program === 'ip' ? 'install iproute2 (Debian: apt-get install iproute2)' : IPTABLES_INSTALL_HINT
    return new IptablesError(`${program} not found: ${hint}`, { argv, kind: 'missing', cause: e, input })
  }
  if (isErrnoException(e) && (e.code === 'EACCES' || e.code === 'EPERM')) {
    return new IptablesError(`${cmd}: permission denied: ${PRIVILEGE_HINT}`, {
      argv,
      kind: 'permission',
      cause: e,
      input,
    })
  }
  return new IptablesError(`${cmd}: ${describeError(e)}`, { argv, kind: 'failed', cause: e, input })
}

/** The iptables program in an argv, skipping an `ip netns exec NS` style prefix. */
function commandName(argv: readonly string[]): string {
  const found = argv.find(a => /^ip6?tables/.test(a))
  return found ?? argv[0] ?? 'iptables'
}
