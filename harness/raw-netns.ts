// Bare namespaces made with `ip netns add` by tests that drive iptables themselves (no lab topology):
// tracked so each is deleted in its teardown and, as a last resort, when the process exits.
// It deletes only the names it was given; it never lists or touches other namespaces.
import { execFileSync } from 'node:child_process'

export class RawNamespaces {
  readonly live = new Set<string>()

  constructor() {
    // Last resort if the process dies between `ip netns add` and the teardown.
    process.on('exit', () => {
      for (const ns of [...this.live]) this.delete(ns)
    })
  }

  add(ns: string): void {
    this.live.add(ns)
  }

  delete(ns: string): void {
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' })
    } catch {
      // already gone
    }
    this.live.delete(ns)
  }
}
