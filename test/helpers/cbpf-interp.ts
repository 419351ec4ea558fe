// A classic-BPF interpreter with the Linux kernel's semantics (A = X = 0 at start, an out-of-bounds
// load or a division by zero ends the program with 0), and the checks bpf_check_classic() makes when
// xt_bpf loads a program. Used by the differential tests of src/dataplane/bpf.ts; it never touches a socket.
import { BPF, type BpfInsn } from '../../src/dataplane/bpf.js'

export class CbpfError extends Error {
  override name = 'CbpfError'
}

const BPF_MEMWORDS = 16
const BPF_MAXINSNS = 4096

/** Throws CbpfError where the kernel would refuse the program (EINVAL). */
export function checkProgram(insns: readonly BpfInsn[], maxInsns = BPF_MAXINSNS): void {
  const n = insns.length
  if (n === 0 || n > maxInsns) throw new CbpfError(`program has ${n} instructions (1..${maxInsns} allowed)`)
  insns.forEach((i, pc) => {
    const cls = i.code & 0x07
    const where = `instruction ${pc}`
    for (const [name, v, hi] of [
      ['code', i.code, 0xffff],
      ['jt', i.jt, 0xff],
      ['jf', i.jf, 0xff],
      ['k', i.k, 0xffffffff],
    ] as const) {
      if (!Number.isInteger(v) || v < 0 || v > hi) throw new CbpfError(`${where}: ${name} ${v} out of range`)
    }
    if (cls === BPF.ALU) {
      const op = i.code & 0xf0
      if (!(op in OPS)) throw new CbpfError(`${where}: unknown ALU op 0x${op.toString(16)}`)
      if ((op === BPF.DIV || op === BPF.MOD) && (i.code & 0x08) === BPF.K && i.k === 0)
        throw new CbpfError(`${where}: division by constant 0`)
    } else if (cls === BPF.LD || cls === BPF.LDX) {
      const mode = i.code & 0xe0
      if (mode === BPF.MEM && i.k >= BPF_MEMWORDS) throw new CbpfError(`${where}: scratch slot ${i.k}`)
    } else if (cls === BPF.ST || cls === BPF.STX) {
      if (i.k >= BPF_MEMWORDS) throw new CbpfError(`${where}: scratch slot ${i.k}`)
    } else if (cls === BPF.JMP) {
      const op = i.code & 0xf0
      if (op === BPF.JA) {
        if (i.k >= n - pc - 1) throw new CbpfError(`${where}: ja beyond the program`)
      } else {
        if (![BPF.JEQ, BPF.JGT, BPF.JGE, BPF.JSET].includes(op as never))
          throw new CbpfError(`${where}: unknown jump 0x${op.toString(16)}`)
        if (i.jt >= n - pc - 1 || i.jf >= n - pc - 1) throw new CbpfError(`${where}: jump beyond the program`)
      }
    }
  })
  const last = insns[n - 1]!
  if ((last.code & 0x07) !== BPF.RET) throw new CbpfError('the last instruction must be a ret')
}

const OPS: Record<number, (a: number, b: number) => number | undefined> = {
  [BPF.ADD]: (a, b) => a + b,
  [BPF.SUB]: (a, b) => a - b,
  [BPF.MUL]: (a, b) => Math.imul(a, b),
  [BPF.DIV]: (a, b) => (b === 0 ? undefined : Math.floor((a >>> 0) / (b >>> 0))),
  [BPF.MOD]: (a, b) => (b === 0 ? undefined : (a >>> 0) % (b >>> 0)),
  [BPF.OR]: (a, b) => a | b,
  [BPF.AND]: (a, b) => a & b,
  [BPF.XOR]: (a, b) => a ^ b,
  [BPF.LSH]: (a, b) => (b >>> 0 >= 32 ? 0 : a << b),
  [BPF.RSH]: (a, b) => (b >>> 0 >= 32 ? 0 : a >>> b),
  [BPF.NEG]: a => -a,
}

export interface RunResult {
  /** The program's return value (0 = no match). */
  ret: number
  /** Instructions executed. */
  steps: number
  /** Why the program ended early with 0, if it did. */
  aborted?: 'out_of_bounds' | 'division_by_zero'
}

/**
 * Runs a program on `pkt` (the bytes from the network header on, as xt_bpf sees them). Ancillary
 * loads (k >= 0xfffff000, SKF_AD_OFF/SKF_NET_OFF) are not modelled: they count as out of bounds.
 */
export function runProgram(insns: readonly BpfInsn[], pkt: Uint8Array): RunResult {
  let A = 0
  let X = 0
  const M = new Uint32Array(BPF_MEMWORDS)
  const len = pkt.length
  const load = (off: number, size: 1 | 2 | 4): number | undefined => {
    if (off < 0 || off > 0xffffffff || off + size > len) return undefined
    let v = 0
    for (let i = 0; i < size; i++) v = (v << 8) | pkt[off + i]!
    return v >>> 0
  }
  let steps = 0
  for (let pc = 0; pc < insns.length; pc++) {
    const i = insns[pc]!
    steps++
    const cls = i.code & 0x07
    const k = i.k >>> 0
    switch (cls) {
      case BPF.LD:
      case BPF.LDX: {
        const mode = i.code & 0xe0
        const size = ({ [BPF.W]: 4, [BPF.H]: 2, [BPF.B]: 1 } as Record<number, 1 | 2 | 4>)[i.code & 0x18] ?? 4
        let v: number | undefined
        if (mode === BPF.IMM) v = k
        else if (mode === BPF.LEN) v = len
        else if (mode === BPF.MEM) v = M[k]
        else if (cls === BPF.LD && mode === BPF.ABS) v = load(k, size)
        else if (cls === BPF.LD && mode === BPF.IND) v = load((X >>> 0) + k, size)
        else if (cls === BPF.LDX && mode === BPF.MSH) {
          const b = load(k, 1)
          v = b === undefined ? undefined : (b & 0x0f) * 4
        }
        if (v === undefined) return { ret: 0, steps, aborted: 'out_of_bounds' }
        if (cls === BPF.LD) A = v >>> 0
        else X = v >>> 0
        break
      }
      case BPF.ST:
        M[k] = A
        break
      case BPF.STX:
        M[k] = X
        break
      case BPF.ALU: {
        const f = OPS[i.code & 0xf0]
        const r = f?.(A, (i.code & 0x08) === BPF.X ? X : k)
        if (r === undefined) return { ret: 0, steps, aborted: 'division_by_zero' }
        A = r >>> 0
        break
      }
      case BPF.JMP: {
        const op = i.code & 0xf0
        if (op === BPF.JA) {
          pc += k
          break
        }
        const b = ((i.code & 0x08) === BPF.X ? X : k) >>> 0
        const a = A >>> 0
        const taken = op === BPF.JEQ ? a === b : op === BPF.JGT ? a > b : op === BPF.JGE ? a >= b : (a & b) !== 0
        pc += taken ? i.jt : i.jf
        break
      }
      case BPF.RET:
        return { ret: ((i.code & 0x18) === BPF.A ? A : k) >>> 0, steps }
      case BPF.MISC:
        if ((i.code & 0xf8) === BPF.TXA) A = X
        else X = A
        break
    }
  }
  throw new CbpfError('program ran off its end (checkProgram() refuses such programs)')
}

/** xt_bpf's verdict: any non-zero return is a match. */
export function matches(insns: readonly BpfInsn[], pkt: Uint8Array): boolean {
  return runProgram(insns, pkt).ret !== 0
}
