// A NativeQueue stand-in for tests of the TS layers: records calls, returns configurable stats.
import type { NativePolicy, NativeQueue, QueueStats } from '../../src/dataplane/nfqueue.js'
import { constants } from '../../src/dataplane/constants.js'

export function emptyStats(): QueueStats {
  const labels = [...constants.qtypeLabels.map(l => l.name), 'other', 'none']
  const row = (): Record<string, number> => Object.fromEntries(labels.map(l => [l, 0]))
  return {
    running: false,
    heldNow: 0,
    heldMax: 0,
    packets: Object.fromEntries(constants.actions.map(a => [a, row()])),
    parseFailures: Object.fromEntries(constants.parseReasons.map(r => [r, 0])),
    counters: Object.fromEntries(constants.counters.map(c => [c, 0])),
    hold: { buckets: new Array(constants.holdBucketsSeconds.length + 1).fill(0), sum: 0, count: 0 },
    latency: { buckets: new Array(constants.latencyBucketsSeconds.length + 1).fill(0), sum: 0, count: 0 },
  }
}

export class FakeQueue implements NativeQueue {
  policies: NativePolicy[] = []
  started = false
  stopped = 0
  failStart: Error | undefined
  readonly snapshot = emptyStats()
  constructor(
    readonly num: number,
    readonly onFatal: (e: NodeJS.ErrnoException) => void,
    readonly maxHeld: number,
  ) {}
  start(p: NativePolicy): void {
    if (this.failStart) throw this.failStart
    this.started = true
    this.snapshot.running = true
    this.policies.push(p)
  }
  setPolicy(p: NativePolicy): void {
    this.policies.push(p)
  }
  stop(): void {
    this.stopped++
    this.snapshot.running = false
  }
  get options(): NativeQueue['options'] {
    return { queue: this.num, copyRange: 512, maxLen: 131072, rcvbuf: 8 << 20, maxHeld: this.maxHeld, pairSlots: 4096 }
  }
  stats(): QueueStats {
    return structuredClone(this.snapshot)
  }
  get running(): boolean {
    return this.snapshot.running
  }
}
