// Writes the decision-core fuzzer's seeds: one event sequence per known bug, in the input layout
// fuzz/core_fuzzer.cc decodes (kept in step with it by hand: Decode there, encoders here).
// Usage: core-seed-corpus.ts DIR
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const dir = process.argv[2]
if (!dir) {
  process.stderr.write('usage: core-seed-corpus.ts DIR\n')
  process.exit(2)
}

const Q = { A: 0, AAAA: 1, HTTPS: 2, MX: 3 } as const
/** Hold choices, as indexes into the fuzzer's kHoldsMs {0, 1, 2, 5, 10, 20, 50, 200}. */
const H = { ms0: 0, ms1: 1, ms2: 2, ms5: 3, ms10: 4, ms20: 5, ms50: 6, ms200: 7 } as const

interface PolicyIn {
  pair?: boolean
  windowMs?: number
  maxHeld?: number
  holds: Partial<Record<keyof typeof Q, number>>
}
function policy(p: PolicyIn): number[] {
  const holds = (['A', 'AAAA', 'HTTPS', 'MX'] as const).map(q => (p.holds[q] === undefined ? 0 : 0x80 | p.holds[q]!))
  return [p.pair ? 1 : 0, p.windowMs ?? 5, (p.maxHeld ?? 24) - 1, ...holds]
}
/** Header: start id 0xFFFFFFF0 + wrapOffset when given, small (16-slot) pair table when asked. */
function header(o: { wrapOffset?: number; smallTable?: boolean } = {}): number[] {
  return [(o.wrapOffset !== undefined ? 1 | (o.wrapOffset << 4) : 0) | (o.smallTable ? 2 : 0)]
}
/** A query; flow 0..7, alt picks the neighbouring key; gap 1..2 skips ids before it. */
function pkt(q: keyof typeof Q, flow: number, o: { gap?: number; alt?: boolean } = {}): number[] {
  const op = 0x80 | (o.alt ? 0x10 : 0) | (o.gap ? (o.gap - 1) << 3 : 0)
  return [op, Q[q] | (flow << 3) | (o.gap ? 0xc0 : 0)]
}
const ms = (n: number): number[] => [6, n]
const us100 = (n: number): number[] => [4, n]
const reload = (p: PolicyIn): number[] => [5, ...policy(p)]
const stop = [7]

const seeds: Record<string, number[]> = {
  // issue 14 item 1: 200 ms held, reload to 5 ms; the next AAAA must leave after 5 ms, not 200.
  'reload-shortens-hold': [
    ...header(),
    ...policy({ holds: { AAAA: H.ms200 } }),
    ...pkt('AAAA', 0),
    ...ms(1),
    ...reload({ holds: { AAAA: H.ms5 } }),
    ...pkt('AAAA', 1),
    ...ms(5),
    ...ms(10),
    ...ms(200),
    ...stop,
  ],
  'reload-reorders-classes': [
    ...header(),
    ...policy({ holds: { AAAA: H.ms50, HTTPS: H.ms10 } }),
    ...pkt('AAAA', 0),
    ...pkt('HTTPS', 1),
    ...reload({ holds: { HTTPS: H.ms20, AAAA: H.ms1 } }),
    ...pkt('AAAA', 2),
    ...pkt('HTTPS', 3),
    ...us100(20),
    ...ms(15),
    ...ms(40),
    ...stop,
  ],
  // issue 14 item 2: ids FFFFFFFD.. across the wrap, then a real gap.
  'ids-around-2-pow-32': [
    ...header({ wrapOffset: 0xc }),
    ...policy({ holds: { AAAA: H.ms5 } }),
    ...pkt('A', 0),
    ...pkt('A', 1),
    ...pkt('AAAA', 1),
    ...pkt('A', 2),
    ...pkt('A', 3, { gap: 1 }),
    ...pkt('A', 4),
    ...pkt('A', 5, { gap: 2 }),
    ...ms(10),
  ],
  // 16 pair slots, 16 live flows in one probe window: evictions; the evicted flows' AAAA still leave.
  'pair-table-eviction': [
    ...header({ smallTable: true }),
    ...policy({ pair: true, holds: { AAAA: H.ms200 } }),
    ...[0, 1, 2, 3, 4, 5, 6, 7].flatMap(f => [...pkt('AAAA', f), ...pkt('AAAA', f, { alt: true }), ...us100(1)]),
    ...[0, 1, 2, 3, 4, 5, 6, 7].flatMap(f => [...pkt('A', f), ...pkt('A', f, { alt: true })]),
    ...ms(250),
  ],
  'third-packet-in-one-flow': [
    ...header(),
    ...policy({ pair: true, holds: { AAAA: H.ms200, HTTPS: H.ms200 } }),
    ...pkt('AAAA', 0),
    ...pkt('HTTPS', 0),
    ...pkt('AAAA', 0),
    ...us100(5),
    ...pkt('A', 0),
    ...ms(250),
  ],
  'aaaa-before-its-a': [
    ...header(),
    ...policy({ pair: true, windowMs: 5, holds: { AAAA: H.ms50 } }),
    ...pkt('AAAA', 0),
    ...us100(10),
    ...pkt('A', 0),
    ...us100(50),
    ...pkt('AAAA', 0),
    ...us100(1),
    ...pkt('AAAA', 0),
    ...ms(60),
  ],
  'max-held-and-stop': [
    ...header(),
    ...policy({ maxHeld: 2, holds: { AAAA: H.ms200 } }),
    ...pkt('AAAA', 0),
    ...pkt('AAAA', 1),
    ...pkt('AAAA', 2),
    ...reload({ maxHeld: 3, holds: { AAAA: H.ms20 } }),
    ...pkt('AAAA', 3),
    ...pkt('AAAA', 4),
    ...stop,
    ...pkt('AAAA', 5),
  ],
}

mkdirSync(dir, { recursive: true })
for (const [name, bytes] of Object.entries(seeds)) writeFileSync(join(dir, name), Buffer.from(bytes))
process.stdout.write(`core-seed-corpus: ${Object.keys(seeds).length} files in ${dir}\n`)
