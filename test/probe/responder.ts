// src/probe/responder.ts: the probe's DNS server answers each query once, from the address it was sent to.
import t from 'tap'
import dgram from 'node:dgram'
import { answerFor, startResponder } from '../../src/probe/responder.js'

// id 0xbeef, RD, one question: a.test AAAA IN.
const QUERY = Buffer.from('beef010000010000000000000161047465737400001c0001', 'hex')

t.test('answerFor: the query turned into an empty NOERROR response', async t => {
  const r = answerFor(QUERY)!
  t.equal(r.readUInt16BE(0), 0xbeef, 'same id')
  t.equal(r[2]! & 0x80, 0x80, 'QR set')
  t.equal(r[2]! & 0x01, 0x01, 'RD kept')
  t.equal(r[3], 0x80, 'RA, RCODE 0')
  t.same(r.subarray(4), QUERY.subarray(4), 'question echoed')
  t.equal(answerFor(r), undefined, 'a response is not answered')
  t.equal(answerFor(QUERY.subarray(0, 11)), undefined, 'shorter than a header')
})

t.test('startResponder: answers on each address, counts, closes', async t => {
  // The probe's server uses port 53 in its own namespace; here, in the test's, a high port.
  const port = 20053 + (process.pid % 1000)
  const r = await startResponder(['127.0.0.1'], port)
  const c = dgram.createSocket('udp4')
  const reply = new Promise<Buffer>(res => c.once('message', m => res(m)))
  c.send(QUERY, port, '127.0.0.1')
  const got = await reply
  t.equal(got.readUInt16BE(0), 0xbeef)
  t.equal(r.answered, 1, 'counted by the time the client has its answer')
  c.send(answerFor(QUERY)!, port, '127.0.0.1')
  c.send(QUERY.subarray(0, 5), port, '127.0.0.1')
  c.send(QUERY, port, '127.0.0.1')
  await new Promise<Buffer>(res => c.once('message', m => res(m)))
  t.equal(r.answered, 2, 'responses and runts are not answered')
  c.close()
  await r.close()
  await t.rejects(startResponder(['not-an-ip'], port), /not an IP address/)
})
