// The one rule for an interface name (--interfaces): what Linux accepts as a name (IFNAMSIZ: at most
// 15 characters; no '/', no white space, not '.' or '..'), from a conservative character set that
// iptables and a shell read literally, plus iptables' trailing '+' prefix wildcard. Pure; the only
// maker of an InterfaceName, so the rules never see a name this file did not check.
import { ConfigError } from '../errors.js'

declare const checked: unique symbol
/** An interface name interfaceFlag accepted: the rules take only these (no other code can build one). */
export type InterfaceName = string & { readonly [checked]: 'InterfaceName' }

const IFNAME = /^[A-Za-z0-9_.:@-]{1,15}$/
export const IFNAME_ACCEPTED =
  'interface names of 1-15 characters from A-Z a-z 0-9 _ . : @ -, not starting with -, optionally ending in + (prefix wildcard)'
export function isValidInterface(name: string): boolean {
  const base = name.endsWith('+') ? name.slice(0, -1) : name
  return name.length <= 15 && IFNAME.test(base) && !base.startsWith('-') && base !== '.' && base !== '..'
}

/** isValidInterface for a flag value: the name, or a ConfigError naming the flag. */
export function interfaceFlag(name: string, flag: string): InterfaceName {
  if (!isValidInterface(name))
    throw new ConfigError(flag, `${JSON.stringify(name)} is not an interface name`, IFNAME_ACCEPTED)
  return name as InterfaceName
}
