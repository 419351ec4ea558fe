// `--dns-ip auto`: the DNS service addresses are the nameservers of a resolv.conf (in a pod with
// dnsPolicy ClusterFirstWithHostNet, the one kubelet writes from its --cluster-dns). Parsing is pure; the
// read is injected. A missing, unreadable or empty file is a ConfigError: it must never turn into
// "shape DNS to any address".
import { ConfigError, errorMessage } from '../errors.js'
import { parseCidr, type CidrText } from './cidr.js'

export const DEFAULT_RESOLV_CONF = '/etc/resolv.conf'

export interface ResolvConfNameservers {
  /** Canonical CIDRs (/32, /128) in file order, without repeats. */
  cidrs: CidrText[]
  /** nameserver values left out, each with the reason (for the start-up log). */
  ignored: { value: string; why: string }[]
}

const LOOPBACK = /^(127\.|::1$)/

/**
 * The `nameserver` lines of a resolv.conf, read the way glibc and musl read them: the keyword at the
 * start of a line, the address as the next word, anything after it ignored; `#` and `;` start comments.
 * An IPv6 zone (`fe80::1%eth0`) is dropped: iptables matches the address only. Loopback addresses (a
 * local stub such as systemd-resolved's 127.0.0.53) are left out: traffic to them never crosses the
 * raw table's PREROUTING, and a stub means this is not the resolv.conf that names the DNS service.
 */
export function parseResolvConf(text: string): ResolvConfNameservers {
  const cidrs: CidrText[] = []
  const ignored: { value: string; why: string }[] = []
  for (const line of text.split('\n')) {
    const m = /^nameserver[ \t]+([^ \t\r#;]+)/.exec(line)
    if (!m) continue
    const value = m[1]!
    const addr = value.replace(/%.*$/, '')
    const cidr = parseCidr(addr)
    if (cidr === undefined || addr.includes('/')) {
      ignored.push({ value, why: 'not an IP address' })
      continue
    }
    if (LOOPBACK.test(addr)) {
      ignored.push({ value, why: 'loopback (a local stub resolver, not the DNS service)' })
      continue
    }
    if (!cidrs.includes(cidr.text)) cidrs.push(cidr.text)
  }
  return { cidrs, ignored }
}

const AUTO_ACCEPTED =
  'a resolv.conf naming the DNS service (in Kubernetes: dnsPolicy ClusterFirstWithHostNet), or explicit --dns-ip addresses'

/** Resolves `--dns-ip auto` from `path`, or throws a ConfigError that says what to fix. */
export function nameserversFrom(
  path: string,
  readFile: (path: string) => string,
  flag = '--dns-ip',
): ResolvConfNameservers {
  let text: string
  try {
    text = readFile(path)
  } catch (e) {
    const why = errorMessage(e)
    throw new ConfigError(flag, `auto: cannot read ${path} (${why})`, AUTO_ACCEPTED, { cause: e })
  }
  const found = parseResolvConf(text)
  if (found.cidrs.length === 0) {
    const left = found.ignored.map(i => `${i.value}: ${i.why}`).join('; ')
    throw new ConfigError(
      flag,
      `auto: ${path} names no usable nameserver${left ? ` (${left})` : ''}; shaping every address instead would be a guess`,
      AUTO_ACCEPTED,
    )
  }
  return found
}
