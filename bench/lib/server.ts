// The benchmark's DNS server: unbound in the lab's server namespace answering the query file's names,
// without the service names (the benchmark has no kube-proxy service). Starts nothing else.
import type { Lab } from '../../harness/topology.js'
import { startUnbound } from '../../harness/unbound.js'

export async function startBenchServer(lab: Lab, hosts: number): Promise<void> {
  await startUnbound({ ns: lab.server.ns, addresses: [lab.server.ipv4, lab.server.ipv6], hosts, services: 0 })
}
