// The race probe's agent: one per probe namespace, started as `dns-shaper-netns node agent.js`, so its
// own network namespace IS the probe namespace and lives exactly as long as it does. It answers
// requests of the parent (one JSON object per line on stdin; one reply per line on stdout): run a
// command in this namespace, read or set a sysctl here, read conntrack statistics here, answer DNS,
// send split-CPU pairs. It exits when stdin closes (parent gone), so nothing outlives a killed probe.
// It must not act on anything outside its namespace and never runs a command through a shell.
import { readFile, writeFile } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { createRunner } from '../kernel/exec.js'
import { errorMessage } from '../errors.js'
import { startResponder, type Responder } from './responder.js'
import type { AgentReply, AgentRequest } from './agent-protocol.js'

/** A forgotten agent (parent stopped reading) still ends: no probe takes this long. */
const MAX_LIFETIME_MS = 15 * 60 * 1000
const run = createRunner({ timeoutMs: 20_000, maxBuffer: 1024 * 1024 })
let responder: Responder | undefined

/** /proc/sys path of a dotted sysctl name; names come from the probe's own code, still checked. */
function sysctlPath(name: string): string {
  if (!/^net\.[a-z0-9_.]+$/.test(name)) throw new Error(`not a net sysctl: ${name}`)
  return `/proc/sys/${name.replaceAll('.', '/')}`
}

async function handle(req: AgentRequest): Promise<unknown> {
  switch (req.op) {
    case 'exec':
      return run(req.argv, { input: req.input, timeoutMs: req.timeoutMs })
    case 'sysctl': {
      const path = sysctlPath(req.name)
      const now = (await readFile(path, 'utf8')).trim()
      // Written only when it differs: /proc/sys is read-only in most containers, and a Kubernetes
      // node's new namespaces already inherit ip_forward=1 from the node.
      if (req.value !== undefined && now !== req.value) await writeFile(path, req.value)
      return { before: now }
    }
    case 'stats': {
      const { readConntrack, defaultConntrackReaders } = await import('../kernel/conntrack-stats.js')
      return readConntrack(defaultConntrackReaders())
    }
    case 'serve':
      await responder?.close()
      responder = await startResponder(req.addresses, req.port)
      return { addresses: req.addresses }
    case 'served':
      return { answered: responder?.answered ?? 0 }
    case 'send': {
      const { splitCpuPairs } = await import('../dataplane/nfqueue.js')
      return splitCpuPairs(req.options)
    }
    case 'cpus': {
      const { allowedCpus } = await import('../dataplane/nfqueue.js')
      return allowedCpus()
    }
  }
}

function reply(r: AgentReply): void {
  process.stdout.write(JSON.stringify(r) + '\n')
}

function main(): void {
  const lifetime = setTimeout(() => process.exit(3), MAX_LIFETIME_MS)
  lifetime.unref()
  // stdin's end is seen only between requests; a parent that died mid-request is seen by its pid.
  const parent = process.ppid
  setInterval(() => {
    if (process.ppid !== parent) process.exit(4)
  }, 1000).unref()
  const lines = createInterface({ input: process.stdin })
  // Requests are answered in order, one at a time: the parent waits for each reply anyway.
  let chain = Promise.resolve()
  lines.on('line', line => {
    chain = chain.then(async () => {
      let req: AgentRequest
      try {
        req = JSON.parse(line) as AgentRequest
      } catch (e: unknown) {
        reply({ id: -1, ok: false, error: `bad request: ${errorMessage(e)}` })
        return
      }
      try {
        reply({ id: req.id, ok: true, result: await handle(req) })
      } catch (e: unknown) {
        reply({ id: req.id, ok: false, error: errorMessage(e) })
      }
    })
  })
  lines.on('close', () => {
    void chain.then(async () => {
      await responder?.close()
      process.exit(0)
    })
  })
  reply({ id: 0, ok: true, result: { pid: process.pid } })
}

main()
