// Test helper: a Config from DEFAULTS and plain overrides, every checked value made by its one parser in
// src/config (as config load makes it), so a test cannot hand the rules a value the daemon could not.
import type { Config, Hook } from '../../src/config/types.js'
import { DEFAULTS } from '../../src/config/load.js'
import { cidrFlag } from '../../src/config/cidr.js'
import { interfaceFlag } from '../../src/config/interface.js'
import { hookList, port, queueCount, queueNumber } from '../../src/config/values.js'
import { checkHolds, type Holds } from '../../src/config/holds.js'
import type { HoldRule } from '../../src/dataplane/policy.js'

type Checked = 'queue' | 'queues' | 'dnsPort' | 'dnsIp' | 'interfaces' | 'hooks'
/** Config fields as a test writes them: numbers and strings where Config holds checked types. */
export type ConfigOverrides = Omit<Partial<Config>, Checked> & {
  queue?: number
  queues?: number
  dnsPort?: number
  dnsIp?: string[]
  interfaces?: string[]
  hooks?: Hook[]
}

/** `base` with `over` applied; a checked value the parsers refuse throws their ConfigError. */
export function configWith<T extends Partial<Config> = Config>(over: ConfigOverrides = {}, base: T = DEFAULTS as T): T {
  const { queue, queues, dnsPort, dnsIp, interfaces, hooks, ...rest } = over
  const c: Partial<Config> = { ...base, ...rest }
  if (queue !== undefined) c.queue = queueNumber(String(queue), '--queue')
  if (queues !== undefined) c.queues = queueCount(String(queues), '--queues')
  if (dnsPort !== undefined) c.dnsPort = port(String(dnsPort), '--dns-port')
  if (dnsIp !== undefined) c.dnsIp = dnsIp.map(x => cidrFlag(x, '--dns-ip'))
  if (interfaces !== undefined) c.interfaces = interfaces.map(i => interfaceFlag(i, '--interfaces'))
  if (hooks !== undefined) c.hooks = hookList(hooks.join(','), '--hooks')
  return c as T
}

/** Hold rules through their one parser (src/config/holds.ts), as config load makes them. */
export function holds(rules: readonly HoldRule[]): Holds {
  return checkHolds(rules, '--delay')
}
