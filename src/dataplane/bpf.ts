// Kernel-side classification: builds the classic-BPF program (for iptables' xt_bpf match) and the u32
// fallback expression that keep DNS packets the shaper would only accept out of the NFQUEUE path.
// Pure: no I/O. It must never say "no match" for a query the user-space parser would hold; when in
// doubt (IP options, fragments, compression, a name longer than the unrolled walk) it says "match".
import type { NativePolicy } from './nfqueue.js'
import { heldQtypes } from './policy.js'
import { queuedQtypes } from './qtypes.js'
import type { Family } from '../config/types.js'

/** One classic BPF instruction (struct sock_filter). */
export interface BpfInsn {
  code: number
  jt: number
  jf: number
  k: number
}

/** xt_bpf's limit (XT_BPF_MAX_NUM_INSTR in include/uapi/linux/netfilter/xt_bpf.h). */
export const XT_BPF_MAX_NUM_INSTR = 64
/** Any non-zero return is a match for xt_bpf; this value also reads well in a disassembly. */
export const BPF_MATCH = 0xffff

// Opcodes (linux/filter.h, linux/bpf_common.h).
export const BPF = {
  LD: 0x00,
  LDX: 0x01,
  ST: 0x02,
  STX: 0x03,
  ALU: 0x04,
  JMP: 0x05,
  RET: 0x06,
  MISC: 0x07,
  W: 0x00,
  H: 0x08,
  B: 0x10,
  IMM: 0x00,
  ABS: 0x20,
  IND: 0x40,
  MEM: 0x60,
  LEN: 0x80,
  MSH: 0xa0,
  ADD: 0x00,
  SUB: 0x10,
  MUL: 0x20,
  DIV: 0x30,
  OR: 0x40,
  AND: 0x50,
  LSH: 0x60,
  RSH: 0x70,
  NEG: 0x80,
  MOD: 0x90,
  XOR: 0xa0,
  JA: 0x00,
  JEQ: 0x10,
  JGT: 0x20,
  JGE: 0x30,
  JSET: 0x40,
  K: 0x00,
  X: 0x08,
  A: 0x10,
  TAX: 0x00,
  TXA: 0x80,
} as const

/** Fixed offsets from the network header (xt_bpf runs the program on skb->data = the IP header). */
const L4_V4_OFFSET_OF_DNS = 8 // relative to X = IHL*4 (loaded with the MSH instruction)
const V6_DNS = 40 + 8

export interface FilterProgram {
  family: Family
  insns: BpfInsn[]
  /** QTYPEs sent to the queue (the held ones, plus A in pair mode). */
  types: number[]
  /** Names with at most this many labels are decided in the kernel; longer ones go to the queue. */
  labels: number
}

export class BpfError extends Error {
  override name = 'BpfError'
}

// A tiny assembler: instructions may name forward targets; jumps are resolved at the end.
type Target = string | null // null = next instruction
interface Pending {
  code: number
  k: number
  jt?: Target
  jf?: Target
}

class Asm {
  readonly out: Pending[] = []
  readonly labels = new Map<string, number>()
  op(code: number, k = 0): void {
    this.out.push({ code, k })
  }
  jmp(code: number, k: number, jt: Target, jf: Target): void {
    this.out.push({ code, k, jt, jf })
  }
  label(name: string): void {
    this.labels.set(name, this.out.length)
  }
  finish(): BpfInsn[] {
    return this.out.map((p, pc) => {
      const rel = (t: Target | undefined): number => {
        if (t === undefined || t === null) return 0
        const at = this.labels.get(t)
        if (at === undefined) throw new BpfError(`internal: label ${t} is not defined`)
        const off = at - pc - 1
        if (off < 0 || off > 255) throw new BpfError(`internal: jump to ${t} out of range (${off})`)
        return off
      }
      return { code: p.code, jt: rel(p.jt), jf: rel(p.jf), k: p.k >>> 0 }
    })
  }
}

const { LD, LDX, ALU, JMP, RET, MISC, W, H, B, ABS, IND, MSH, JEQ, JGE, JSET, K, X, ADD, TAX } = BPF

/** Instructions a program with `middle` middle label steps and `types` QTYPEs takes. */
function size(family: Family, middle: number, types: number): number {
  const head = family === 'ipv4' ? 8 : 5 // see emit(): checks before the name walk
  const first = family === 'ipv4' ? 6 : 5
  return head + first + 6 * middle + 2 + 1 + types + 2
}

/**
 * Builds the program for one family. Layout (IPv4; IPv6 has a fixed 40-byte header and no MSH):
 *
 *   ldxb 4*([0]&0xf)            X = IHL*4: options are handled, not refused
 *   ldh [6]; jset #0x3fff       a fragment: user space decides (and counts it)
 *   ldb [9]; jeq #17            not UDP: user space decides
 *   ld [x+10]                   DNS flags << 16 | QDCOUNT
 *   jset #0xf8000000 -> NO      QR=1 or OPCODE != 0: the shaper would accept it at once
 *   jset #0xffff, else NO       QDCOUNT 0: not a query either
 *   per label (unrolled, no backward jumps in cBPF):
 *     ldb [x+20]; jeq #0 -> END; jge #0x40 -> MATCH (pointer or obsolete label type); X += len + 1
 *   after the last step a non-zero length byte -> MATCH (name longer than the walk)
 *   END: ldh [x+21] (QTYPE); jeq #t -> MATCH for each queued type; ret #0
 *
 * Out-of-bounds loads end a classic BPF program with 0 (no match); the parser rejects such packets too
 * (malformed), so a truncated packet never is a held query that escapes.
 */
export function buildFilter(
  family: Family,
  types: readonly number[],
  opts: { maxInsns?: number; maxLabels?: number } = {},
): FilterProgram {
  const max = opts.maxInsns ?? XT_BPF_MAX_NUM_INSTR
  const uniq = [...new Set(types)]
  for (const t of uniq) {
    if (!Number.isInteger(t) || t < 0 || t > 0xffff) throw new BpfError(`QTYPE ${t} is out of range 0..65535`)
  }
  if (uniq.length === 0) throw new BpfError('no query type is queued: the rules would send nothing to the queue')
  let middle = -1
  while (size(family, middle + 1, uniq.length) <= max && (opts.maxLabels === undefined || middle + 2 <= opts.maxLabels))
    middle++
  if (middle < 0) {
    throw new BpfError(
      `${uniq.length} query types do not fit in ${max} cBPF instructions; queue everything instead (--kernel-filter u32|off)`,
    )
  }
  const a = new Asm()
  let base: number // offset of the first name byte, relative to X at the first step
  if (family === 'ipv4') {
    a.op(LDX | B | MSH, 0)
    a.op(LD | H | ABS, 6)
    a.jmp(JMP | JSET | K, 0x3fff, 'match', null)
    a.op(LD | B | ABS, 9)
    a.jmp(JMP | JEQ | K, 17, null, 'match')
    a.op(LD | W | IND, L4_V4_OFFSET_OF_DNS + 2)
    base = L4_V4_OFFSET_OF_DNS + 12
  } else {
    // Any extension header (hop-by-hop, fragment, ...) means next header != UDP: user space walks it.
    a.op(LD | B | ABS, 6)
    a.jmp(JMP | JEQ | K, 17, null, 'match')
    a.op(LD | W | ABS, V6_DNS + 2)
    base = V6_DNS + 12
  }
  a.jmp(JMP | JSET | K, 0xf8000000, 'nomatch', null)
  a.jmp(JMP | JSET | K, 0xffff, null, 'nomatch')
  // First label. IPv4: X already holds the IP header length. IPv6: X is 0 (cBPF starts with A = X = 0).
  a.op(LD | B | IND, base)
  a.jmp(JMP | JEQ | K, 0, 'end', null)
  a.jmp(JMP | JGE | K, 0x40, 'match', null)
  a.op(ALU | ADD | K, 1)
  if (family === 'ipv4') a.op(ALU | ADD | X, 0)
  a.op(MISC | TAX, 0)
  for (let i = 0; i < middle; i++) {
    a.op(LD | B | IND, base)
    a.jmp(JMP | JEQ | K, 0, 'end', null)
    a.jmp(JMP | JGE | K, 0x40, 'match', null)
    a.op(ALU | ADD | K, 1)
    a.op(ALU | ADD | X, 0)
    a.op(MISC | TAX, 0)
  }
  a.op(LD | B | IND, base)
  a.jmp(JMP | JEQ | K, 0, 'end', 'match')
  a.label('end')
  a.op(LD | H | IND, base + 1)
  uniq.forEach((t, i) => a.jmp(JMP | JEQ | K, t, 'match', i === uniq.length - 1 ? 'nomatch' : null))
  a.label('nomatch')
  a.op(RET | K, 0)
  a.label('match')
  a.op(RET | K, BPF_MATCH)
  const insns = a.finish()
  if (insns.length !== size(family, middle, uniq.length)) throw new BpfError('internal: size() is out of date')
  return { family, insns, types: uniq, labels: middle + 1 }
}

/** The program for a compiled policy, or undefined when nothing is queued (no rules needed then). */
export function filterForPolicy(
  policy: Pick<NativePolicy, 'table' | 'pair'>,
  family: Family,
): FilterProgram | undefined {
  const types = queuedQtypes(heldQtypes(policy), policy.pair)
  return types.length === 0 ? undefined : buildFilter(family, types)
}

/** `--bytecode` text exactly as iptables-save prints it: "N,code jt jf k,code jt jf k,...". */
export function bytecodeText(insns: readonly BpfInsn[]): string {
  return [String(insns.length), ...insns.map(i => `${i.code} ${i.jt} ${i.jf} ${i.k >>> 0}`)].join(',')
}

/** Parses `--bytecode` text (also what `nfbpf_compile` prints). */
export function parseBytecode(text: string): BpfInsn[] {
  const parts = text.trim().split(',')
  const n = Number(parts[0])
  if (!Number.isInteger(n) || n !== parts.length - 1)
    throw new BpfError(`bytecode says ${parts[0]} instructions but has ${parts.length - 1}`)
  return parts.slice(1).map(p => {
    const f = p.trim().split(/\s+/).map(Number)
    if (f.length !== 4 || f.some(x => !Number.isInteger(x) || x < 0)) throw new BpfError(`bad instruction "${p}"`)
    return { code: f[0]!, jt: f[1]!, jf: f[2]!, k: f[3]! >>> 0 }
  })
}

/** The iptables arguments of the match. */
export function bpfMatchArgs(p: FilterProgram): string[] {
  return ['-m', 'bpf', '--bytecode', bytecodeText(p.insns)]
}

/**
 * u32 fallback for kernels without xt_bpf: only "is a standard query with QDCOUNT >= 1". u32 cannot
 * walk the name, so every query (A included) still goes to the queue; only responses and other opcodes
 * sent to the DNS port stay in the kernel. Written in the canonical form iptables-save prints (hex, as
 * libxt_u32 dumps it) so that rendered and saved rules compare equal.
 *
 * IPv4: `0>>22&0x3c` is IHL*4, `@` moves to the UDP header, so IP options are handled.
 *   (UDP+8 = DNS id|flags) & 0xf800 == 0   and   (UDP+12 = QDCOUNT|ANCOUNT) >> 16 >= 1
 * IPv6: fixed offsets behind a 40-byte header, valid only when the next header is UDP; a packet with
 * an extension header must still reach the queue, so the IPv6 fallback is two rules: one for
 * next-header UDP with the same test, and one for every other next header (`! --u32 "0x4&0xff00=0x1100"`).
 * Each returned entry is the argument list of one rule's match.
 */
export function u32MatchArgs(family: Family): string[][] {
  if (family === 'ipv4') {
    return [['-m', 'u32', '--u32', '0x0>>0x16&0x3c@0x8&0xf800=0x0&&0x0>>0x16&0x3c@0xc>>0x10=0x1:0xffff']]
  }
  return [
    ['-m', 'u32', '--u32', '0x4&0xff00=0x1100&&0x30&0xf800=0x0&&0x34>>0x10=0x1:0xffff'],
    ['-m', 'u32', '!', '--u32', '0x4&0xff00=0x1100'],
  ]
}

/** Mnemonics by opcode bits: the BPF constant's name in lower case. */
function mnemonics(keys: readonly (keyof typeof BPF)[]): Record<number, string> {
  return Object.fromEntries(keys.map(k => [BPF[k], k.toLowerCase()]))
}
const JMP_NAMES = mnemonics(['JA', 'JEQ', 'JGT', 'JGE', 'JSET'])
const ALU_NAMES = mnemonics(['ADD', 'SUB', 'MUL', 'DIV', 'OR', 'AND', 'LSH', 'RSH', 'NEG', 'MOD', 'XOR'])
const SIZE_SUFFIX: Record<number, string> = { [BPF.W]: '', [BPF.H]: 'h', [BPF.B]: 'b' }

/** tcpdump -d style listing, for docs, logs and test failure messages. */
export function disassemble(insns: readonly BpfInsn[]): string {
  const hex = (n: number) => `#0x${(n >>> 0).toString(16)}`
  return insns
    .map((i, pc) => {
      const cls = i.code & 0x07
      const sz = SIZE_SUFFIX[i.code & 0x18] ?? '?'
      const mode = i.code & 0xe0
      const src = i.code & 0x08
      let text: string
      if (cls === LD) {
        text =
          mode === ABS
            ? `ld${sz} [${i.k}]`
            : mode === IND
              ? `ld${sz} [x + ${i.k}]`
              : mode === BPF.LEN
                ? 'ld #len'
                : mode === BPF.MEM
                  ? `ld M[${i.k}]`
                  : `ld ${hex(i.k)}`
      } else if (cls === LDX) {
        text =
          mode === MSH
            ? `ldxb 4*([${i.k}]&0xf)`
            : mode === BPF.MEM
              ? `ldx M[${i.k}]`
              : mode === BPF.LEN
                ? 'ldx #len'
                : `ldx ${hex(i.k)}`
      } else if (cls === BPF.ST) text = `st M[${i.k}]`
      else if (cls === BPF.STX) text = `stx M[${i.k}]`
      else if (cls === ALU) text = `${ALU_NAMES[i.code & 0xf0] ?? '?'} ${src ? 'x' : hex(i.k)}`
      else if (cls === JMP) {
        const op = JMP_NAMES[i.code & 0xf0] ?? '?'
        text =
          op === 'ja' ? `ja ${pc + 1 + i.k}` : `${op} ${src ? 'x' : hex(i.k)} jt ${pc + 1 + i.jt} jf ${pc + 1 + i.jf}`
      } else if (cls === RET) text = (i.code & 0x18) === BPF.A ? 'ret a' : `ret #${i.k}`
      else text = (i.code & 0xf8) === BPF.TXA ? 'txa' : 'tax'
      return `(${String(pc).padStart(3, '0')}) ${text}`
    })
    .join('\n')
}
