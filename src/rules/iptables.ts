// The two iptables commands the rule manager runs, per backend and family: read the raw table (with
// counters, that table alone) and apply a transaction (restore --noflush, atomic). No rule logic;
// never a shell, and no command whose cost grows with other software's tables.
import type { Family } from '../config/types.js'
import type { Runner } from '../kernel/exec.js'
import { iptablesFailure, iptablesSpawnFailure, isIptablesError } from './errors.js'
import { binaries, type Backend } from './backend.js'
import { TABLE } from './plan.js'
import { parseRuleSpecs, parseSaveTable, type SavedTable } from './save.js'

export interface IptablesOptions {
  run: Runner
  /** Seconds iptables-restore waits for the xtables lock. */
  waitSeconds: number
  /** Timeout per command in ms (named in the error when it hits). */
  timeoutMs: number
  /** Read, but never restore. */
  dryRun: boolean
  /**
   * Reads a /proc file of the network namespace the commands run in; rejects when it cannot. Absent:
   * `cat` through `run` (the namespace a prefix or an injected runner stands for). The daemon passes
   * node's own read, so it needs no `cat` (the image has none).
   */
  readFile?: (path: string) => Promise<string>
  debug?: (msg: string, fields?: Record<string, unknown>) => void
}

export class Iptables {
  readonly #o: IptablesOptions
  /** Whether the restore binary accepted --wait (old iptables-restore < 1.6.2 does not). */
  #useWait = true
  /** Families whose legacy raw table is known to exist (a legacy table is never unloaded while in use). */
  readonly #legacyRaw = new Set<Family>()

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

  /**
   * The raw table of one family, with counters, and nothing else: a node's nat table can hold 100k
   * kube-proxy rules, and reading every table at each reconcile cost 435 MiB.
   *
   * nft: `iptables-nft -t raw -S -v` fetches the raw table's rules alone. `iptables-nft-save -t raw`
   * (with or without -c) prints only the raw table too, but iptables 1.8.9 fetches the whole nft
   * ruleset first: beside 100k nat rules its child took 0.33 s of CPU and 97 MiB of RSS, against
   * 0.00 s and 2.3 MiB beside an empty table; `-S -v` took 0.00 s and 2.4 MiB in both (2026-12-07).
   * The nft variant takes no xtables lock. `-S` prints the same rule text as save with counters as
   * `-c P B` (parseRuleSpecs reads it into the same SavedTable).
   *
   * Bound (test/integration/large-tables.ts): the programs the daemon runs against the tables, from
   * start through its reconciles, stay within 1.5x of their peak RSS and 2x (+ GNU time's 10 ms steps)
   * of their CPU beside an empty table, whatever other software put in the other tables.
   *
   * legacy: save stays: it reads the one table from the kernel (2.2-2.4 MiB beside 100k legacy nat
   * rules or none) and takes no xtables lock, where `iptables-legacy -S` would wait on it. `-t raw`
   * loads the raw table into the kernel when it is not there, so it is asked for only once the table
   * is known to exist (listed in /proc/net/ip_tables_names, or after one of our restores); a raw table
   * that does not exist holds nothing of ours.
   */
  async readRaw(backend: Backend, family: Family): Promise<SavedTable | undefined> {
    const bin = binaries(backend, family)
    if (backend === 'nft') return parseRuleSpecs(await this.#exec([bin.iptables, '-t', TABLE, '-S', '-v']))
    if (!(await this.#legacyRawExists(family))) return undefined
    return parseSaveTable(await this.#exec([bin.save, '-c', '-t', TABLE]), TABLE)
  }

  /**
   * Whether the legacy raw table of a family exists. Without root, /proc/net/ip_tables_names is
   * unreadable (CAP_NET_ADMIN/CAP_NET_RAW do not open it): then assume it does, so `-t raw` creates
   * it, which the install that follows needs anyway.
   */
  async #legacyRawExists(family: Family): Promise<boolean> {
    if (this.#legacyRaw.has(family)) return true
    const names = `/proc/net/${family === 'ipv6' ? 'ip6' : 'ip'}_tables_names`
    let listed = true
    try {
      listed = (await this.#readFile(names)).split('\n').includes(TABLE)
    } catch {
      // Unreadable (no permission, or cat could not run): assume the table exists.
    }
    if (listed) this.#legacyRaw.add(family)
    return listed
  }

  async #readFile(path: string): Promise<string> {
    if (this.#o.readFile !== undefined) return this.#o.readFile(path)
    const r = await this.#o.run(['cat', path])
    if (r.code !== 0 || r.timedOut) throw new Error(`cat ${path} failed: ${r.stderr.trim()}`)
    return r.stdout
  }

  async apply(backend: Backend, family: Family, input: string): Promise<void> {
    if (this.#o.dryRun) return
    await this.#restore(binaries(backend, family).restore, input)
    // Every transaction of ours is on the raw table: a legacy restore has created it if it was missing.
    if (backend === 'legacy') this.#legacyRaw.add(family)
  }

  async #restore(restore: string, input: string): Promise<void> {
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
