import t from 'tap'
import {
  isMissingQdiscError,
  workaroundMangleRules,
  workaroundTcCommands,
  WORKAROUND_U32,
} from '../../../lab/race/netem-workaround.js'

t.test('mangle rule: AAAA queries out of one interface, u32 + string as published, a mark bit', async t => {
  const r = workaroundMangleRules('br-s').split('\n')
  t.equal(r[0], '*mangle')
  t.match(r[1], /^-A POSTROUTING -o br-s -p udp --dport 53 -m u32 --u32 "[^"]+" /)
  t.match(r[1], /-m string --algo bm --from 40 --hex-string "\|00001c0001\|"/)
  t.match(r[1], /-j MARK --set-xmark 0x100\/0x100$/)
  t.equal(r[2], 'COMMIT')
})

t.test('tc: prio with a fourth band only the fw filter feeds, netem 4ms 1ms pareto on it', async t => {
  const c = workaroundTcCommands('eth0').map(a => a.join(' '))
  t.same(c, [
    'tc qdisc replace dev eth0 root handle 1: prio bands 4',
    'tc qdisc add dev eth0 parent 1:4 handle 40: netem delay 4ms 1ms distribution pareto',
    'tc filter add dev eth0 parent 1:0 protocol ip prio 1 handle 0x100/0x100 fw flowid 1:4',
  ])
  t.ok(isMissingQdiscError('Error: Specified qdisc kind is unknown.'))
  t.ok(isMissingQdiscError('Unknown qdisc "netem", hence option "delay" is unparsable'))
  t.notOk(isMissingQdiscError('Error: Exclusivity flag on, cannot modify.'))
})

// The u32 program, evaluated by hand over real query bytes: it must pick queries with one question
// and reject responses (QR set), whatever the IPv4 header length.
function u32Match(pkt: Buffer, expr: string): boolean {
  return expr.split('&&').every(test => {
    const m = /^0>>22&0x3C@(\d+)(?:&0x([0-9A-Fa-f]+))?(?:>>(\d+))?=(\w+)$/.exec(test)
    if (!m) throw new Error(`unsupported u32 test ${test}`)
    const ihl = (pkt.readUInt32BE(0) >>> 22) & 0x3c
    let v = pkt.readUInt32BE(ihl + Number(m[1]))
    if (m[2]) v = (v & parseInt(m[2], 16)) >>> 0
    if (m[3]) v = v >>> Number(m[3])
    return v === Number(m[4])
  })
}

function query(qtype: number, opts: { response?: boolean; ipOptions?: number } = {}): Buffer {
  const ihl = 5 + (opts.ipOptions ?? 0)
  const ip = Buffer.alloc(ihl * 4)
  ip[0] = 0x40 | ihl
  const udp = Buffer.alloc(8)
  const dns = Buffer.from([0x12, 0x34, opts.response ? 0x81 : 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0])
  const name = Buffer.from([4, ...Buffer.from('host'), 4, ...Buffer.from('test'), 0])
  const q = Buffer.from([qtype >> 8, qtype & 0xff, 0, 1])
  return Buffer.concat([ip, udp, dns, name, q])
}

t.test('the u32 program over real bytes', async t => {
  t.ok(u32Match(query(28), WORKAROUND_U32), 'AAAA query')
  t.ok(u32Match(query(1), WORKAROUND_U32), 'A query too: the string match tells them apart')
  t.ok(u32Match(query(28, { ipOptions: 2 }), WORKAROUND_U32), 'IPv4 options shift the offsets')
  t.notOk(u32Match(query(28, { response: true }), WORKAROUND_U32), 'responses are left alone')
  t.ok(query(28).subarray(40).includes(Buffer.from('00001c0001', 'hex')), 'AAAA hex string after the header')
  t.notOk(query(1).subarray(40).includes(Buffer.from('00001c0001', 'hex')), 'absent from an A query')
})
