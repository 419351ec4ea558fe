// The two iptables commands the rule manager runs, per backend and family: read the raw table (save,
// with counters) and apply a transaction (restore --noflush, atomic). No rule logic; never a shell.
import type { Family } from '../config/types.js'
import type { Runner } from '../kernel/exec.js'
import { iptablesFailure, iptablesSpawnFailure, isIptablesError } from './errors.js'
import { binaries, type Backend } from './backend.js'
import { TABLE } from './plan.js'
import { parseSave, type SavedTable } from './save.js'

export interface IptablesOptions {
  run: Runner
  /** Seconds iptables-restore waits for the xtables lock. */
  waitSeconds: number
  /** Timeout per command in ms (named in the error when it hits). */
  timeoutMs: number
  /** Read, but never restore. */
  dryRun: boolean
  debug?: (msg: string, fields?: Record<string, unknown>) => void
}

export class Iptables {
  readonly #o: IptablesOptions
  /** Whether the restore binary accepted --wait (old iptables-restore < 1.6.2 does not). */
  #useWait = true

  constructor(o: IptablesOptions) {
    this.#o = o
  }

  async #exec(argv: string[], input?: string): Promise<string> {
    let res
    try {
      res = await this.#o.run(argv, input === undefined ? {} : { input })
    } catch (e) {
      throw iptablesSpawnFailure(argv, e, input)
    }
    if (res.code === 0 && !res.timedOut) return res.stdout
    throw iptablesFailure(argv, res, { input, waitSeconds: this.#o.waitSeconds, timeoutMs: this.#o.timeoutMs })
  }

  /** The raw table of one family, with counters. */
  async readRaw(backend: Backend, family: Family): Promise<SavedTable | undefined> {
    const save = binaries(backend, family).save
    // legacy: `-t raw` would load the raw table into the kernel even when nothing is there, so
    // read everything and pick raw out. nft: `-t raw` has no side effect and is much smaller.
    if (backend === 'nft') return parseSave(await this.#exec([save, '-c', '-t', TABLE])).get(TABLE)
    try {
      return parseSave(await this.#exec([save, '-c'])).get(TABLE)
    } catch (e) {
      // Without -t, legacy save lists tables from /proc/net/ip_tables_names, which only root may
      // read: a daemon with just CAP_NET_ADMIN/CAP_NET_RAW is refused. Asking for raw directly
      // works; it loads the raw table, which the install that follows needs anyway.
      if (!(isIptablesError(e) && e.kind === 'permission')) throw e
      return parseSave(await this.#exec([save, '-c', '-t', TABLE])).get(TABLE)
    }
  }

  async apply(backend: Backend, family: Family, input: string): Promise<void> {
    if (this.#o.dryRun) return
    const restore = binaries(backend, family).restore
    if (this.#useWait) {
      const argv = [restore, '--noflush', `--wait=${this.#o.waitSeconds}`]
      try {
        await this.#exec(argv, input)
        return
      } catch (e) {
        if (!(isIptablesError(e) && /(unrecognized|invalid|unknown) option.*(w|wait)/.test(e.stderr))) throw e
        this.#o.debug?.(`${restore} does not know --wait; retrying without`)
        this.#useWait = false
      }
    }
    await this.#exec([restore, '--noflush'], input)
  }
}
