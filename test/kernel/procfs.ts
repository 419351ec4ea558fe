import t from 'tap'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { chmod, mkdtemp, mkdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import {
  clashResolveDelta,
  conntrackDelta,
  parseConntrackStats,
  parseNfqueueStats,
  ProcParseError,
  readConntrackCount,
  readConntrackStats,
  readNfqueueStats,
} from '../../src/kernel/procfs.js'

const fx = (name: string) => fileURLToPath(new URL(`../fixtures/proc/${name}`, import.meta.url))

t.test('nfnetlink_queue: captured from a throwaway netns', async t => {
  const all = await readNfqueueStats(fx('nfqueue-netns'))
  t.same(
    all.map(q => q.queue),
    [0, 3, 65535],
    'sorted by queue',
  )
  t.same(all[1], {
    queue: 3,
    portid: 2216045330,
    waiting: 2,
    copyMode: 2,
    copyRange: 512,
    dropped: 3,
    userDropped: 0,
    idSequence: 2,
  })
  t.equal(all[0]!.portid, 5317, 'first netlink socket of a process: its PID')
  t.same(
    (await readNfqueueStats(fx('nfqueue-netns'), 65535)).map(q => q.waiting),
    [3],
  )
  t.same(await readNfqueueStats(fx('nfqueue-netns'), 7), [], 'unbound queue is not listed')
})

t.test('nfnetlink_queue: missing or empty file is an empty list', async t => {
  t.same(await readNfqueueStats(fx('empty')), [])
  t.same(await readNfqueueStats(fx('nfqueue-unbound')), [])
})

t.test('nfnetlink_queue: malformed lines name the file and line', async t => {
  await t.rejects(readNfqueueStats(fx('nfqueue-malformed')), ProcParseError)
  await t.rejects(readNfqueueStats(fx('nfqueue-malformed')), /nfnetlink_queue:1: expected 9 columns/)
  t.throws(() => parseNfqueueStats('0 1 2 3 4 5 6 x 1\n'), /idSequence is not a decimal/)
  t.same(parseNfqueueStats('  1  2 3 2 512 0 0 9  1 extra\n')[0]!.idSequence, 9, 'extra trailing columns tolerated')
})

t.test('nf_conntrack: 4.14 header, 4 CPUs', async t => {
  const s = (await readConntrackStats(fx('kernel-4.14')))!
  t.equal(s.cpus.length, 4)
  t.equal(s.entries, 1530, 'entries taken once, not summed')
  t.equal(s.totals.entries, 1530)
  t.equal(s.insertFailed, 17 + 12 + 21 + 9)
  t.equal(s.drop, 59)
  t.equal(s.totals.search_restart, 9)
  t.equal(s.totals.searched, 0)
  t.equal(s.clashResolve, undefined, 'no clash counter before 5.10')
})

t.test('nf_conntrack: 4.19 and 5.4 use the old header', async t => {
  const a = (await readConntrackStats(fx('kernel-4.19')))!
  t.same([a.cpus.length, a.entries, a.insertFailed, a.drop, a.clashResolve], [2, 820, 8, 7, undefined])
  const b = (await readConntrackStats(fx('kernel-5.4')))!
  t.same([b.cpus.length, b.entries, b.insertFailed, b.drop, b.clashResolve], [6, 4211, 238, 7, undefined])
})

t.test('nf_conntrack: 5.10 has clashres', async t => {
  const s = (await readConntrackStats(fx('kernel-5.10')))!
  t.equal(s.clashResolve, 119)
  t.equal(s.totals.clashres, 119)
  t.equal(s.insertFailed, 1)
  t.equal(s.totals.delete_list, 0)
})

t.test('nf_conntrack: 6.x (chainlength), 8 CPUs', async t => {
  const s = (await readConntrackStats(fx('kernel-6.1')))!
  t.equal(s.cpus.length, 8)
  t.equal(s.entries, 9001)
  t.equal(s.clashResolve, 8 * 100 + 28)
  t.equal(s.insertFailed, 28)
  t.ok('chainlength' in s.totals)
})

t.test('nf_conntrack: this machine (6.18, real capture) and all-zero', async t => {
  const h = (await readConntrackStats(fx('host-6.18')))!
  t.ok(h.columns.includes('clashres'))
  t.equal(h.clashResolve, 0, 'column present with 0 is not "absent"')
  const z = (await readConntrackStats(fx('all-zero')))!
  t.equal(z.cpus.length, 4)
  t.same([z.entries, z.insertFailed, z.drop, z.clashResolve], [0, 0, 0, 0])
  t.ok(Object.values(z.totals).every(v => v === 0))
})

t.test('nf_conntrack: layout is read from the header, unknown columns kept', async t => {
  const s = (await readConntrackStats(fx('extra-columns')))!
  t.equal(s.totals.futurecount, 11)
  t.equal(s.totals.another_one, 10)
  t.equal(s.clashResolve, 7, 'clashres found at its new position')
  t.equal(s.insertFailed, 3)
  t.equal(s.entries, 77)
})

t.test('nf_conntrack: missing file, malformed content', async t => {
  t.equal(await readConntrackStats(fx('empty')), undefined, 'conntrack not loaded')
  await t.rejects(readConntrackStats(fx('malformed')), /nf_conntrack:3: expected 17 columns/)
  t.throws(() => parseConntrackStats(''), /empty file/)
  t.throws(() => parseConntrackStats('00000001 00000002\n'), /not a header/)
  t.throws(() => parseConntrackStats('entries drop\n0000000g 00000001\n'), /not a hex number/)
  const headerOnly = parseConntrackStats('entries insert_failed\n')
  t.same([headerOnly.entries, headerOnly.insertFailed], [0, 0], 'no CPU lines: zeros')
  t.equal(parseConntrackStats('insert_failed\n00000001\n').entries, undefined)
})

t.test(
  'unreadable file: error names the file',
  { skip: process.getuid?.() === 0 ? 'root can read mode 000 files' : false },
  async t => {
    const root = await mkdtemp(join(tmpdir(), 'procfs-'))
    await mkdir(join(root, 'net/stat'), { recursive: true })
    await writeFile(join(root, 'net/stat/nf_conntrack'), 'entries\n')
    await chmod(join(root, 'net/stat/nf_conntrack'), 0)
    await t.rejects(readConntrackStats(root), /cannot read .*nf_conntrack/)
  },
)

t.test('unreadable file (a directory in its place): error names the file', async t => {
  const root = await mkdtemp(join(tmpdir(), 'procfs-'))
  await mkdir(join(root, 'net/netfilter/nfnetlink_queue'), { recursive: true })
  await t.rejects(readNfqueueStats(root), /cannot read .*nfnetlink_queue: .*EISDIR/)
})

t.test('deltas: per CPU, modulo 2^32, clash counter by any name', async t => {
  const h = 'entries clashres insert_failed'
  const a = parseConntrackStats(`${h}\n00000005 fffffffe 00000001\n00000005 00000010 00000002\n`)
  const b = parseConntrackStats(`${h}\n00000007 00000003 00000004\n00000007 00000012 00000002\n`)
  t.equal(conntrackDelta(a, b, 'clashres'), 5 + 2, 'wrapped CPU counter')
  t.equal(conntrackDelta(a, b, 'insert_failed'), 3)
  t.equal(conntrackDelta(a, b, 'nope'), undefined)
  t.equal(clashResolveDelta(a, b), 7)
  const c = parseConntrackStats(`entries clash_resolve\n00000001 00000002\n`)
  const d = parseConntrackStats(`entries clash_resolve\n00000001 00000005\n00000001 00000001\n`)
  t.equal(clashResolveDelta(c, d), 4, 'CPU count changed: totals')
  t.equal(conntrackDelta(d, c, 'clash_resolve'), 0, 'never negative')
  const old = parseConntrackStats('entries insert_failed\n00000001 00000002\n')
  t.equal(clashResolveDelta(old, old), undefined)
})

t.test('nf_conntrack_count: the entry count decides "loaded", with or without the stat file', async t => {
  t.equal(await readConntrackCount(fx('kernel-5.10')), 2048)
  t.equal(await readConntrackCount(fx('no-stat-file')), 37, 'CONFIG_NF_CONNTRACK_PROCFS off: the count is still there')
  t.equal(await readConntrackStats(fx('no-stat-file')), undefined, 'and the stat file is not')
  t.equal(await readConntrackCount(fx('empty')), undefined, 'conntrack not loaded')
  const root = await mkdtemp(join(tmpdir(), 'procfs-'))
  await mkdir(join(root, 'sys/net/netfilter'), { recursive: true })
  await writeFile(join(root, 'sys/net/netfilter/nf_conntrack_count'), 'lots\n')
  await t.rejects(readConntrackCount(root), /nf_conntrack_count:1: expected a decimal count, got "lots"/)
})
