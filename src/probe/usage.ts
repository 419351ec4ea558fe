// `dns-shaper probe --help`: kept apart so the CLI prints it without loading the probe (or the addon).
import { DEFAULT_PROBE_PAIRS, MAX_PROBE_PAIRS } from './limits.js'

export const PROBE_USAGE = `usage: dns-shaper probe [--json] [--pairs N] [--serve HOST:PORT]
  measures whether this kernel drops conntrack clashes: builds client, router and server in network
  namespaces of its own (never the node's), DNATs a service address at random to three endpoints,
  sends split-CPU A/AAAA pairs (masquerade off, then on) and reads the router's conntrack counters.
  Needs CAP_SYS_ADMIN (namespaces) and two CPUs; without them it says so and changes nothing.
  Exit 0 when it measured (drops or resolves), 1 when inconclusive.
  --json                   one line of JSON (node, kernel release, outcome, figures)
  --pairs N                split-CPU pairs in all (${DEFAULT_PROBE_PAIRS}; 2..${MAX_PROBE_PAIRS})
  --serve HOST:PORT        then serve the result on /metrics (dns_shaper_probe_*) until SIGTERM
                           (IPv6 in brackets: [::]:9364)
`
