// Conntrack statistics sources: netlink preferred, procfs fallback, "loaded" from nf_conntrack_count
// (fakes and /proc fixtures), and, as root, the real ctnetlink dump agreeing with the stat file in
// throwaway namespaces, which also shows that both are per network namespace.
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import {
  defaultConntrackReaders,
  readConntrack,
  statsFromNetlink,
  type ConntrackReaders,
} from '../../src/kernel/conntrack-stats.js'
import { parseConntrackStats, type ConntrackStats } from '../../src/kernel/procfs.js'
import { pairedDeltas } from '../helpers/conntrack.js'

const fx = (name: string) => fileURLToPath(new URL(`../fixtures/proc/${name}`, import.meta.url))

const nl = (insertFailed: number): ConntrackStats =>
  statsFromNetlink([
    { cpu: 1, counters: { found: 2, insert_failed: insertFailed, drop: 1, clash_resolve: 5 } },
    { cpu: 0, counters: { found: 1, insert_failed: 0, drop: 0, clash_resolve: 3 } },
  ])

t.test('statsFromNetlink: the procfs shape, rows in CPU order, totals summed', async t => {
  const s = nl(4)
  t.same(s.columns, ['found', 'insert_failed', 'drop', 'clash_resolve'])
  t.same(s.cpus, [
    [1, 0, 0, 3],
    [2, 4, 1, 5],
  ])
  t.same([s.insertFailed, s.drop, s.clashResolve, s.entries], [4, 1, 8, undefined])
  const old = statsFromNetlink([{ cpu: 0, counters: { insert_failed: 1, drop: 2 } }], 12)
  t.equal(old.clashResolve, undefined, 'a kernel without clash_resolve (before 5.10): absent, not 0')
  t.equal(old.entries, 12)
})

const fake = (over: Partial<ConntrackReaders>): ConntrackReaders => ({
  count: async () => 100,
  netlink: async () => nl(4),
  procfs: async () => parseConntrackStats('entries insert_failed drop clashres\n00000064 00000009 00000001 00000002\n'),
  ...over,
})

t.test('netlink is preferred; both sources are read and reported', async t => {
  const r = await readConntrack(fake({}))
  t.equal(r.source, 'netlink')
  t.equal(r.stats?.insertFailed, 4, 'counters from netlink, not from the stat file')
  t.equal(r.stats?.entries, 100, 'entries from nf_conntrack_count')
  t.same(r.sources, { netlink: { ok: true }, procfs: { ok: true } })
  t.equal(r.loaded, true)
})

t.test('netlink failing: procfs is used and the netlink error kept', async t => {
  const r = await readConntrack(
    fake({
      netlink: async () => {
        throw Object.assign(new Error('conntrack statistics over ctnetlink: ctnetlink: Operation not permitted'), {
          code: 'EPERM',
        })
      },
    }),
  )
  t.equal(r.source, 'procfs')
  t.equal(r.stats?.insertFailed, 9)
  t.same(r.sources.netlink, {
    ok: false,
    error: 'conntrack statistics over ctnetlink: ctnetlink: Operation not permitted',
  })
})

t.test('a kernel without the stat file (CONFIG_NF_CONNTRACK_PROCFS off) is still "loaded"', async t => {
  const r = await readConntrack(fake({ procfs: async () => undefined }))
  t.equal(r.loaded, true)
  t.equal(r.source, 'netlink')
  t.match(r.sources.procfs.error, /CONFIG_NF_CONNTRACK_PROCFS/)
  const neither = await readConntrack(
    fake({
      procfs: async () => undefined,
      netlink: async () => {
        throw new Error('nf_conntrack_netlink is not available')
      },
    }),
  )
  t.same([neither.loaded, neither.source, neither.stats], [true, 'none', undefined], 'loaded, but no counters')
})

t.test('not loaded: neither source is asked (a ctnetlink request would load the module)', async t => {
  let asked = 0
  const r = await readConntrack(
    fake({
      count: async () => undefined,
      netlink: async () => {
        asked++
        return nl(0)
      },
      procfs: async () => {
        asked++
        return undefined
      },
    }),
  )
  t.equal(asked, 0)
  t.same([r.loaded, r.source, r.stats], [false, 'none', undefined])
  t.match(r.sources.netlink.error, /not loaded/)
})

t.test('an unreadable count: loaded if a source answers', async t => {
  const r = await readConntrack(
    fake({
      count: async () => {
        throw new Error('EACCES')
      },
    }),
  )
  t.same([r.loaded, r.source, r.entries], [true, 'netlink', undefined])
})

t.test('default readers on /proc fixtures (netlink replaced: it reads the live kernel)', async t => {
  const noNetlink = async (): Promise<ConntrackStats> => {
    throw new Error('not in this test')
  }
  const k510 = await readConntrack({ ...defaultConntrackReaders(fx('kernel-5.10')), netlink: noNetlink })
  t.same([k510.loaded, k510.source, k510.entries, k510.stats?.clashResolve], [true, 'procfs', 2048, 0x3d + 0x3a])
  const noStat = await readConntrack({ ...defaultConntrackReaders(fx('no-stat-file')), netlink: noNetlink })
  t.same([noStat.loaded, noStat.source, noStat.entries], [true, 'none', 37], 'no stat file: loaded, no counters')
  const empty = await readConntrack({ ...defaultConntrackReaders(fx('empty')), netlink: noNetlink })
  t.same([empty.loaded, empty.source], [false, 'none'])
})

// ---- root: the real ctnetlink dump against the stat file, in throwaway namespaces --------------

const addonPath = fileURLToPath(new URL('../../build/Release/nfqueue.node', import.meta.url))

function sh(argv: string[]): { ok: boolean; out: string } {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 20000 })
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` }
}

function whyNot(): string | false {
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces and query ctnetlink'
  if (!sh(['ip', '-V']).ok) return 'iproute2 `ip` not found'
  if (!sh(['iptables', '-V']).ok) return 'iptables not found (needed to enable conntrack in the namespace)'
  return false
}

function netns(t: Test): string {
  const name = `dnss-ct${process.pid % 10000}-${randomBytes(1).toString('hex')}`.slice(0, 15)
  const r = sh(['ip', 'netns', 'add', name])
  if (!r.ok) throw new Error(`ip netns add ${name}: ${r.out}`)
  t.teardown(() => {
    sh(['ip', 'netns', 'del', name])
  })
  sh(['ip', '-n', name, 'link', 'set', 'lo', 'up'])
  return name
}

/** Both sources read back to back by one process inside `ns`; optionally sends UDP first. */
function readInNs(ns: string, sendDatagrams = 0): { netlink: ConntrackStats; procfs: ConntrackStats; count: number } {
  const script = `
import { createRequire } from 'node:module'
import fs from 'node:fs'
import dgram from 'node:dgram'
const addon = createRequire(import.meta.url)(${JSON.stringify(addonPath)})
// Each datagram from a fresh socket (new source port): one new conntrack entry each.
for (let i = 0; i < ${sendDatagrams}; i++) {
  const s = dgram.createSocket('udp4')
  await new Promise(r => s.send(Buffer.from('x'), 9, '127.0.0.1', r))
  s.close()
}
await new Promise(r => setTimeout(r, ${sendDatagrams ? 100 : 0}))
const netlink = addon.conntrackStats()
const procfs = fs.readFileSync('/proc/net/stat/nf_conntrack', 'utf8')
const count = Number(fs.readFileSync('/proc/sys/net/netfilter/nf_conntrack_count', 'utf8'))
process.stdout.write(JSON.stringify({ netlink, procfs, count }))
`
  const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 30000,
  })
  if (r.status !== 0) throw new Error(`child in ${ns} failed: ${r.stderr}`)
  const j = JSON.parse(r.stdout) as { netlink: Parameters<typeof statsFromNetlink>[0]; procfs: string; count: number }
  return { netlink: statsFromNetlink(j.netlink), procfs: parseConntrackStats(j.procfs), count: j.count }
}

const skip = whyNot()
t.test('ctnetlink and procfs agree, per network namespace', { skip }, async t => {
  const busy = netns(t)
  const quiet = netns(t)
  // Any rule that uses conntrack makes the kernel track this namespace's traffic.
  const rule = sh([
    'ip',
    'netns',
    'exec',
    busy,
    'iptables',
    '-w',
    '-A',
    'OUTPUT',
    '-m',
    'conntrack',
    '--ctstate',
    'NEW',
  ])
  t.ok(rule.ok, `conntrack enabled in ${busy}: ${rule.out}`)
  sh(['ip', 'netns', 'exec', quiet, 'iptables', '-w', '-A', 'OUTPUT', '-m', 'conntrack', '--ctstate', 'NEW'])
  const b0 = readInNs(busy)
  const q0 = readInNs(quiet)
  t.equal(b0.netlink.cpus.length, b0.procfs.cpus.length, 'one row per possible CPU in both')
  const b1 = readInNs(busy, 50)
  const q1 = readInNs(quiet)
  const busyDeltas = pairedDeltas(b0.netlink, b1.netlink, b0.procfs, b1.procfs)
  t.ok(Object.keys(busyDeltas).length >= 8, `compared ${Object.keys(busyDeltas).join(', ')}`)
  for (const [name, d] of Object.entries(busyDeltas)) t.equal(d.netlink, d.procfs, `${name}: netlink = procfs`)
  // Plain new flows move no per-CPU counter on current kernels (insert counts only ctnetlink-made
  // entries since 5.x); the count shows the namespace tracked them. Non-zero counters agreeing:
  // the clash test in test/integration/race.ts.
  t.ok(b1.count - b0.count >= 50, `nf_conntrack_count +${b1.count - b0.count} for 50 new flows`)
  t.equal(q1.count, 0, 'the other namespace tracked none of them: count and statistics are per netns')
  for (const [name, d] of Object.entries(pairedDeltas(q0.netlink, q1.netlink, q0.procfs, q1.procfs)))
    t.same([d.netlink, d.procfs], [0, 0], `quiet namespace: ${name} unchanged in both`)
})
