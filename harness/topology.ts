// Builds the throwaway lab: client ─veth─ router ─bridge─ server(s), each in its own network namespace.
// Only documentation addresses, everything inside namespaces it creates; it must never touch the root namespace.

import { LAB_PREFIX, LabError, Netns, listNamespaces, makeLabId } from './netns.js'
import type { NetnsOptions } from './netns.js'
import { errorMessage } from './product.js'

/** Documentation addresses of the lab (RFC 5737 / RFC 3849). */
export const LAB_ADDR = {
  client: { ipv4: '198.51.100.2', ipv6: '2001:db8:1::2' },
  routerClientSide: { ipv4: '198.51.100.1', ipv6: '2001:db8:1::1' },
  routerServerSide: { ipv4: '203.0.113.1', ipv6: '2001:db8:2::1' },
  clientNet: { ipv4: '198.51.100.0/24', ipv6: '2001:db8:1::/64' },
  serverNet: { ipv4: '203.0.113.0/24', ipv6: '2001:db8:2::/64' },
  /** Server i (0 = the main server) is 203.0.113.(53+i) and 2001:db8:2::(53+i). */
  firstServerOctet: 53,
} as const

/** Interface names inside the namespaces (each namespace has its own name space, so they can repeat). */
export const LAB_IFACE = {
  client: 'eth0',
  routerClient: 'veth-c',
  routerBridge: 'br-s',
  server: 'eth0',
  routerServerPort: (i: number): string => `veth-s${i}`,
} as const

/** Role characters appended to the lab id: main server 's', extra servers '1'..'9','a'..'z'. */
const EXTRA_ROLES = '123456789abcdefghijklmnopqrstuvwxyz'
export const MAX_EXTRA_SERVERS = EXTRA_ROLES.length

export interface LabHost {
  role: string
  ns: Netns
  /** Namespace name (for `ip netns exec NAME`). */
  name: string
  iface: string
  ipv4: string
  ipv6: string
}

export interface LabRouter {
  ns: Netns
  name: string
  /** Interface facing the client (198.51.100.1). */
  clientIface: string
  /** Bridge facing the servers (203.0.113.1). */
  serverIface: string
  clientIpv4: string
  clientIpv6: string
  serverIpv4: string
  serverIpv6: string
}

export interface Lab {
  /** Prefix shared by all namespaces of this lab, e.g. `dnss-1a2b-x9k`. */
  id: string
  client: LabHost
  router: LabRouter
  /** servers[0]: 203.0.113.53. */
  server: LabHost
  /** The main server followed by the extra ones (203.0.113.54, .55, ...). */
  servers: LabHost[]
  /** Every namespace of the lab, client, router, servers. */
  namespaces: Netns[]
  /** Kills everything spawned in the lab and deletes its namespaces. Idempotent. */
  destroy(): Promise<void>
}

export interface LabOptions {
  /** Extra server namespaces behind the router (0..35, default 0). */
  extraServers?: number
  /** Lab id (default makeLabId()); namespaces are `${id}c`, `${id}r`, `${id}s`, `${id}1`... */
  id?: string
  /** Bound on waiting for links to come up (default 5000 ms). */
  settleTimeoutMs?: number
  /** Passed to every Netns (runner/spawner injection). */
  netns?: NetnsOptions
}

/** Address of server i (0-based). */
export function serverAddress(i: number): { ipv4: string; ipv6: string } {
  const n = LAB_ADDR.firstServerOctet + i
  if (!Number.isInteger(i) || i < 0 || n > 254) throw new LabError(`server index ${i} out of range`)
  // The decimal suffix is also a valid hex group, so the IPv6 address reads like the IPv4 one.
  return { ipv4: `203.0.113.${n}`, ipv6: `2001:db8:2::${n}` }
}

/** Namespace names of a lab with `extra` extra servers. */
export function labNamespaceNames(id: string, extra: number): { client: string; router: string; servers: string[] } {
  if (!Number.isInteger(extra) || extra < 0 || extra > MAX_EXTRA_SERVERS) {
    throw new LabError(`extraServers must be an integer 0..${MAX_EXTRA_SERVERS}, got ${extra}`)
  }
  const servers = [`${id}s`]
  for (let i = 0; i < extra; i++) servers.push(`${id}${EXTRA_ROLES[i]}`)
  return { client: `${id}c`, router: `${id}r`, servers }
}

/** Polls `check` until it returns true, at most timeoutMs; returns whether it did. */
export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, intervalMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  const maxTries = Math.max(1, Math.ceil(timeoutMs / intervalMs) + 1)
  for (let i = 0; i < maxTries; i++) {
    if (await check()) return true
    if (Date.now() >= deadline) break
    await new Promise(r => setTimeout(r, intervalMs))
  }
  return false
}

// No DAD: addresses must be usable at once, and no other host can own them.
const NO_DAD_SYSCTLS: Array<[string, number]> = [
  ['net.ipv6.conf.all.accept_dad', 0],
  ['net.ipv6.conf.default.accept_dad', 0],
]

async function prepare(ns: Netns): Promise<void> {
  for (const [k, v] of NO_DAD_SYSCTLS) await ns.sysctl(k, v)
}

async function addAddrs(ns: Netns, iface: string, v4: string, v6: string): Promise<void> {
  await ns.execOk(['ip', 'addr', 'add', v4, 'dev', iface])
  await ns.execOk(['ip', '-6', 'addr', 'add', v6, 'dev', iface, 'nodad'])
  await ns.execOk(['ip', 'link', 'set', iface, 'up'])
}

async function addDefaultRoutes(ns: Netns, v4: string, v6: string): Promise<void> {
  await ns.execOk(['ip', 'route', 'add', 'default', 'via', v4])
  await ns.execOk(['ip', '-6', 'route', 'add', 'default', 'via', v6])
}

/** True when iface is up with carrier and no IPv6 address is still tentative. */
async function linkReady(ns: Netns, iface: string): Promise<boolean> {
  const link = await ns.exec(['ip', '-o', 'link', 'show', 'dev', iface], { timeoutMs: 2000 })
  if (link.code !== 0 || !/[<,]LOWER_UP[,>]/.test(link.stdout)) return false
  const tent = await ns.exec(['ip', '-o', '-6', 'addr', 'show', 'dev', iface, 'tentative'], { timeoutMs: 2000 })
  return tent.code === 0 && tent.stdout.trim() === ''
}

/**
 * Creates the lab. On any failure everything created so far is removed before the error is thrown.
 *
 *   client 198.51.100.2 ── veth-c 198.51.100.1 [router] br-s 203.0.113.1 ── server 203.0.113.53 (+ .54, .55 ...)
 */
export async function createLab(opts: LabOptions = {}): Promise<Lab> {
  const extra = opts.extraServers ?? 0
  const id = opts.id ?? makeLabId()
  const names = labNamespaceNames(id, extra)
  const settle = opts.settleTimeoutMs ?? 5000
  const created: Netns[] = []
  const make = async (name: string): Promise<Netns> => {
    const ns = await Netns.create(name, opts.netns)
    created.push(ns)
    return ns
  }
  let destroying: Promise<void> | undefined
  const destroy = (): Promise<void> => {
    destroying ??= destroyAll(created)
    return destroying
  }

  try {
    const router = await make(names.router)
    const client = await make(names.client)
    const servers: Netns[] = []
    for (const n of names.servers) servers.push(await make(n))

    for (const ns of created) await prepare(ns)
    await router.sysctl('net.ipv4.ip_forward', 1)
    await router.sysctl('net.ipv6.conf.all.forwarding', 1)

    // Links are created from inside a lab namespace with the peer moved straight into its
    // neighbour, so no interface ever appears in the root namespace.
    await client.execOk([
      'ip',
      'link',
      'add',
      LAB_IFACE.client,
      'type',
      'veth',
      'peer',
      'name',
      LAB_IFACE.routerClient,
      'netns',
      router.name,
    ])
    await router.execOk([
      'ip',
      'link',
      'add',
      LAB_IFACE.routerBridge,
      'type',
      'bridge',
      'stp_state',
      '0',
      'forward_delay',
      '0',
      'mcast_snooping',
      '0',
    ])
    for (let i = 0; i < servers.length; i++) {
      const s = servers[i]!
      const port = LAB_IFACE.routerServerPort(i)
      await s.execOk([
        'ip',
        'link',
        'add',
        LAB_IFACE.server,
        'type',
        'veth',
        'peer',
        'name',
        port,
        'netns',
        router.name,
      ])
      await router.execOk(['ip', 'link', 'set', port, 'master', LAB_IFACE.routerBridge])
      await router.execOk(['ip', 'link', 'set', port, 'up'])
    }

    await addAddrs(
      router,
      LAB_IFACE.routerClient,
      `${LAB_ADDR.routerClientSide.ipv4}/24`,
      `${LAB_ADDR.routerClientSide.ipv6}/64`,
    )
    await addAddrs(
      router,
      LAB_IFACE.routerBridge,
      `${LAB_ADDR.routerServerSide.ipv4}/24`,
      `${LAB_ADDR.routerServerSide.ipv6}/64`,
    )
    await addAddrs(client, LAB_IFACE.client, `${LAB_ADDR.client.ipv4}/24`, `${LAB_ADDR.client.ipv6}/64`)
    await addDefaultRoutes(client, LAB_ADDR.routerClientSide.ipv4, LAB_ADDR.routerClientSide.ipv6)
    for (let i = 0; i < servers.length; i++) {
      const s = servers[i]!
      const a = serverAddress(i)
      await addAddrs(s, LAB_IFACE.server, `${a.ipv4}/24`, `${a.ipv6}/64`)
      await addDefaultRoutes(s, LAB_ADDR.routerServerSide.ipv4, LAB_ADDR.routerServerSide.ipv6)
    }

    const pending: Array<[Netns, string]> = [
      [client, LAB_IFACE.client],
      [router, LAB_IFACE.routerClient],
      [router, LAB_IFACE.routerBridge],
      ...servers.map((s): [Netns, string] => [s, LAB_IFACE.server]),
    ]
    for (const [ns, iface] of pending) {
      if (!(await waitFor(() => linkReady(ns, iface), settle))) {
        throw new LabError(`link ${iface} in ${ns.name} not ready after ${settle} ms`, {
          hint: 'check `ip netns exec ' + ns.name + ' ip addr`; raise settleTimeoutMs on a slow host',
        })
      }
    }

    const hosts: LabHost[] = servers.map((s, i) => ({
      role: i === 0 ? 'server' : `server${i}`,
      ns: s,
      name: s.name,
      iface: LAB_IFACE.server,
      ...serverAddress(i),
    }))
    return {
      id,
      client: { role: 'client', ns: client, name: client.name, iface: LAB_IFACE.client, ...LAB_ADDR.client },
      router: {
        ns: router,
        name: router.name,
        clientIface: LAB_IFACE.routerClient,
        serverIface: LAB_IFACE.routerBridge,
        clientIpv4: LAB_ADDR.routerClientSide.ipv4,
        clientIpv6: LAB_ADDR.routerClientSide.ipv6,
        serverIpv4: LAB_ADDR.routerServerSide.ipv4,
        serverIpv6: LAB_ADDR.routerServerSide.ipv6,
      },
      server: hosts[0]!,
      servers: hosts,
      namespaces: [...created],
      destroy,
    }
  } catch (e: unknown) {
    await destroy().catch(() => undefined)
    throw e
  }
}

/** Destroys all namespaces, collecting failures into one error after trying every one. */
async function destroyAll(list: readonly Netns[]): Promise<void> {
  const results = await Promise.allSettled(list.map(ns => ns.destroy()))
  const errors = results.flatMap(r =>
    r.status === 'rejected' ? [r.reason instanceof Error ? r.reason.message : String(r.reason)] : [],
  )
  if (errors.length > 0)
    throw new LabError(`lab cleanup incomplete: ${errors.join('; ')}`, {
      hint: 'list leftovers with listLabLeftovers()',
    })
}

/** Namespaces left by labs (any process), or only those of one lab id. */
export function listLabLeftovers(idOrPrefix: string = LAB_PREFIX): Promise<string[]> {
  return listNamespaces(idOrPrefix)
}

/**
 * A lab for a command-line run (benchmark, sweeps): Ctrl-C or SIGTERM destroys it and exits 130.
 * close() destroys it (a failure goes to `log`, the run's results are kept) and removes the handlers.
 */
export async function createRunLab(
  opts: LabOptions = {},
): Promise<{ lab: Lab; close: (log: (s: string) => void) => Promise<void> }> {
  const lab = await createLab(opts)
  const onSignal = (): void => {
    void lab.destroy().finally(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  return {
    lab,
    close: async log => {
      await lab.destroy().catch((e: unknown) => log(`lab cleanup: ${errorMessage(e)}`))
      process.removeListener('SIGINT', onSignal)
      process.removeListener('SIGTERM', onSignal)
    },
  }
}
