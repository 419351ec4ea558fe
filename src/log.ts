// Structured logs: one JSON object per line on stderr, so a DaemonSet's log pipeline can parse them.
// Writes only; never throws.
import type { LogLevel } from './config/types.js'

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 }

export type Fields = Record<string, unknown>

export interface Logger {
  debug(msg: string, fields?: Fields): void
  info(msg: string, fields?: Fields): void
  warn(msg: string, fields?: Fields): void
  error(msg: string, fields?: Fields): void
}

export function createLogger(
  level: LogLevel = 'info',
  write: (line: string) => void = l => process.stderr.write(l),
): Logger {
  const min = ORDER[level]
  const emit = (lvl: LogLevel, msg: string, fields?: Fields): void => {
    if (ORDER[lvl] < min) return
    const rec: Fields = { time: new Date().toISOString(), level: lvl, msg, ...fields }
    for (const [k, v] of Object.entries(rec)) {
      if (v instanceof Error)
        rec[k] = { message: v.message, ...('code' in v ? { code: (v as NodeJS.ErrnoException).code } : {}) }
    }
    write(JSON.stringify(rec, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) + '\n')
  }
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  }
}

/** For tests and library use: swallows everything. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} }
