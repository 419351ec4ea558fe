// A timer clock for tests: timers run only when the test advances it, in deadline order. No real timers.
import type { WatchClock } from '../../src/config/watch.js'

export class FakeClock implements WatchClock {
  now = 0
  #timers = new Map<number, { at: number; fn: () => void }>()
  #next = 1
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++
    this.#timers.set(id, { at: this.now + ms, fn })
    return id
  }
  clearTimeout(h: unknown): void {
    this.#timers.delete(h as number)
  }
  get pending(): number[] {
    return [...this.#timers.values()].map(x => x.at - this.now)
  }
  advance(ms: number): void {
    const until = this.now + ms
    for (;;) {
      const due = [...this.#timers].filter(([, x]) => x.at <= until).sort((a, b) => a[1].at - b[1].at)[0]
      if (!due) break
      this.#timers.delete(due[0])
      this.now = due[1].at
      due[1].fn()
    }
    this.now = until
  }
}
