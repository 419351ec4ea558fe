// The race probe's result as Prometheus gauges (the fleet survey scrapes them): pairs sent, clashes
// dropped and resolved, and an info series with the kernel release and the outcome. Built once from a
// finished probe; nothing here runs the probe or changes anything.
import client from 'prom-client'
import type { ProbeResult } from './run.js'

export function probeRegistry(r: ProbeResult, node: string | undefined): client.Registry {
  const registry = new client.Registry()
  const f = r.verdict.figures
  // Not measured is NaN, not 0: "0 dropped" must only ever mean the probe ran and saw none.
  const value = (n: number | undefined): number => (n === undefined ? NaN : n)
  const gauge = (name: string, help: string, v: number | undefined): void => {
    new client.Gauge({ name, help, registers: [registry] }).set(value(v))
  }
  gauge('dns_shaper_probe_pairs', 'Split-CPU A/AAAA pairs the race probe sent (NaN: it did not run)', f?.pairs)
  gauge(
    'dns_shaper_probe_clashes_dropped',
    'Conntrack clashes the kernel dropped during the race probe: above 0, this node needs dns-shaper',
    f?.dropped,
  )
  gauge(
    'dns_shaper_probe_clashes_resolved',
    'Conntrack clashes the kernel resolved (inserted both entries) during the race probe',
    f?.resolved,
  )
  gauge('dns_shaper_probe_duration_seconds', 'How long the race probe ran', r.elapsedSeconds)
  const info = new client.Gauge({
    name: 'dns_shaper_probe_info',
    help: 'Always 1: the kernel release probed, the outcome (drops, resolves, inconclusive) and why it was inconclusive',
    labelNames: ['kernel_release', 'outcome', 'reason', 'node'],
    registers: [registry],
  })
  info.set(
    { kernel_release: r.release, outcome: r.verdict.outcome, reason: r.verdict.reason ?? '', node: node ?? '' },
    1,
  )
  return registry
}
