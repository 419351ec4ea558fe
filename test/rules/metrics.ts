// src/rules/metrics.ts: the rule health series, their names, labels and pre-created zeros.
import t from 'tap'
import client from 'prom-client'
import { registerRuleMetrics } from '../../src/rules/metrics.js'
import type { RuleHealth } from '../../src/rules/sync.js'

t.test('rule health series', async t => {
  const registry = new client.Registry()
  let h: RuleHealth = {
    installed: { ipv4: false, ipv6: false },
    errors: { install: 0, reconcile: 0, remove: 0 },
    lastSyncSeconds: undefined,
    problem: 'rules not installed yet',
  }
  registerRuleMetrics(registry, () => h)
  let text = await registry.metrics()
  t.match(text, /^# TYPE dns_shaper_rules_installed gauge$/m)
  t.match(text, /^dns_shaper_rules_installed\{family="ipv4"\} 0$/m)
  t.match(text, /^dns_shaper_rules_installed\{family="ipv6"\} 0$/m)
  t.match(text, /^# TYPE dns_shaper_rules_sync_errors_total counter$/m)
  for (const op of ['install', 'reconcile', 'remove'])
    t.match(text, new RegExp(`^dns_shaper_rules_sync_errors_total\\{op="${op}"\\} 0$`, 'm'))
  t.match(text, /^dns_shaper_rules_last_sync_timestamp_seconds 0$/m)
  h = {
    ...h,
    installed: { ipv4: true, ipv6: false },
    errors: { install: 2, reconcile: 1, remove: 0 },
    lastSyncSeconds: 1700000000.5,
  }
  text = await registry.metrics()
  t.match(text, /^dns_shaper_rules_installed\{family="ipv4"\} 1$/m)
  t.match(text, /^dns_shaper_rules_sync_errors_total\{op="install"\} 2$/m)
  t.match(text, /^dns_shaper_rules_last_sync_timestamp_seconds 1700000000\.5$/m)
})
