// Shaper: owns the native queues (one data-plane thread per queue) and the policy they run.
// It never sees packets; it compiles policy, starts, reloads, stops and reads counters.
import { Queue, type NativePolicy, type NativeQueue, type QueueStats } from './nfqueue.js'
import { compilePolicy, type HoldRule } from './policy/compile.js'
import type { Config } from './config/types.js'
import { heldCapacity } from './limits.js'

export interface ShaperOptions {
  config: Config
  rules: HoldRule[]
  /** Native queue factory; tests inject fakes. */
  createQueue?: (queue: number, onFatal: (err: NodeJS.ErrnoException) => void, maxHeld: number) => NativeQueue
  onFatal?: (queue: number, err: NodeJS.ErrnoException) => void
}

export class Shaper {
  #queues: { num: number; q: NativeQueue }[] = []
  #policy: NativePolicy
  #config: Config
  readonly #capacity: number
  readonly #create: NonNullable<ShaperOptions['createQueue']>
  readonly #onFatal: NonNullable<ShaperOptions['onFatal']>

  constructor(opts: ShaperOptions) {
    this.#config = opts.config
    this.#policy = Shaper.compile(opts.config, opts.rules)
    this.#capacity = heldCapacity(opts.config.maxHeld)
    this.#create = opts.createQueue ?? ((queue, onFatal, maxHeld) => new Queue({ queue, onFatal, maxHeld }))
    this.#onFatal = opts.onFatal ?? (() => {})
  }

  static compile(config: Config, rules: HoldRule[]): NativePolicy {
    return compilePolicy({
      rules,
      dryRun: config.dryRun,
      mode: config.mode,
      pairWindowMs: config.pairWindowMs,
      maxHeld: config.maxHeld,
    })
  }

  get policy(): NativePolicy {
    return this.#policy
  }

  /** Held slots each queue preallocated at start: a reload may raise max-held up to this, not beyond. */
  get heldCapacity(): number {
    return this.#capacity
  }

  /** Binds every configured queue; on failure unbinds the ones already bound and rethrows. */
  start(): void {
    const cap = this.#capacity
    try {
      for (let i = 0; i < this.#config.queues; i++) {
        const num = this.#config.queue + i
        const q = this.#create(num, err => this.#onFatal(num, err), cap)
        q.start(this.#policy)
        this.#queues.push({ num, q })
      }
    } catch (e) {
      this.stop()
      throw e
    }
  }

  /** Swaps the policy on every queue; held packets keep their deadlines. */
  reload(config: Config, rules: HoldRule[]): void {
    const next = Shaper.compile(config, rules)
    for (const { q } of this.#queues) q.setPolicy(next)
    this.#policy = next
    this.#config = config
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
