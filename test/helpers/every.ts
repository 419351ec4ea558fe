// One assertion per property over many inputs (every byte length, every label byte, every instruction):
// the inputs that break it are listed in the message, so a failure names them and the headline counts checks.
import type { Test } from 'tap'

/** Asserts `check` finds nothing wrong for every input; `check` returns why an input breaks the property. */
export function forEvery<T>(t: Test, what: string, inputs: Iterable<T>, check: (x: T) => string | undefined): void {
  const wrong: string[] = []
  let n = 0
  for (const x of inputs) {
    n++
    const why = check(x)
    if (why !== undefined) wrong.push(why)
  }
  t.same(wrong.slice(0, 20), [], `${what}: ${n} inputs, ${wrong.length} wrong`)
}

/** lo..hi inclusive. */
export function range(lo: number, hi: number): number[] {
  return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i)
}
