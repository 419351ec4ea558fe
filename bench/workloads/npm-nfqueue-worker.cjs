// Optional comparison: the npm `nfqueue` package (libnetfilter_queue + libuv poll, one JS callback
// per packet). Accepts everything, or holds DNS AAAA queries with setTimeout. Not a project dependency:
// NFQ_NPM_DIR points at an install outside the project (npm install --prefix /tmp/nfq-npm nfqueue).
'use strict'
const nfq = require(process.env.NFQ_NPM_DIR)
const [queueArg, mode, delayArg] = process.argv.slice(2)
const queue = Number(queueArg ?? 0)
const delay = Number(delayArg ?? 5)
const hold = mode === 'hold'
const st = { packets: 0, held: 0, accepted: 0, malformed: 0 }

/** qtype of the first question of an IPv4/IPv6 UDP DNS query, or -1. No extension headers. */
function qtype(p) {
  if (p.length < 1) return -1
  const v = p[0] >> 4
  let off = v === 4 ? (p[0] & 15) * 4 : v === 6 && p[6] === 17 ? 40 : -1
  if (off < 0) return -1
  off += 8 + 12 // UDP header, DNS header
  while (off < p.length && p[off] !== 0) {
    if ((p[off] & 0xc0) !== 0) return -1
    off += p[off] + 1
  }
  return off + 3 <= p.length ? p.readUInt16BE(off + 1) : -1
}

nfq.createQueueHandler(queue, 8 * 1024 * 1024, pkt => {
  st.packets++
  const t = qtype(pkt.payload)
  if (t < 0) st.malformed++
  if (hold && t === 28) {
    st.held++
    setTimeout(() => pkt.setVerdict(nfq.NF_ACCEPT), delay)
  } else {
    st.accepted++
    pkt.setVerdict(nfq.NF_ACCEPT)
  }
})
process.stderr.write(`npm-nfqueue: bound queue ${queue} mode ${hold ? 'hold' : 'accept'} delay_ms ${delay}\n`)
process.on('SIGTERM', () => {
  process.stderr.write(JSON.stringify(st) + '\n')
  process.exit(0)
})
