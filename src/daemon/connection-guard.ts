// Decides which connections an HTTP listener keeps, so that no client can starve the others: a cap
// per peer address, and at the total cap a newcomer may take an idle connection (no request in flight)
// from the peer that holds the most, when that peer holds more than the newcomer's would. It only
// admits, evicts and counts sockets; it never reads or answers requests.

/** What the guard needs of a socket (net.Socket has it; tests pass fakes). */
export interface GuardedSocket {
  readonly remoteAddress?: string | undefined
  destroy(): void
}

export interface GuardLimits {
  /** Open connections at most. */
  maxConnections: number
  /** Open connections of one peer address at most (a pod holding sockets half-sent keeps to its share). */
  maxPerPeer: number
}

export interface GuardCounts {
  /** Newcomers closed at once: their peer was at its cap, or every connection was busy or fairly held. */
  rejected: number
  /** Idle connections closed to make room for a newcomer of a peer holding fewer. */
  evicted: number
}

interface Entry {
  peer: string
  /** A request is being answered: never evicted. */
  busy: boolean
  /** Order of arrival or of the last answer: the oldest idle one goes first. */
  since: number
}

export class ConnectionGuard {
  readonly #limits: GuardLimits
  readonly #conns = new Map<GuardedSocket, Entry>()
  readonly #perPeer = new Map<string, Set<GuardedSocket>>()
  readonly counts: GuardCounts = { rejected: 0, evicted: 0 }
  #clock = 0

  constructor(limits: GuardLimits) {
    this.#limits = limits
  }

  get size(): number {
    return this.#conns.size
  }

  /** A new connection: keeps it (true), or destroys it (false), evicting another one if that is fair. */
  admit(socket: GuardedSocket): boolean {
    const peer = socket.remoteAddress ?? ''
    const mine = this.#perPeer.get(peer)?.size ?? 0
    if (mine >= this.#limits.maxPerPeer || (this.#conns.size >= this.#limits.maxConnections && !this.#evictFor(mine))) {
      this.counts.rejected++
      socket.destroy()
      return false
    }
    this.#conns.set(socket, { peer, busy: false, since: this.#clock++ })
    let set = this.#perPeer.get(peer)
    if (set === undefined) this.#perPeer.set(peer, (set = new Set()))
    set.add(socket)
    return true
  }

  /** A request arrived on the socket: it is not evicted until answered. */
  busy(socket: GuardedSocket): void {
    const e = this.#conns.get(socket)
    if (e !== undefined) e.busy = true
  }

  /** Its answer was sent: idle again (a keep-alive connection waiting for its next request). */
  idle(socket: GuardedSocket): void {
    const e = this.#conns.get(socket)
    if (e === undefined) return
    e.busy = false
    e.since = this.#clock++
  }

  /** The socket closed, whoever closed it. */
  forget(socket: GuardedSocket): void {
    const e = this.#conns.get(socket)
    if (e === undefined) return
    this.#conns.delete(socket)
    const set = this.#perPeer.get(e.peer)
    set?.delete(socket)
    if (set?.size === 0) this.#perPeer.delete(e.peer)
  }

  /**
   * Frees a slot for a newcomer whose peer holds `mine`: the oldest idle connection of the peer that
   * holds the most, if it holds at least two more (so equal shares never evict each other in a loop).
   */
  #evictFor(mine: number): boolean {
    const peers = [...this.#perPeer.values()].sort((a, b) => b.size - a.size)
    for (const set of peers) {
      if (set.size < mine + 2) return false
      let victim: GuardedSocket | undefined
      let since = Infinity
      for (const s of set) {
        const e = this.#conns.get(s)!
        if (!e.busy && e.since < since) {
          victim = s
          since = e.since
        }
      }
      if (victim === undefined) continue
      this.forget(victim)
      this.counts.evicted++
      victim.destroy()
      return true
    }
    return false
  }
}
