// Reads a small text file the config depends on (--config, the resolv.conf of --dns-ip auto) without
// ever blocking or growing with it: only a regular file, at most MAX_CONFIG_FILE_BYTES. A FIFO would
// block the event loop on open or read (probes and signals with it), a huge file would exhaust memory.
// It throws an Error saying what the path is; callers turn it into a ConfigError.
import fs from 'node:fs'

/** Far above any real config or resolv.conf (a few hundred bytes), far below a memory problem. */
export const MAX_CONFIG_FILE_BYTES = 1 << 20

function kindOf(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory'
  if (st.isFIFO()) return 'a FIFO'
  if (st.isSocket()) return 'a socket'
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device'
  return 'not a regular file'
}

/** The file's text (UTF-8), or an Error: not a regular file, or more than `maxBytes`. */
export function readConfigFile(path: string, maxBytes: number = MAX_CONFIG_FILE_BYTES): string {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer; fstat then refuses it.
  const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
  try {
    const st = fs.fstatSync(fd)
    if (!st.isFile()) throw new Error(`${path} is ${kindOf(st)}, not a regular file`)
    if (st.size > maxBytes) throw new Error(`${path} is ${st.size} bytes, more than the ${maxBytes} accepted`)
    // Read at most one byte more than allowed: a file that grew since fstat is caught too.
    const buf = Buffer.alloc(Math.min(maxBytes, st.size) + 1)
    let n = 0
    for (let r; n < buf.length && (r = fs.readSync(fd, buf, n, buf.length - n, null)) > 0;) n += r
    if (n > maxBytes) throw new Error(`${path} is more than the ${maxBytes} bytes accepted`)
    return buf.subarray(0, n).toString('utf8')
  } finally {
    fs.closeSync(fd)
  }
}
