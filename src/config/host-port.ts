// The one host:port parser (--metrics-listen; the HTTP listener and `check` take its result). Pure.
import net from 'node:net'
import { ConfigError } from '../errors.js'

export interface HostPort {
  /** Without brackets: '127.0.0.1', '::1', 'node.example'. */
  host: string
  port: number
}

/** `HOST:PORT` with an IPv6 host in brackets ("[::1]:9363"); undefined when it is not one. Port 0 (any) parses. */
export function parseHostPort(text: string): HostPort | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):(\d+)$/.exec(text)
  const host = m?.[1] ?? m?.[2]
  const port = Number(m?.[3])
  if (!m || !host || !(port >= 0 && port <= 65535) || (m[1] !== undefined && net.isIP(m[1]) !== 6)) return undefined
  return { host, port }
}

/** --metrics-listen: HOST:PORT as given, or '' for off. */
export function parseListen(text: string, flag = '--metrics-listen'): string {
  if (text === '' || text === 'off') return ''
  const hp = parseHostPort(text)
  if (hp === undefined || hp.port === 0) {
    throw new ConfigError(flag, `"${text}" is not HOST:PORT`, '127.0.0.1:9363, [::1]:9363, 0.0.0.0:9363 or off')
  }
  return text
}
