// src/probe/metrics.ts: the survey's gauges, and the metric names docs/deploy.md tells operators to query.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { probeRegistry } from '../../src/probe/metrics.js'
import { notRun } from '../../src/probe/verdict.js'
import type { ProbeResult } from '../../src/probe/run.js'

const measured: ProbeResult = {
  release: '5.4.0-150-generic',
  elapsedSeconds: 12.5,
  verdict: {
    outcome: 'drops',
    figures: { pairs: 300, queries: 600, answered: 590, lost: 10, clashes: 212, dropped: 10, resolved: 202 },
    text: '',
  },
}

t.test('a measured probe: its figures, and the info series', async t => {
  const text = await probeRegistry(measured, 'node-a').metrics()
  t.match(text, /^dns_shaper_probe_pairs 300$/m)
  t.match(text, /^dns_shaper_probe_clashes_dropped 10$/m)
  t.match(text, /^dns_shaper_probe_clashes_resolved 202$/m)
  t.match(text, /^dns_shaper_probe_duration_seconds 12\.5$/m)
  t.match(
    text,
    /^dns_shaper_probe_info\{kernel_release="5\.4\.0-150-generic",outcome="drops",reason="",node="node-a"\} 1$/m,
  )
})

t.test('not run: NaN figures (never a 0 that reads as "no drops"), the reason in the info series', async t => {
  const r: ProbeResult = { release: '6.1.0', elapsedSeconds: 0, verdict: notRun('one-cpu', 'CPU 0 only') }
  const text = await probeRegistry(r, undefined).metrics()
  // prom-client writes "Nan"; Prometheus parses the value with Go's ParseFloat, which ignores case.
  t.match(text, /^dns_shaper_probe_clashes_dropped nan$/im)
  t.match(text, /^dns_shaper_probe_pairs nan$/im)
  t.match(text, /outcome="inconclusive",reason="one-cpu",node=""\} 1$/m)
})

t.test('every dns_shaper_probe_* series docs/deploy.md names is one the survey exports', async t => {
  const doc = readFileSync(new URL('../../docs/deploy.md', import.meta.url), 'utf8')
  const named = [...new Set(doc.match(/dns_shaper_probe_[a-z_]+/g) ?? [])]
  t.ok(named.includes('dns_shaper_probe_clashes_dropped'), 'the PromQL query is there')
  const exported = (await probeRegistry(measured, 'n').getMetricsAsJSON()).map(m => m.name)
  for (const n of named) t.ok(exported.includes(n), `${n} is exported`)
})
