// Notices that the --config file changed, by polling a hash of its content (as CoreDNS's reload plugin
// polls its Corefile), and calls onChange once per new content. Kubernetes updates a mounted ConfigMap
// by swapping a symlink, so the file's mtime and an inotify watch on it are not reliable; its content
// is. It must not parse or apply the config (the daemon does that, the way SIGHUP does) and it never
// throws: a file that cannot be read is reported and polled again, and once it reads again it is
// applied again, whatever its content (the daemon counted the unreadable file as a failed reload).
import { errorMessage } from '../errors.js'

/** The timer part of a clock; tests inject a fake one and advance it. */
export interface WatchClock {
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

export const realClock: WatchClock = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms)
    // Polling must never be what keeps the process alive.
    t.unref()
    return t
  },
  clearTimeout: h => clearTimeout(h as NodeJS.Timeout),
}

/** CoreDNS's defaults: every 30 s, spread by a 15 s jitter (each wait 22.5..37.5 s). */
export const DEFAULT_POLL_INTERVAL_S = 30

export interface ConfigWatchOptions {
  path: string
  /** Mean time between two reads of the file; each wait is spread ±25 % around it. */
  intervalMs: number
  readFile: (path: string) => Buffer | string
  /**
   * The content differs from what was last applied (or last seen, after a failed apply), or the file
   * reads again after onError.
   */
  onChange: () => void
  /** The file could not be read; called once per distinct error until a read succeeds again. */
  onError: (err: unknown) => void
  clock?: WatchClock
  /** [0, 1), Math.random by default. */
  random?: () => number
}

/**
 * A 64-bit FNV-1a digest of the content, as 16 hex digits: what tells one version of the file from the
 * next. Not a cryptographic hash (a crafted collision could only delay a reload of the operator's own
 * file); sha256 would load node:crypto and OpenSSL, 1.3 MiB of the daemon's resident memory
 * (docs/deploy.md, "Resources"). About 1 ms per KiB under the image's --jitless.
 */
export function contentHash(data: Buffer | string): string {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data
  // The 64-bit state as four 16-bit limbs (v0 lowest), from the offset basis 0xcbf29ce484222325.
  let v0 = 0x2325
  let v1 = 0x8422
  let v2 = 0x9ce4
  let v3 = 0xcbf2
  for (const byte of bytes) {
    v0 ^= byte
    // h * 0x100000001b3 = h * 0x1b3 + (h << 40), modulo 2^64, limb by limb with the carries.
    const t0 = v0 * 0x1b3
    let t1 = v1 * 0x1b3
    let t2 = v2 * 0x1b3 + (v0 << 8)
    const t3 = v3 * 0x1b3 + (v1 << 8)
    t1 += t0 >>> 16
    t2 += t1 >>> 16
    v3 = (t3 + (t2 >>> 16)) & 0xffff
    v2 = t2 & 0xffff
    v1 = t1 & 0xffff
    v0 = t0 & 0xffff
  }
  return [v3, v2, v1, v0].map(v => v.toString(16).padStart(4, '0')).join('')
}

/**
 * The next wait: the interval plus a jitter of up to ±interval/4, so that the pods of a DaemonSet,
 * started together by a rollout, do not all read and reload at the same instant (CoreDNS: 30 s ± 7.5 s).
 */
export function nextDelayMs(intervalMs: number, random: () => number): number {
  return Math.round(intervalMs * (0.75 + 0.5 * random()))
}

export class ConfigWatcher {
  readonly #o: ConfigWatchOptions
  readonly #clock: WatchClock
  readonly #random: () => number
  #hash: string | undefined
  #timer: unknown
  #lastError: string | undefined
  #running = false

  constructor(opts: ConfigWatchOptions) {
    if (!(opts.intervalMs > 0)) throw new RangeError('ConfigWatcher: intervalMs must be positive')
    this.#o = opts
    this.#clock = opts.clock ?? realClock
    this.#random = opts.random ?? Math.random
  }

  /**
   * Takes the file's current content as applied (the daemon has just loaded it) and starts polling.
   * `appliedHash`, when given, is the hash of the exact text the daemon loaded: a change between that
   * load and this call is then not missed.
   */
  start(appliedHash?: string): void {
    if (this.#running) return
    this.#running = true
    this.#hash = appliedHash ?? this.#read()
    this.#schedule()
  }

  stop(): void {
    this.#running = false
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /** Some path (SIGHUP, or the poller's own onChange) has just applied content with this hash. */
  markApplied(hash: string): void {
    this.#hash = hash
  }

  /** One read; calls onChange when the content is new. Returns whether it did. The timer calls this. */
  poll(): boolean {
    const wasUnreadable = this.#lastError !== undefined
    const h = this.#read()
    if (h === undefined || (h === this.#hash && !wasUnreadable)) return false
    // Taken as seen before applying: a bad file is reported once, not on every poll, and the next
    // change (the fix) is noticed. The daemon keeps the running config when applying fails.
    this.#hash = h
    this.#o.onChange()
    return true
  }

  #read(): string | undefined {
    try {
      const h = contentHash(this.#o.readFile(this.#o.path))
      this.#lastError = undefined
      return h
    } catch (e) {
      const why = errorMessage(e)
      if (why !== this.#lastError) {
        this.#lastError = why
        this.#o.onError(e)
      }
      return undefined
    }
  }

  #schedule(): void {
    if (!this.#running) return
    this.#timer = this.#clock.setTimeout(
      () => {
        this.#timer = undefined
        if (!this.#running) return
        try {
          this.poll()
        } catch (e) {
          // onChange threw: report it like a read error rather than crash the daemon from a timer.
          this.#o.onError(e)
        } finally {
          this.#schedule()
        }
      },
      nextDelayMs(this.#o.intervalMs, this.#random),
    )
  }
}
