// Errors of the iptables commands the rule manager runs: the error class, and the operator-facing
// wording built from a failed command's exit status and stderr. No I/O, no process exit.
import { describeError, isErrnoException, OperatorError, PRIVILEGE_HINT } from '../errors.js'

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
export class IptablesError extends OperatorError {
  override name = 'IptablesError'
  readonly cliExitCode = 1
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

export function isIptablesError(e: unknown): e is IptablesError {
  return e instanceof IptablesError
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
