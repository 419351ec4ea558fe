// The integration tests' usual lab: client ─ router ─ unbound server (A and AAAA for the test names), made
// in tap's `before` and destroyed in its `teardown` with the test's own clean-up, and the daemon run on its
// router with metrics on the router's client-side address. Test-only (imports tap).
import t from 'tap'
import { createLab, type Lab } from './topology.js'
import { startUnbound } from './unbound.js'
import { DaemonProcess, fetchIn, type DaemonOptions } from './daemon.js'

export interface DnsLabOptions {
  /** Host names the server answers (default: unbound.ts's). */
  hosts?: number
  /** More set-up once the lab and its server run. */
  after?: (lab: Lab) => void | Promise<void>
  /** The test's own clean-up, after the lab is gone (temp dirs). */
  cleanup?: () => void | Promise<void>
}

/** Registers the lab's life cycle with tap; `set` receives the lab before any test runs. */
export function withDnsLab(set: (lab: Lab) => void, o: DnsLabOptions = {}): void {
  let made: Lab | undefined
  t.before(async () => {
    made = await createLab()
    set(made)
    const addresses = [made.server.ipv4, made.server.ipv6]
    await startUnbound({ ns: made.server.ns, addresses, ...(o.hosts !== undefined ? { hosts: o.hosts } : {}) })
    await o.after?.(made)
  })
  t.teardown(async () => {
    await made?.destroy()
    await o.cleanup?.()
  })
}

/** The metrics address the router daemon listens on: reachable from the router and the client. */
export const routerListen = (lab: Lab, port = 9363): string => `${lab.router.clientIpv4}:${port}`

/** `dns-shaper run --hooks prerouting --metrics-listen ROUTER:9363 ...args` in the lab router (not waited on). */
export function routerDaemon(lab: Lab, args: string[], opts: DaemonOptions = {}, port = 9363): DaemonProcess {
  return new DaemonProcess(
    lab.router.ns,
    ['run', '--hooks', 'prerouting', '--metrics-listen', routerListen(lab, port), ...args],
    opts,
  )
}

/** /metrics of whichever daemon listens on the router now ('' when none answers). */
export async function routerMetrics(lab: Lab, port = 9363): Promise<string> {
  const r = await fetchIn(lab.router.ns, `http://${routerListen(lab, port)}/metrics`)
  return r.code === 200 ? r.body : ''
}
