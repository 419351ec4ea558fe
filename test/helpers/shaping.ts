// Test helper: what "A passes, AAAA waits the hold" means, measured with the lab probe from the
// client namespace, against an unshaped baseline taken the same way. Used by every test that
// checks a running shaper end to end (checkout and container image).
import type { Test } from 'tap'
import type { Lab } from '../../harness/topology.js'
import { runProbeIn } from '../../harness/probe-runner.js'
import type { ProbeResult } from '../../harness/probe-lib.js'

export type Family = 'ipv4' | 'ipv6'
export type Baseline = Record<string, ProbeResult>

export const p50 = (r: ProbeResult, type: string): number => r.byType[type]?.p50Us ?? NaN
export const min = (r: ProbeResult, type: string): number => r.byType[type]?.minUs ?? NaN

/** Lookups from fresh sockets, like applications, bounded in count and time. */
export function probeType(
  lab: Lab,
  server: string,
  type: 'A' | 'AAAA',
  count: number,
  extra: Record<string, unknown> = {},
): Promise<ProbeResult> {
  return runProbeIn(lab.client.ns, {
    server,
    types: [type],
    count,
    intervalMs: 2,
    timeoutMs: 2000,
    freshSocket: true,
    ...extra,
  })
}

/** A and AAAA latencies with nothing shaping, per family: the reference for expectShaped. */
export async function baseline(lab: Lab, count: number): Promise<Baseline> {
  const base: Baseline = {}
  for (const fam of ['ipv4', 'ipv6'] as const) {
    for (const type of ['A', 'AAAA'] as const)
      base[`${fam}/${type}`] = await probeType(lab, lab.server[fam], type, count)
  }
  return base
}

/**
 * Per family: nothing lost, A median under 1 ms above unshaped, no AAAA before the hold, AAAA
 * median within hold + `aaaaMarginMs` of unshaped.
 */
export async function expectShaped(
  t: Test,
  lab: Lab,
  base: Baseline,
  o: { delayMs: number; count: number; aaaaMarginMs: number },
): Promise<void> {
  for (const fam of ['ipv4', 'ipv6'] as const) {
    const a = await probeType(lab, lab.server[fam], 'A', o.count)
    const aaaa = await probeType(lab, lab.server[fam], 'AAAA', o.count)
    const baseA = p50(base[`${fam}/A`]!, 'A')
    const baseAAAA = p50(base[`${fam}/AAAA`]!, 'AAAA')
    t.equal(a.lost + aaaa.lost, 0, `${fam}: nothing lost`)
    t.ok(p50(a, 'A') - baseA < 1000, `${fam}: A median ${p50(a, 'A')} us vs ${baseA} us unshaped: under 1 ms added`)
    t.ok(
      min(aaaa, 'AAAA') >= o.delayMs * 1000,
      `${fam}: fastest AAAA ${min(aaaa, 'AAAA')} us is no earlier than the ${o.delayMs} ms hold`,
    )
    t.ok(
      p50(aaaa, 'AAAA') <= baseAAAA + (o.delayMs + o.aaaaMarginMs) * 1000,
      `${fam}: AAAA median ${p50(aaaa, 'AAAA')} us within hold + ${o.aaaaMarginMs} ms of unshaped ${baseAAAA} us`,
    )
    t.comment(
      `${fam}: A p50 ${p50(a, 'A')} us (unshaped ${baseA}), AAAA p50 ${p50(aaaa, 'AAAA')} us (unshaped ${baseAAAA}), hold ${o.delayMs} ms`,
    )
  }
}

/** n clients at once, each one AAAA lookup of its own name (host1..hostN.example.test), from the client namespace. */
export function aaaaLookups(lab: Lab, n: number, timeoutMs: number): Promise<ProbeResult[]> {
  return Promise.all(
    Array.from({ length: n }, (_, i) =>
      runProbeIn(lab.client.ns, {
        server: lab.server.ipv4,
        types: ['AAAA'],
        names: [`host${i + 1}.example.test`],
        count: 1,
        timeoutMs,
      }),
    ),
  )
}
