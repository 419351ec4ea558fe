// Shared by the dashboard and alert-rule tests: the metric names a PromQL expression selects, and
// every sample name the daemon's registry renders, so a query naming a metric that does not exist fails.
import { compilePolicy } from '../../src/dataplane/policy.js'
import { registerRuleMetrics } from '../../src/rules/metrics.js'
import { Metrics } from '../../src/daemon/metrics.js'
import { statsFromNetlink } from '../../src/kernel/conntrack-stats.js'
import { constants } from '../../src/dataplane/constants.js'
import { emptyStats } from './fake-queue.js'

const AGGREGATIONS = new Set([
  'sum',
  'min',
  'max',
  'avg',
  'count',
  'stddev',
  'stdvar',
  'topk',
  'bottomk',
  'quantile',
  'count_values',
  'group',
  'limitk',
  'limit_ratio',
])
const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'offset',
  'bool',
  'inf',
  'nan',
])

/** Metric names a PromQL expression selects: functions, aggregations, labels, strings, durations and Grafana variables stripped. */
export function metricNames(expr: string): string[] {
  let s = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
  s = s.replace(/\{[^}]*\}/g, ' ')
  s = s.replace(/\[[^\]]*\]/g, ' ')
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
  s = s.replace(/\$\{[^}]*\}|\$\w+/g, ' ')
  const names = new Set<string>()
  for (const m of s.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const word = m[0]
    const before = s[m.index - 1] ?? ' '
    if (/[0-9.]/.test(before)) continue // 5m, 1e3
    if (AGGREGATIONS.has(word) || KEYWORDS.has(word.toLowerCase())) continue
    if (
      s
        .slice(m.index + word.length)
        .trimStart()
        .startsWith('(')
    )
      continue // a function call
    names.add(word)
  }
  return [...names]
}

/** Every sample name the daemon's registry renders (histograms as _bucket/_sum/_count), with every source present. */
export async function exportedNames(): Promise<Set<string>> {
  const stats = emptyStats()
  stats.running = true
  const m = new Metrics({
    constants,
    queueStats: () => [{ queue: 0, stats }],
    queues: () => [0],
    policy: () =>
      compilePolicy({ rules: [{ qtype: 28, holdMs: 5 }], dryRun: false, mode: 'fixed', pairWindowMs: 5, maxHeld: 10 }),
    readNfqueue: async () => [
      { queue: 0, portid: 1, waiting: 0, copyMode: 2, copyRange: 512, dropped: 0, userDropped: 0, idSequence: 0 },
    ],
    readConntrackCount: async () => 0,
    readConntrackNetlink: async () =>
      statsFromNetlink([{ cpu: 0, counters: { insert_failed: 0, drop: 0, clash_resolve: 0 } }]),
    readConntrack: async () => ({
      columns: [],
      cpus: [],
      totals: {},
      entries: 0,
      insertFailed: 0,
      drop: 0,
      clashResolve: 0,
    }),
  })
  // Rule health is registered by the daemon when it manages the rules (--rules manage, the default).
  registerRuleMetrics(m.registry, () => ({
    installed: { ipv4: true, ipv6: true },
    errors: { install: 0, reconcile: 0, remove: 0 },
    lastSyncSeconds: 1,
    problem: undefined,
  }))
  const text = await m.render()
  const names = new Set<string>()
  for (const line of text.split('\n')) {
    const name = /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line)?.[1]
    if (name && !line.startsWith('#')) names.add(name)
  }
  return names
}
