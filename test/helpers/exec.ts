// Test double support for the command runner: gives a fake that answers with whole stdout the streaming
// behaviour createRunner has (onStdoutLine). Never runs a command.
import { LineSplitter, type Runner } from '../../src/kernel/exec.js'

/** `fake`, but when the caller streams stdout, its answer is handed over line by line and stdout is ''. */
export function streamingFake(fake: Runner): Runner {
  return async (argv, opts) => {
    const r = await fake(argv, opts)
    if (opts?.onStdoutLine === undefined) return r
    const lines = new LineSplitter(opts.onStdoutLine)
    lines.push(r.stdout)
    lines.end()
    return { ...r, stdout: '' }
  }
}
