// The race probe's DNS server: answers every query on the given addresses with an empty NOERROR
// response (same id and question, QR and RA set). Enough for the probe, which only counts answers;
// it never resolves anything and never sends to anyone but the query's sender.
import dgram from 'node:dgram'
import { isIP } from 'node:net'

export interface Responder {
  /** Queries answered so far. */
  readonly answered: number
  close(): Promise<void>
}

/** The response to a query, or undefined for what is not a query (too short, or QR already set). */
export function answerFor(query: Buffer): Buffer | undefined {
  if (query.length < 12 || (query[2]! & 0x80) !== 0) return undefined
  const r = Buffer.from(query)
  r[2] = (r[2]! | 0x80) & ~0x04 // QR, keep OPCODE and RD, clear AA
  r[3] = 0x80 // RA, RCODE NOERROR
  // The query's sections are echoed as they are: a question, and an EDNS OPT record if it sent one.
  return r
}

export async function startResponder(addresses: readonly string[], port: number): Promise<Responder> {
  const sockets: dgram.Socket[] = []
  let answered = 0
  const close = async (): Promise<void> => {
    await Promise.all(sockets.map(s => new Promise<void>(res => s.close(() => res()))))
    sockets.length = 0
  }
  try {
    for (const address of addresses) {
      const family = isIP(address)
      if (family === 0) throw new Error(`responder: "${address}" is not an IP address`)
      const s = dgram.createSocket(family === 6 ? 'udp6' : 'udp4')
      s.on('message', (msg, rinfo) => {
        const r = answerFor(msg)
        if (r === undefined) return
        // Counted when sent, not in the callback: whoever asks right after the client got its answer
        // must see it counted. A send that fails is taken back.
        answered++
        s.send(r, rinfo.port, rinfo.address, err => {
          if (err) answered--
        })
      })
      // Errors after bind (ICMP unreachable reported on the socket) must not end the agent.
      s.on('error', () => {})
      sockets.push(s)
      await new Promise<void>((res, rej) => {
        s.once('error', rej)
        s.bind({ address, port, exclusive: true }, () => {
          s.off('error', rej)
          res()
        })
      })
    }
  } catch (e: unknown) {
    await close()
    throw e
  }
  return {
    get answered() {
      return answered
    },
    close,
  }
}
