// The race lab's topology: a kube-proxy-like DNS service (random DNAT to three unbound endpoints) on the lab
// router and the client namespace, switchable between kube-proxy modes. It touches only namespaces it creates.

import { join } from 'node:path'
import { LabError } from '../../harness/netns.js'
import type { Netns } from '../../harness/netns.js'
import { createLab, waitFor } from '../../harness/topology.js'
import type { Lab } from '../../harness/topology.js'
import { startUnbound } from '../../harness/unbound.js'
import { repoRoot } from '../../harness/paths.js'
import type { UnboundHandle } from '../../harness/unbound.js'
import { applyServiceMode, SERVICE, type ServiceMode } from './kube-proxy-modes.js'

/** A name every endpoint answers with A and AAAA (unbound local-data). */
export const LOOKUP_NAME = 'host1.example.test'
// The service rules live with the other kube-proxy modes; re-exported for the lab's callers.
export { SERVICE, serviceNatRules, type ServiceMode } from './kube-proxy-modes.js'
export const CLIENTS_DIR = join(repoRoot(), 'lab/clients')

// ---------------------------------------------------------------------------------------------
// Topology

export interface RaceLab {
  lab: Lab
  router: Netns
  client: Netns
  endpoints: { ipv4: string[]; ipv6: string[] }
  unbounds: UnboundHandle[]
  /** Current server-side SNAT setting. */
  snat: boolean
  /** Which kube-proxy mode translates the service now. */
  service: ServiceMode
  /** Switches the service to a kube-proxy mode (iptables, nftables, IPVS), with or without masquerade. */
  setService(mode: ServiceMode, snat: boolean): Promise<void>
  /** setService with the current mode. */
  setSnat(on: boolean): Promise<void>
  destroy(): Promise<void>
}

/**
 * resolv.conf options of the client: one attempt, 1 s timeout, so a dropped query shows as a lookup
 * slower than 1 s instead of libc's 5 s x 2 retries.
 */
export const RESOLV_OPTIONS = ['attempts:1', 'timeout:1'] as const

export async function createRaceLab(
  opts: { snat?: boolean; service?: ServiceMode; timeScale?: number } = {},
): Promise<RaceLab> {
  // timeScale stretches every readiness wait (links, unbound, the service check) for slow guests (TCG).
  const scale = opts.timeScale ?? 1
  const lab = await createLab({ extraServers: 2, settleTimeoutMs: 5000 * scale })
  const unbounds: UnboundHandle[] = []
  try {
    for (const s of lab.servers) {
      unbounds.push(
        await startUnbound({ ns: s.ns, addresses: [s.ipv4, s.ipv6], hosts: 10, readyTimeoutMs: 10_000 * scale }),
      )
    }
    const endpoints = { ipv4: lab.servers.map(s => s.ipv4), ipv6: lab.servers.map(s => s.ipv6) }
    const router = lab.router.ns
    let applied = false
    // The service address is on no link (IPVS mode binds it on kube-ipvs0): the client reaches it by
    // its default route and the router DNATs it in PREROUTING, before routing, as kube-proxy does.
    const rl: RaceLab = {
      lab,
      router,
      client: lab.client.ns,
      endpoints,
      unbounds,
      snat: false,
      service: 'iptables',
      async setService(mode: ServiceMode, snat: boolean): Promise<void> {
        const target = { router, service: SERVICE, endpoints, serverIface: lab.router.serverIface }
        await applyServiceMode(target, applied ? rl.service : undefined, mode, snat)
        applied = true
        rl.service = mode
        rl.snat = snat
      },
      setSnat(on: boolean): Promise<void> {
        return rl.setService(rl.service, on)
      },
      async destroy(): Promise<void> {
        await Promise.allSettled(unbounds.map(u => u.stop()))
        await lab.destroy()
      },
    }
    await rl.setService(opts.service ?? 'iptables', opts.snat ?? false)
    lab.client.ns.writeResolvConf([SERVICE.ipv4], { options: RESOLV_OPTIONS })
    // Prove the service path works on both families before measuring anything.
    for (const svc of [SERVICE.ipv4, SERVICE.ipv6]) {
      const ok = await waitFor(
        async () => {
          const r = await lab.client.ns.exec(['dig', `@${svc}`, '+time=1', '+tries=1', '+short', LOOKUP_NAME, 'A'], {
            timeoutMs: 3000,
          })
          return r.code === 0 && r.stdout.trim() !== ''
        },
        10_000 * scale,
        100,
      )
      if (!ok) throw new LabError(`DNS service ${svc} does not answer through the router's DNAT`)
    }
    return rl
  } catch (e: unknown) {
    await Promise.allSettled(unbounds.map(u => u.stop()))
    await lab.destroy().catch(() => undefined)
    throw e
  }
}
