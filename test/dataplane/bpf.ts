// Kernel filter program (src/dataplane/bpf.ts) and the cBPF interpreter (test/helpers/cbpf-interp.ts):
// a differential test against the native parser over vectors, captures, a Kubernetes query mix,
// random queries and mutants. The one property that must hold: no packet the parser would hold is
// kept out of the queue by the program. Pure: no root, no sockets.
import t from 'tap'
import { parsePacket } from '../../src/dataplane/nfqueue.js'
import { compilePolicy, heldQtypes } from '../../src/dataplane/policy.js'
import { queuedQtypes } from '../../src/dataplane/qtypes.js'
import type { NativePolicy } from '../../src/dataplane/nfqueue.js'
import {
  BPF,
  BPF_MATCH,
  BpfError,
  XT_BPF_MAX_NUM_INSTR,
  bpfMatchArgs,
  buildFilter,
  bytecodeText,
  disassemble,
  filterForPolicy,
  parseBytecode,
  u32MatchArgs,
  type BpfInsn,
  type FilterProgram,
} from '../../src/dataplane/bpf.js'
import { CbpfError, checkProgram, matches, runProgram } from '../helpers/cbpf-interp.js'
import { corpus, k8sMix, searchExpansion, u32Matches, u32RulesMatch } from '../helpers/bpf-corpus.js'
import { dnsQuery, ipv4Udp, ipv6Udp, qtail, rawDns, wireName } from '../helpers/packets.js'

const SEED = Number(process.env.DNS_SHAPER_BPF_SEED ?? 20240611)
const RANDOMS = Number(process.env.DNS_SHAPER_BPF_RANDOMS ?? 4000)
const MUTATIONS = Number(process.env.DNS_SHAPER_BPF_MUTATIONS ?? 12000)

const base = { dryRun: false, mode: 'fixed' as const, pairWindowMs: 5, maxHeld: 100 }
const POLICIES = [
  { name: 'AAAA (default)', policy: compilePolicy({ ...base, rules: [{ qtype: 28, holdMs: 5 }] }) },
  {
    name: 'AAAA+HTTPS',
    policy: compilePolicy({
      ...base,
      rules: [
        { qtype: 28, holdMs: 5 },
        { qtype: 65, holdMs: 2 },
      ],
    }),
  },
  { name: 'AAAA pair mode', policy: compilePolicy({ ...base, mode: 'pair', rules: [{ qtype: 28, holdMs: 5 }] }) },
  { name: 'AAAA held 0 ms', policy: compilePolicy({ ...base, rules: [{ qtype: 28, holdMs: 0 }] }) },
  {
    name: 'five types',
    policy: compilePolicy({ ...base, rules: [28, 64, 65, 5, 16].map(qtype => ({ qtype, holdMs: 3 })) }),
  },
]

function familyOf(pkt: Buffer): 'ipv4' | 'ipv6' | undefined {
  const v = pkt.length > 0 ? pkt[0]! >> 4 : 0
  return v === 4 ? 'ipv4' : v === 6 ? 'ipv6' : undefined
}

/** What the daemon would do with the packet: hold iff a query whose QTYPE has a hold class. */
function held(pkt: Buffer, table: Uint8Array): boolean {
  const p = parsePacket(pkt)
  return p.kind === 'query' && (table[p.qtype] ?? 0) > 0
}

const packets = corpus(SEED, RANDOMS, MUTATIONS)

t.test('programs fit xt_bpf and pass the kernel checks', async t => {
  for (const { name, policy } of POLICIES) {
    for (const family of ['ipv4', 'ipv6'] as const) {
      const p = filterForPolicy(policy, family)!
      t.ok(
        p.insns.length <= XT_BPF_MAX_NUM_INSTR,
        `${name} ${family}: ${p.insns.length} instructions, ${p.labels} labels`,
      )
      t.doesNotThrow(() => checkProgram(p.insns, XT_BPF_MAX_NUM_INSTR))
      for (const [pc, i] of p.insns.entries()) {
        if ((i.code & 0x07) === BPF.JMP) t.ok(pc + 1 + Math.max(i.jt, i.jf) < p.insns.length, 'forward jumps only')
      }
      t.same(parseBytecode(bytecodeText(p.insns)), p.insns, 'bytecode text round-trips')
    }
  }
  const aaaa = filterForPolicy(POLICIES[0]!.policy, 'ipv4')!
  t.equal(aaaa.insns.length, 62)
  t.equal(aaaa.labels, 8, 'IPv4, AAAA only: names of up to 8 labels are decided in the kernel')
  t.equal(filterForPolicy(POLICIES[0]!.policy, 'ipv6')!.labels, 9, 'IPv6 has no IHL to load: one more label')
  t.comment(`AAAA-only IPv4 program:\n${disassemble(aaaa.insns)}`)
})

// The kernel filter asks the one function the rules ask (dataplane/qtypes.ts) about a compiled table.
const queuedTypes = (p: NativePolicy): number[] => queuedQtypes(heldQtypes(p), p.pair)

t.test('queued types', async t => {
  t.same(queuedTypes(POLICIES[0]!.policy), [28])
  t.same(queuedTypes(POLICIES[2]!.policy), [1, 28], 'pair mode must see the A that releases the AAAA')
  t.same(queuedTypes(POLICIES[3]!.policy), [28], 'a 0 ms hold is still a hold class')
  t.same(
    queuedTypes(compilePolicy({ ...base, mode: 'pair', rules: [] })),
    [],
    'nothing held: nothing queued, not even A',
  )
  t.equal(filterForPolicy(compilePolicy({ ...base, rules: [] }), 'ipv4'), undefined)
})

t.test(`differential: program vs parser (seed ${SEED}, ${packets.length} packets)`, async t => {
  const total: Record<string, number> = {}
  for (const { name, policy } of POLICIES) {
    const progs = { ipv4: filterForPolicy(policy, 'ipv4')!, ipv6: filterForPolicy(policy, 'ipv6')! }
    const queued = new Set(queuedTypes(policy))
    const escapes: string[] = []
    const stats = { held: 0, notHeld: 0, notHeldQueued: 0, exact: 0, exactWrong: [] as string[] }
    for (const c of packets) {
      const fam = familyOf(c.packet)
      const h = held(c.packet, policy.table)
      if (fam === undefined) {
        // ip(6)tables never hands such a packet to the program; the parser must not hold it either.
        if (h) escapes.push(`${c.name}: held but not IPv4/IPv6`)
        continue
      }
      const m = matches(progs[fam].insns, c.packet)
      if (h) {
        stats.held++
        if (!m) escapes.push(`${c.name} (${c.source}): ${c.packet.toString('hex')}`)
      } else {
        stats.notHeld++
        if (m) stats.notHeldQueued++
      }
      // Where the program can decide (an uncompressed question of few labels right behind UDP), it must
      // decide exactly like the parser, in both directions (pair mode also queues A, on purpose).
      const p = parsePacket(c.packet)
      const plainV6 = fam === 'ipv4' || c.packet[6] === 17
      if (p.kind === 'query' && !p.compressed && p.labels <= progs[fam].labels && plainV6) {
        stats.exact++
        const want = queued.has(p.qtype)
        if (m !== want) stats.exactWrong.push(`${c.name}: parser queues=${want}, program match=${m}`)
      }
    }
    t.same(escapes, [], `${name}: no held query escapes the queue (${stats.held} held packets)`)
    t.same(stats.exactWrong, [], `${name}: exact on ${stats.exact} decidable queries`)
    t.ok(stats.held > 100 && stats.exact > 1000, `${name}: the corpus exercises the program`)
    t.comment(`${name}: ${stats.notHeldQueued} of ${stats.notHeld} packets that are not held still go to the queue`)
    total[name] = stats.notHeldQueued
  }
  const bySource: Record<string, number> = {}
  for (const c of packets) bySource[c.source] = (bySource[c.source] ?? 0) + 1
  t.comment(`corpus: ${JSON.stringify(bySource)}`)
})

t.test(`u32 fallback vs parser (${packets.length} packets)`, async t => {
  const table = POLICIES[0]!.policy.table
  const rules = { ipv4: u32MatchArgs('ipv4'), ipv6: u32MatchArgs('ipv6') }
  const escapes: string[] = []
  let notHeld = 0
  let kept = 0
  let responses = 0
  for (const c of packets) {
    const fam = familyOf(c.packet)
    if (fam === undefined) continue
    const m = u32RulesMatch(rules[fam], c.packet)
    const p = parsePacket(c.packet)
    if (held(c.packet, table) && !m) escapes.push(`${c.name}: ${c.packet.toString('hex')}`)
    if (!held(c.packet, table)) {
      notHeld++
      if (!m) kept++
    }
    if (p.kind === 'not_query' && !m) responses++
  }
  t.same(escapes, [], 'no held query escapes the u32 rules')
  t.ok(responses > 50, `not-queries stay in the kernel (${responses})`)
  t.comment(`u32: ${kept} of ${notHeld} packets that are not held stay in the kernel (A queries never do)`)
  t.equal(u32RulesMatch(rules.ipv4, ipv4Udp(dnsQuery({ qtype: 'A' }))), true, 'u32 cannot tell A from AAAA')
  t.equal(u32RulesMatch(rules.ipv4, ipv4Udp(dnsQuery({ flags: 0x8180 }))), false)
  t.equal(
    u32RulesMatch(rules.ipv4, ipv4Udp(dnsQuery({ flags: 0x8180 }), { options: Buffer.from([0x94, 4, 0, 0]) })),
    false,
    'IHL followed',
  )
  t.equal(u32RulesMatch(rules.ipv6, ipv6Udp(dnsQuery({ flags: 0x8180 }))), false)
  t.equal(
    u32RulesMatch(rules.ipv6, ipv6Udp(dnsQuery({ flags: 0x8180 }), { ext: [{ type: 'hop' }] })),
    true,
    'extension header: queued',
  )
  t.equal(u32RulesMatch(rules.ipv6, ipv6Udp(rawDns([0], { qdcount: 0 }))), false, 'QDCOUNT 0')
  // The evaluator itself.
  const pkt = Buffer.from([0, 0, 0, 8, 1, 2, 3, 4, 0xa0, 0xb0, 0xc0, 0xd0])
  t.equal(u32Matches('0x0=0x8', pkt), true)
  t.equal(u32Matches('0x0@0x0=0xa0b0c0d0', pkt), true, '@ moves by the value')
  t.equal(u32Matches('0x4<<0x8>>0x10=0x203', pkt), true)
  t.equal(u32Matches('0x4&0xff=0x1,0x4', pkt), true)
  t.equal(u32Matches('0x4&0xff=0x5:0x9', pkt), false)
  t.equal(u32Matches('0x9=0x0:0xffffffff', pkt), false, 'read past the end')
  t.equal(u32Matches('0x0@0x4=0x0:0xffffffff', pkt), false, 'read past the end after @')
  t.equal(u32Matches('0x9=0x0', pkt, true), true, 'inverted')
})

t.test('designed verdicts', async t => {
  const p4 = filterForPolicy(POLICIES[0]!.policy, 'ipv4')!.insns
  const p6 = filterForPolicy(POLICIES[0]!.policy, 'ipv6')!.insns
  const q = (o: Parameters<typeof dnsQuery>[0] = {}) => dnsQuery(o)
  const cases: [string, Buffer, boolean][] = [
    ['A stays in the kernel', ipv4Udp(q({ qtype: 'A' })), false],
    ['AAAA goes to the queue', ipv4Udp(q()), true],
    ['v6 A stays', ipv6Udp(q({ qtype: 'A' })), false],
    ['v6 AAAA queued', ipv6Udp(q()), true],
    ['root name NS stays', ipv4Udp(q({ qtype: 'NS', name: '.' })), false],
    ['root name AAAA queued', ipv6Udp(q({ name: '.' })), true],
    ['response stays', ipv4Udp(q({ flags: 0x8180 })), false],
    ['NOTIFY stays', ipv6Udp(q({ flags: 4 << 11 })), false],
    ['QDCOUNT 0 stays', ipv4Udp(rawDns(Buffer.concat([wireName([1]), qtail(28)]), { qdcount: 0 })), false],
    ['IPv4 options: still decided (A)', ipv4Udp(q({ qtype: 'A' }), { options: Buffer.from([0x94, 4, 0, 0]) }), false],
    [
      'IPv4 options: still decided (AAAA)',
      ipv4Udp(q(), { options: Buffer.concat([Buffer.from([7, 39, 4]), Buffer.alloc(36)]) }),
      true,
    ],
    ['fragment: user space decides', ipv4Udp(q({ qtype: 'A' }), { moreFragments: true }), true],
    ['v6 extension header: user space decides', ipv6Udp(q({ qtype: 'A' }), { ext: [{ type: 'hop' }] }), true],
    ['compression pointer: user space decides', ipv4Udp(rawDns([3, 0, 0x61, 0x62, 0xc0, 0x0d, 0, 1, 0, 1])), true],
    ['8 labels A: decided', ipv4Udp(q({ qtype: 'A', name: 'a.b.c.d.e.f.g.h' })), false],
    ['9 labels A: v4 queues it', ipv4Udp(q({ qtype: 'A', name: 'a.b.c.d.e.f.g.h.i' })), true],
    ['9 labels A: v6 decides it', ipv6Udp(q({ qtype: 'A', name: 'a.b.c.d.e.f.g.h.i' })), false],
    ['10 labels A: v6 queues it', ipv6Udp(q({ qtype: 'A', name: 'a.b.c.d.e.f.g.h.i.j' })), true],
    ['cut inside the name: out-of-bounds load, no match', ipv4Udp(q()).subarray(0, 28 + 12 + 3), false],
  ]
  for (const [name, pkt, want] of cases) {
    const fam = familyOf(pkt)!
    t.equal(matches(fam === 'ipv4' ? p4 : p6, pkt), want, name)
  }
  t.equal(runProgram(p4, ipv4Udp(q())).ret, BPF_MATCH)
  t.match(runProgram(p4, ipv4Udp(q()).subarray(0, 45)), { ret: 0, aborted: 'out_of_bounds' })
})

/** Share of a weighted query mix that stays in the kernel. */
function keptShare(prog: FilterProgram, mix: ReturnType<typeof k8sMix>, qtype: number): number {
  let all = 0
  let kept = 0
  for (const m of mix) {
    if (m.qtype !== qtype || familyOf(m.packet) !== prog.family) continue
    all += m.weight
    if (!matches(prog.insns, m.packet)) kept += m.weight
  }
  return kept / all
}

t.test('Kubernetes query mix', async t => {
  const mix = k8sMix()
  t.same(searchExpansion('api.github.com'), [
    'api.github.com.shop.svc.cluster.local',
    'api.github.com.svc.cluster.local',
    'api.github.com.cluster.local',
    'api.github.com',
  ])
  t.same(searchExpansion('redis.cache.svc.cluster.local.'), ['redis.cache.svc.cluster.local'])
  t.same(searchExpansion('a.b.c.d.e.f'), [
    'a.b.c.d.e.f',
    'a.b.c.d.e.f.shop.svc.cluster.local',
    'a.b.c.d.e.f.svc.cluster.local',
    'a.b.c.d.e.f.cluster.local',
  ])
  const lines: string[] = []
  for (const { name, policy } of POLICIES) {
    for (const family of ['ipv4', 'ipv6'] as const) {
      const prog = filterForPolicy(policy, family)!
      const a = keptShare(prog, mix, 1)
      const aaaa = keptShare(prog, mix, 28)
      t.equal(aaaa, 0, `${name} ${family}: every AAAA goes to the queue`)
      if (policy.pair) t.equal(a, 0, `${name} ${family}: pair mode queues every A`)
      else t.ok(a > 0.8, `${name} ${family}: most A queries stay in the kernel (${(a * 100).toFixed(1)}%)`)
      lines.push(
        `${name} ${family}: ${prog.insns.length} insns, ${prog.labels} labels, A kept in kernel ${(a * 100).toFixed(1)}%, AAAA kept ${(aaaa * 100).toFixed(1)}%`,
      )
    }
  }
  const labels = [...new Set(mix.map(m => m.labels))].sort((x, y) => x - y)
  t.comment(`label counts in the mix: ${labels.join(', ')}`)
  t.comment(lines.join('\n'))
})

t.test('too many types', async t => {
  const many = Array.from({ length: 46 }, (_, i) => i + 1)
  t.equal(buildFilter('ipv4', many.slice(0, 45)).labels, 1, '45 types still fit, deciding only one-label names')
  t.throws(() => buildFilter('ipv4', many), BpfError)
  t.throws(() => buildFilter('ipv4', []), /no query type/)
  t.throws(() => buildFilter('ipv4', [70000]), /out of range/)
  const p = buildFilter('ipv4', [28], { maxLabels: 3 })
  t.equal(p.labels, 3)
  t.equal(matches(p.insns, ipv4Udp(dnsQuery({ qtype: 'A', name: 'a.b.c' }))), false)
  t.equal(matches(p.insns, ipv4Udp(dnsQuery({ qtype: 'A', name: 'a.b.c.d' }))), true, 'beyond the budget: queued')
  t.equal(buildFilter('ipv4', [28, 28]).types.length, 1, 'duplicates removed')
})

t.test('iptables arguments', async t => {
  const p = buildFilter('ipv4', [28])
  const args = bpfMatchArgs(p)
  t.same(args.slice(0, 3), ['-m', 'bpf', '--bytecode'])
  t.match(args[3], /^62,177 0 0 0,40 0 0 6,/)
  t.notMatch(args[3], /,$/)
  t.same(u32MatchArgs('ipv4'), [
    ['-m', 'u32', '--u32', '0x0>>0x16&0x3c@0x8&0xf800=0x0&&0x0>>0x16&0x3c@0xc>>0x10=0x1:0xffff'],
  ])
  t.equal(u32MatchArgs('ipv6').length, 2)
  t.throws(() => parseBytecode('2,6 0 0 0'), /says 2/)
  t.throws(() => parseBytecode('1,6 0 0'), /bad instruction/)
})

/** Hand-written programs for the interpreter's own coverage. */
t.test('interpreter', async t => {
  const I = (code: number, k = 0, jt = 0, jf = 0): BpfInsn => ({ code, jt, jf, k })
  const { LD, LDX, ST, STX, ALU, JMP, RET, MISC, W, H, B, IMM, ABS, IND, MEM, LEN, MSH, K, X, A } = BPF
  const pkt = Buffer.from([0x45, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07])
  const ret = (prog: BpfInsn[], p: Uint8Array = pkt) => {
    checkProgram(prog)
    return runProgram(prog, p).ret
  }
  t.equal(ret([I(LD | W | ABS, 0), I(RET | A)]), 0x45010203)
  t.equal(ret([I(LD | H | ABS, 6), I(RET | A)]), 0x0607)
  t.equal(ret([I(LD | W | LEN), I(RET | A)]), 8)
  t.equal(ret([I(LDX | W | LEN), I(MISC | BPF.TXA), I(RET | A)]), 8)
  t.equal(ret([I(LDX | B | MSH, 0), I(MISC | BPF.TXA), I(RET | A)]), 20)
  t.equal(ret([I(LDX | W | IMM, 2), I(LD | B | IND, 3), I(RET | A)]), 5)
  t.equal(
    ret([
      I(LD | IMM, 7),
      I(ST, 3),
      I(LDX | IMM, 9),
      I(STX, 4),
      I(LD | MEM, 4),
      I(LDX | MEM, 3),
      I(ALU | BPF.SUB | X),
      I(RET | A),
    ]),
    2,
  )
  const alu = (op: number, a: number, k: number) => ret([I(LD | IMM, a), I(ALU | op | K, k), I(RET | A)])
  t.equal(alu(BPF.ADD, 0xffffffff, 2), 1, 'wraps at 32 bits')
  t.equal(alu(BPF.MUL, 0x10000, 0x10000), 0)
  t.equal(alu(BPF.DIV, 7, 2), 3)
  t.equal(alu(BPF.MOD, 7, 4), 3)
  t.equal(alu(BPF.OR, 5, 2), 7)
  t.equal(alu(BPF.AND, 6, 3), 2)
  t.equal(alu(BPF.XOR, 6, 3), 5)
  t.equal(alu(BPF.LSH, 1, 31), 0x80000000)
  t.equal(alu(BPF.RSH, 0x80000000, 31), 1)
  t.equal(alu(BPF.NEG, 1, 0), 0xffffffff)
  t.equal(ret([I(LD | IMM, 1), I(LDX | IMM, 40), I(ALU | BPF.LSH | X), I(RET | A)]), 0, 'shift by >= 32 gives 0')
  t.match(runProgram([I(LD | IMM, 1), I(LDX | IMM, 0), I(ALU | BPF.DIV | X), I(RET | K, 5)], pkt), {
    ret: 0,
    aborted: 'division_by_zero',
  })
  t.match(runProgram([I(LD | W | ABS, 6), I(RET | K, 5)], pkt), { ret: 0, aborted: 'out_of_bounds' })
  t.match(runProgram([I(LDX | B | MSH, 8), I(RET | K, 5)], pkt), { ret: 0, aborted: 'out_of_bounds' })
  t.equal(ret([I(JMP | BPF.JA, 1), I(RET | K, 1), I(RET | K, 2)]), 2)
  const j = (op: number, a: number, k: number) =>
    ret([I(LD | IMM, a), I(JMP | op | K, k, 0, 1), I(RET | K, 1), I(RET | K, 0)])
  t.equal(j(BPF.JEQ, 3, 3), 1)
  t.equal(j(BPF.JGT, 3, 3), 0)
  t.equal(j(BPF.JGE, 3, 3), 1)
  t.equal(j(BPF.JGT, 0xffffffff, 1), 1, 'unsigned compare')
  t.equal(j(BPF.JSET, 6, 1), 0)
  t.equal(ret([I(LD | IMM, 4), I(LDX | IMM, 4), I(JMP | BPF.JEQ | X, 0, 0, 1), I(RET | K, 1), I(RET | K, 0)]), 1)
  t.equal(ret([I(LD | IMM, 4), I(MISC | BPF.TAX), I(LD | IMM, 0), I(MISC | BPF.TXA), I(RET | A)]), 4)
  // What the kernel refuses.
  t.throws(() => checkProgram([]), CbpfError)
  t.throws(() => checkProgram([I(LD | IMM, 0)]), /last instruction must be a ret/)
  t.throws(() => checkProgram([I(JMP | BPF.JEQ, 0, 5, 0), I(RET | K, 0)]), /beyond the program/)
  t.throws(() => checkProgram([I(JMP | BPF.JA, 3), I(RET | K, 0)]), /ja beyond/)
  t.throws(() => checkProgram([I(ALU | BPF.DIV | K, 0), I(RET | K, 0)]), /division by constant 0/)
  t.throws(() => checkProgram([I(ALU | 0xb0 | K, 1), I(RET | K, 0)]), /unknown ALU op/)
  t.throws(() => checkProgram([I(JMP | 0x50 | K, 1), I(RET | K, 0)]), /unknown jump/)
  t.throws(() => checkProgram([I(ST, 16), I(RET | K, 0)]), /scratch slot/)
  t.throws(() => checkProgram([I(LD | MEM, 16), I(RET | K, 0)]), /scratch slot/)
  t.throws(() => checkProgram([I(RET | K, -1)]), /out of range/)
  t.throws(() => checkProgram(Array(65).fill(I(RET | K, 0)), 64), /65 instructions/)
  t.throws(() => runProgram([I(LD | IMM, 0)], pkt), /ran off its end/)
  t.match(
    disassemble([
      I(LD | W | LEN),
      I(LDX | MEM, 1),
      I(LDX | W | LEN),
      I(LDX | IMM, 3),
      I(ST, 1),
      I(STX, 2),
      I(JMP | BPF.JA, 0),
      I(RET | A),
      I(LD | MEM, 2),
      I(LD | IMM, 9),
    ]),
    /ld #len[\s\S]*ldx M\[1\][\s\S]*ldx #len[\s\S]*ldx #0x3[\s\S]*st M\[1\][\s\S]*stx M\[2\][\s\S]*ja 7[\s\S]*ret a[\s\S]*ld M\[2\][\s\S]*ld #0x9/,
  )
})
