import { buildFilter, bytecodeText, disassemble } from '../../src/policy/bpf.js'
import { checkProgram, runProgram } from '../../src/policy/cbpf-interp.js'
for (const fam of ['ipv4','ipv6'] as const) for (const n of [[28],[28,65],[1,28,65],[28,64,65,1,5]]) {
  const p = buildFilter(fam, n); checkProgram(p.insns, 64)
  console.log(fam, n.join('+'), p.insns.length, 'labels', p.labels)
}
const p = buildFilter('ipv4',[28]); console.log(disassemble(p.insns)); console.log(bytecodeText(p.insns))
