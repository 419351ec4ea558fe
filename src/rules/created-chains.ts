// What the rule manager's first install created on the node (built-in chains, on nft the raw table) and their deletion once empty; it must never delete a chain or table that was there before us or that someone used since.
import type { Family } from '../config/types.js'
import type { Runner } from '../kernel/exec.js'
import type { Backend } from './backend.js'
import type { Iptables } from './iptables.js'
import { TABLE } from './plan.js'
import { builtinsInUse, builtinsToDelete } from './restore.js'
import type { SavedTable } from './save.js'

type LogFn = (msg: string, fields?: Record<string, unknown>) => void
export interface RuleLog {
  debug?: LogFn
  info?: LogFn
  warn?: LogFn
}

export const FAMILIES: readonly Family[] = ['ipv4', 'ipv6']
/** nft's name of each address family. */
const NFT_FAMILY: Record<Family, string> = { ipv4: 'ip', ipv6: 'ip6' }

/** The rule manager's bookkeeping; called only inside its serialised operations. */
export class CreatedChains {
  readonly #run: Runner
  readonly #iptables: Iptables
  readonly #log: RuleLog
  readonly #dryRun: boolean
  /** Per family, the built-in chains in use before this manager first installed (see builtinsToDelete). */
  readonly #before = new Map<Family, Set<string>>()
  /** Built-in chains (hooks) remove({ hooks: 'later' }) set aside for removeHooks(). */
  readonly #laterHooks = new Map<Family, string[]>()
  /**
   * nft: per family, whether `table ip|ip6 raw` existed before our first install (undefined: nft could
   * not tell). iptables-nft creates the table and never deletes it; stop deletes it if we created it.
   */
  readonly #rawTableBefore = new Map<Family, boolean | undefined>()

  constructor(o: { run: Runner; iptables: Iptables; log: RuleLog; dryRun: boolean }) {
    this.#run = o.run
    this.#iptables = o.iptables
    this.#log = o.log
    this.#dryRun = o.dryRun
  }

  /** What was there before we first touched a family: a removal deletes only what we created. */
  async noteBefore(backend: Backend, family: Family, table: SavedTable | undefined): Promise<void> {
    if (this.#before.has(family)) return
    this.#before.set(family, builtinsInUse(table))
    if (backend === 'nft') this.#rawTableBefore.set(family, await this.#nftRawTable(family))
  }

  /** The built-in chains a removal of this family may delete now; with 'later', set aside for removeHooks(). */
  builtinsFor(backend: Backend, family: Family, table: SavedTable | undefined, when: 'now' | 'later'): string[] {
    const builtins = backend === 'nft' ? builtinsToDelete(table, this.#before.get(family)) : []
    if (when === 'now') return builtins
    if (builtins.length > 0) this.#laterHooks.set(family, builtins)
    return []
  }

  /**
   * Deletes the built-in chains set aside, if they are still empty with policy ACCEPT, then (nft) the
   * raw tables we created. Best effort: a chain someone used meanwhile stays.
   */
  async removeHooks(backend: Backend): Promise<void> {
    for (const [family, chains] of this.#laterHooks) {
      this.#laterHooks.delete(family)
      try {
        const table = await this.#iptables.readRaw(backend, family)
        const empty = chains.filter(c => table?.chains.get(c) === 'ACCEPT' && !table.rules.some(r => r.chain === c))
        if (empty.length === 0) continue
        await this.#iptables.apply(backend, family, `*${TABLE}\n${empty.map(c => `-X ${c}`).join('\n')}\nCOMMIT\n`)
        this.#log.info?.(`remove ${family}: deleted the built-in chains our rules created`, { chains: empty })
      } catch (e) {
        this.#log.debug?.(`remove ${family}: kept the built-in chains ${chains.join(', ')}`, { error: String(e) })
      }
    }
    if (backend === 'nft') for (const family of FAMILIES) await this.dropCreatedTable(family)
  }

  /**
   * nft: the raw table of a family exists (true), does not (false), or nft cannot tell (undefined).
   * nft 1.0.6 answers `nft list tables [FAMILY]` only after fetching the whole ruleset (3.2 s and
   * 296 MiB beside 100k nat rules, 4.1 MiB beside none), and `nft list table ip raw` after fetching
   * every table's chains (7.0 MiB beside 10k foreign chains, 4.3 MiB beside none); `nft list sets
   * table ip raw` fetches sets alone (4.5 MiB, 4.0 MiB beside none; 2026-12-07) and fails with nft's
   * ENOENT, "No such file or directory", exactly when that table is missing. Any other failure: nft
   * cannot tell.
   */
  async #nftRawTable(family: Family): Promise<boolean | undefined> {
    try {
      const r = await this.#run(['nft', 'list', 'sets', 'table', NFT_FAMILY[family], TABLE])
      if (r.code === 0 && !r.timedOut) return true
      return !r.timedOut && /No such file or directory/.test(r.stderr) ? false : undefined
    } catch {
      return undefined // no nft binary: leave the table alone
    }
  }

  /**
   * Deletes the raw table of a family if our first install created it and it is empty now (no chain:
   * our base chains are gone), so the tables are left exactly as found. `nft delete table` would also
   * delete a chain someone added since the listing just before: that window is one command long.
   */
  async dropCreatedTable(family: Family): Promise<void> {
    if (this.#rawTableBefore.get(family) !== false || this.#dryRun) return
    const table = [NFT_FAMILY[family], TABLE]
    try {
      const r = await this.#run(['nft', 'list', 'table', ...table])
      if (
        r.code !== 0 ||
        r.timedOut ||
        /^\s*(chain|set|map|flowtable|ct|counter|quota|limit|synproxy)\s/m.test(r.stdout)
      )
        return
      const d = await this.#run(['nft', 'delete', 'table', ...table])
      if (d.code !== 0 || d.timedOut) throw new Error(d.stderr.trim() || `exit ${String(d.code)}`)
      this.#rawTableBefore.delete(family)
      this.#log.info?.(`remove ${family}: deleted the empty table ${table.join(' ')} our rules created`)
    } catch (e) {
      this.#log.debug?.(`remove ${family}: kept the empty table ${table.join(' ')}`, { error: String(e) })
    }
  }
}
