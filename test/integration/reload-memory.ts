// Memory across config reloads: the real daemon (lab router namespace, node flags of the image) reloads
// its --config file N and then N more times, each reload waited for (and its rule reinstall, when the
// queued types change); a preloaded fixture (test/fixtures/memory/on-signal.mjs, node --expose-gc) forces
// full GCs and reports the V8 heap, external memory and RSS at reload 0, N and 2N. What a reload leaves
// behind must not grow with reloads: the second N reloads against the memory at N, never a timed bound.
// The first N are warm-up: V8 and malloc settle there (Node 24: about +7 MB of RSS over the first 100-200).
import t from 'tap'
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Lab } from '../../harness/topology.js'
import { CLI, DaemonProcess, checkoutImageNodeFlags, type LogRecord } from '../../harness/daemon.js'
import { skipFileUnless } from '../../harness/skip.js'
import { withDnsLab } from '../../harness/dns-lab.js'
import { RELOAD_CYCLE as CONFIGS } from '../helpers/reload-cycle.js'
import { loadConfig } from '../../src/config/load.js'
import { compilePlan, diffPlans } from '../../src/plan/plan.js'

skipFileUnless({ root: 'network namespaces, iptables, NFQUEUE' })

const FIXTURE = fileURLToPath(new URL('../fixtures/memory/on-signal.mjs', import.meta.url))
/** Reloads per phase: a reload that kept its 64 KiB policy table would add 9.4 MiB over 150. */
const N = Number(process.env.DNS_SHAPER_TEST_RELOAD_MEMORY_N ?? 150)
/** The daemon's node flags besides --expose-gc: the image's ENTRYPOINT's unless set (a space: none). */
const NODE_FLAGS =
  process.env.DNS_SHAPER_TEST_RELOAD_MEMORY_NODE_FLAGS?.split(' ').filter(Boolean) ?? checkoutImageNodeFlags()
/** The daemon's node binary: this one by default; the image's (Node 24, deploy/image/package.json) to measure it. */
const NODE = process.env.DNS_SHAPER_TEST_RELOAD_MEMORY_NODE ?? process.execPath
/** Retained JS (heap used + external) after a forced GC may grow by this share of its size at N over the next N. */
const HEAP_GROWTH = 0.02
/** RSS after a forced GC may grow by this share of RSS at N over the next N (malloc and V8 keep freed pages). */
const RSS_GROWTH = 0.05
/**
 * How a reload is asked for: SIGHUP (default), or `poll`: the daemon's --config poller notices the new
 * content (every 1 s here, a ConfigMap edit on a node), so each reload takes about a second.
 */
const VIA = process.env.DNS_SHAPER_TEST_RELOAD_MEMORY_VIA ?? 'sighup'
if (!(N >= 20 && N <= 2000)) throw new Error('DNS_SHAPER_TEST_RELOAD_MEMORY_N must be 20..2000')
if (VIA !== 'sighup' && VIA !== 'poll') throw new Error('DNS_SHAPER_TEST_RELOAD_MEMORY_VIA must be sighup or poll')
/** VmRSS without a forced GC every this many reloads, for the curve in the comments. */
const EVERY = Math.floor(N / 5)

let lab: Lab
const work = mkdtempSync(join(tmpdir(), 'dnss-reload-memory-'))
withDnsLab(l => (lab = l), { cleanup: () => rmSync(work, { recursive: true, force: true }) })

interface MemorySample {
  seq: number
  rssKb: number
  anonKb: number
  heapUsed: number
  heapTotal: number
  external: number
  arrayBuffers: number
  mallocedMemory: number
  resources: number
  listeners: number
  cpuUs: number
  spaces: Record<string, [number, number]>
  /** VmRSS just before the forced GC (what the soak samples). */
  rssBeforeGcKb: number
  reloads: number
}

async function waitFor<T>(what: string, f: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = f()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`not within ${timeoutMs} ms: ${what}`)
    await new Promise(r => setTimeout(r, 20))
  }
}

t.test(`memory after forced GC at 0, ${N} and ${2 * N} config reloads`, { timeout: 600_000 }, async t => {
  const configFile = join(work, 'config.json')
  const memOut = join(work, 'memory.jsonl')
  // Which reloads reinstall the rules (the queued types change), from the product's own plan diff.
  const plans = CONFIGS.map(c => {
    writeFileSync(configFile, JSON.stringify(c))
    return compilePlan(loadConfig(['--config', configFile, '--hooks', 'prerouting'], { env: {} }))
  })
  writeFileSync(configFile, JSON.stringify(CONFIGS[0]))
  // One way to reload at a time, so each reload is counted exactly: SIGHUP without the poller, or the poller.
  const args = [
    'run',
    '--hooks',
    'prerouting',
    '--config',
    configFile,
    '--config-poll-interval',
    VIA === 'poll' ? '1' : '0',
    '--metrics-listen',
    `${lab.router.clientIpv4}:9363`,
  ]
  const d = new DaemonProcess(lab.router.ns, args, {
    command: [NODE, ...NODE_FLAGS, '--expose-gc', '--import', FIXTURE, CLI],
    env: { ...process.env, DNS_SHAPER_TEST_MEMORY_OUT: memOut },
  })
  t.teardown(() => d.stop())
  await d.ready()
  const pid = d.child.pid!
  const vmRssKb = (): number =>
    Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN)
  const count = (msg: string): number => d.logs.filter((r: LogRecord) => r.msg === msg).length

  let reloads = 0
  let current = 0
  let rulesUpdated = 0
  /** One reload: the next config, SIGHUP, wait until applied (and its rules, when they change). */
  async function reload(): Promise<void> {
    const next = (current + 1) % CONFIGS.length
    // Replaced, not rewritten in place: the poller must never read a half-written file.
    writeFileSync(`${configFile}.tmp`, JSON.stringify(CONFIGS[next]))
    renameSync(`${configFile}.tmp`, configFile)
    const changesRules = diffPlans(plans[current]!, plans[next]!).rules
    if (VIA === 'sighup') d.signal('SIGHUP')
    reloads++
    current = next
    await waitFor(`reload ${reloads} applied`, () => (count('config reloaded') >= reloads ? true : undefined))
    if (changesRules) {
      rulesUpdated++
      await waitFor(`rules of reload ${reloads} installed`, () =>
        count('rules updated for the reloaded query types') >= rulesUpdated ? true : undefined,
      )
    }
  }

  /** Rss kB per mapping of /proc/PID/smaps (address, size, name): where RSS grew, for a failure. */
  const smaps = (): Map<string, number> => {
    const m = new Map<string, number>()
    let key = ''
    for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
      const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line)
      if (head) {
        const size = (parseInt(head[2]!, 16) - parseInt(head[1]!, 16)) / 1024
        key = `${head[1]} ${size}kB ${head[3] || 'anon'}`
      } else {
        const r = /^Rss:\s+(\d+) kB/.exec(line)
        if (r) m.set(key, Number(r[1]))
      }
    }
    return m
  }
  const maps: Map<string, number>[] = []
  const samples: MemorySample[] = []
  async function sample(): Promise<MemorySample> {
    const rssBeforeGcKb = vmRssKb()
    d.signal('SIGUSR2')
    const line = await waitFor('the memory fixture to answer', () => {
      if (!existsSync(memOut)) return undefined
      const lines = readFileSync(memOut, 'utf8').trim().split('\n')
      return lines.length > samples.length ? lines[samples.length] : undefined
    })
    maps.push(smaps())
    const s = { ...(JSON.parse(line!) as MemorySample), rssBeforeGcKb, reloads }
    samples.push(s)
    return s
  }

  // Warm-up: one whole cycle, so every config's code path has run once before the reference.
  for (let i = 0; i < CONFIGS.length * 2; i++) await reload()
  const at0 = await sample()
  const curve: string[] = []
  for (let i = 0; i < N; i++) {
    await reload()
    if ((i + 1) % EVERY === 0) curve.push(`${reloads}:${vmRssKb()}`)
  }
  const atN = await sample()
  for (let i = 0; i < N; i++) {
    await reload()
    if ((i + 1) % EVERY === 0) curve.push(`${reloads}:${vmRssKb()}`)
  }
  const at2N = await sample()
  t.comment(`VmRSS kB by reload, no GC forced: ${curve.join(' ')}`)
  const kb = (b: number): string => `${Math.round(b / 1024)} kB`
  for (const s of samples)
    t.comment(
      `reload ${s.reloads}: rss ${s.rssBeforeGcKb} kB -> after GC ${s.rssKb} kB (anon ${s.anonKb}), heapUsed ${kb(s.heapUsed)}, heapTotal ${kb(s.heapTotal)} (new space ${kb(s.spaces.new_space?.[1] ?? NaN)}, old ${kb(s.spaces.old_space?.[1] ?? NaN)}), external ${kb(s.external)}, arrayBuffers ${kb(s.arrayBuffers)}, malloced ${kb(s.mallocedMemory)}, resources ${s.resources}, listeners ${s.listeners}`,
    )
  t.comment(
    `daemon CPU per reload (this machine): ${((atN.cpuUs - at0.cpuUs) / N / 1000).toFixed(1)} ms over reloads ${at0.reloads}..${atN.reloads}, ${((at2N.cpuUs - atN.cpuUs) / N / 1000).toFixed(1)} ms over ${atN.reloads}..${at2N.reloads} (forced GCs included)`,
  )
  t.comment(`reload memory summary: ${JSON.stringify({ node: NODE, nodeFlags: NODE_FLAGS, n: N, at0, atN, at2N })}`)
  t.equal(count('config reload failed; the running policy is unchanged'), 0, 'every reload applied')
  t.equal(at2N.listeners, at0.listeners, 'no process listener added per reload')
  t.equal(at2N.resources, at0.resources, 'no timer or handle added per reload')
  const retained = (s: MemorySample): number => s.heapUsed + s.external
  t.ok(
    retained(at2N) - retained(atN) <= retained(atN) * HEAP_GROWTH,
    `JS retained after GC (heap used + external): ${kb(retained(atN))} at reload ${atN.reloads}, ${kb(retained(at2N))} at ${at2N.reloads}: grew by at most ${HEAP_GROWTH * 100} % (reference at reload ${at0.reloads}: ${kb(retained(at0))})`,
  )
  const rssOk = at2N.rssKb - atN.rssKb <= atN.rssKb * RSS_GROWTH
  t.ok(
    rssOk,
    `RSS after GC: ${atN.rssKb} kB at reload ${atN.reloads}, ${at2N.rssKb} kB at ${at2N.reloads}: grew by at most ${RSS_GROWTH * 100} % (reference at reload ${at0.reloads}: ${at0.rssKb} kB)`,
  )
  if (!rssOk) {
    const [before, after] = [maps[1]!, maps[2]!]
    const grew = [...after]
      .filter(([k, v]) => v - (before.get(k) ?? 0) >= 256)
      .map(([k, v]) => `${k}: +${v - (before.get(k) ?? 0)} kB`)
    t.comment(
      `mappings whose Rss grew by 256 kB or more between reload ${atN.reloads} and ${at2N.reloads}:\n${grew.join('\n')}`,
    )
  }
  t.equal((await d.stop()).code, 0, 'SIGTERM exits 0')
})
