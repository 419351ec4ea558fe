// The harness's one error type: a lab command failed, with its argv, stderr, exit code and what to try.
// Data only; it runs nothing.

/** A lab command failed: keeps the argv and stderr, and says what to try. */
export class LabError extends Error {
  readonly argv: string[]
  readonly stderr: string
  readonly exitCode: number | null
  readonly hint: string
  constructor(
    message: string,
    init: { argv?: string[]; stderr?: string; exitCode?: number | null; hint?: string } = {},
  ) {
    const hint = init.hint ?? ''
    super(hint ? `${message} (${hint})` : message)
    this.name = 'LabError'
    this.argv = init.argv ?? []
    this.stderr = init.stderr ?? ''
    this.exitCode = init.exitCode ?? null
    this.hint = hint
  }
}

export function isLabError(e: unknown): e is LabError {
  return e instanceof LabError
}
