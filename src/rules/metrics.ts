// Rule health as Prometheus series, read from the rule sync at scrape time. Registered only when the
// daemon manages the rules (--rules manage): with --rules none there is nothing of ours to watch.
import type client from 'prom-client'
import { SnapshotMetric } from '../daemon/metrics.js'
import { FAMILIES, SYNC_OPS, type RuleHealth } from './sync.js'

export function registerRuleMetrics(registry: client.Registry, health: () => RuleHealth): void {
  const add = (m: SnapshotMetric): void => registry.registerMetric(m as unknown as client.Metric)
  add(
    new SnapshotMetric(
      'dns_shaper_rules_installed',
      'Whether the live iptables rules of a family matched the plan at the last rule operation (1) or not (0). A family planned to have no rules (--ipv6 off, --dns-ip without it) matches when it has none.',
      'gauge',
      () => {
        const h = health()
        return FAMILIES.map(family => ({ labels: { family }, value: h.installed[family] ? 1 : 0 }))
      },
    ),
  )
  add(
    new SnapshotMetric(
      'dns_shaper_rules_sync_errors_total',
      'Failed rule operations, by operation: install (start-up and reload), reconcile (periodic check and reinstall), remove (stop).',
      'counter',
      () => {
        const h = health()
        return SYNC_OPS.map(op => ({ labels: { op }, value: h.errors[op] }))
      },
    ),
  )
  add(
    new SnapshotMetric(
      'dns_shaper_rules_last_sync_timestamp_seconds',
      'Unix time of the last rule operation that left the rules matching the plan (install, a reconcile check or reinstall) or removed them; 0 before the first.',
      'gauge',
      () => [{ value: health().lastSyncSeconds ?? 0 }],
    ),
  )
}
