// Shaper: owns the native queues (one data-plane thread per queue) and the policy table they run,
// both taken from the plan. It never sees packets and compiles nothing; it starts, swaps the table,
// stops and reads counters.
import { Queue, type NativePolicy, type NativeQueue, type QueueStats } from './nfqueue.js'
import type { Plan } from '../plan/plan.js'
import { heldCapacity } from './limits.js'

export interface ShaperOptions {
  /** The queues to bind and the table to run (a plan's parts). */
  plan: Pick<Plan, 'queues' | 'policy'>
  /** Native queue factory; tests inject fakes. */
  createQueue?: (queue: number, onFatal: (err: NodeJS.ErrnoException) => void, maxHeld: number) => NativeQueue
  onFatal?: (queue: number, err: NodeJS.ErrnoException) => void
}

export class Shaper {
  #queues: { num: number; q: NativeQueue }[] = []
  #policy: NativePolicy
  readonly #bind: readonly number[]
  readonly #create: NonNullable<ShaperOptions['createQueue']>
  readonly #onFatal: NonNullable<ShaperOptions['onFatal']>

  constructor(opts: ShaperOptions) {
    this.#bind = opts.plan.queues
    this.#policy = opts.plan.policy
    this.#create = opts.createQueue ?? ((queue, onFatal, maxHeld) => new Queue({ queue, onFatal, maxHeld }))
    this.#onFatal = opts.onFatal ?? (() => {})
  }

  get policy(): NativePolicy {
    return this.#policy
  }

  /** Binds every configured queue; on failure unbinds the ones already bound and rethrows. */
  start(): void {
    // Sized once, at start, from the --max-held in force: a reload may raise it up to this capacity.
    const cap = heldCapacity(this.#policy.maxHeld)
    try {
      for (const num of this.#bind) {
        const q = this.#create(num, err => this.#onFatal(num, err), cap)
        q.start(this.#policy)
        this.#queues.push({ num, q })
      }
    } catch (e) {
      this.stop()
      throw e
    }
  }

  /** Swaps the table on every queue; held packets keep their deadlines. */
  reload(policy: NativePolicy): void {
    for (const { q } of this.#queues) q.setPolicy(policy)
    this.#policy = policy
  }

  /** Accepts everything held and unbinds. Idempotent; stats() still reads the final counters. */
  stop(): void {
    for (const { q } of this.#queues) q.stop()
  }

  get running(): boolean {
    return this.#queues.length > 0 && this.#queues.every(({ q }) => q.running)
  }

  stats(): { queue: number; stats: QueueStats }[] {
    return this.#queues.map(({ num, q }) => ({ queue: num, stats: q.stats() }))
  }
}
