// Writes the parser's test vectors as binary files, one per packet, to seed the fuzzer's corpus:
// test/fixtures/packets/*.hex plus every packet of the builders' table. Usage: seed-corpus.ts DIR
import { mkdirSync, writeFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { hexFixtures, vectors } from '../test/helpers/packets.js'

const dir = process.argv[2]
if (!dir) {
  process.stderr.write('usage: seed-corpus.ts DIR\n')
  process.exit(2)
}
mkdirSync(dir, { recursive: true })
const packets = [...hexFixtures().map(f => f.packet), ...vectors().map(v => v.packet)]
const names = new Set<string>()
for (const p of packets) {
  // Content-addressed like libFuzzer's own corpus files, so duplicates collapse.
  const name = createHash('sha1').update(p).digest('hex')
  names.add(name)
  writeFileSync(join(dir, name), p)
}
process.stdout.write(`seed-corpus: ${names.size} files in ${dir}\n`)
