#!/usr/bin/env node
// DNS round-trip probe CLI, run inside a lab namespace: `ip netns exec NS node dist-harness/harness/probe.js --server IP ...`.
// Prints one JSON object on stdout; exit 0 when it ran (losses are data, not errors), 2 on bad flags, 1 on failure.
// It only wires node:dgram and the clock to dns-probe-lib; it must not hold logic worth unit testing.

import dgram from 'node:dgram'
import { familyOf, runProbe } from './probe-lib.js'
import { ProbeArgError, parseProbeArgs } from './probe-args.js'
import type { OpenSocket, ProbeOptions } from './probe-lib.js'

function udpOpener(o: ProbeOptions): OpenSocket {
  return (onMessage, onError) =>
    new Promise((resolve, reject) => {
      const s = dgram.createSocket(familyOf(o.server))
      let connected = false
      s.on('message', m => onMessage(m))
      s.on('error', e => {
        if (connected) onError(e)
        else reject(e)
      })
      // Connected like a stub resolver's socket: replies only from the server, ICMP errors reported.
      s.connect(o.port, o.server, () => {
        connected = true
        resolve({
          send: msg => new Promise<void>((res, rej) => s.send(msg, e => (e ? rej(e) : res()))),
          close: () => {
            try {
              s.close()
            } catch {
              // already closed
            }
          },
        })
      })
    })
}

async function main(argv: string[]): Promise<number> {
  let o: ProbeOptions
  try {
    o = parseProbeArgs(argv)
  } catch (e: unknown) {
    if (e instanceof ProbeArgError) {
      process.stderr.write(`probe: ${e.message}\n`)
      return 2
    }
    throw e
  }
  const result = await runProbe(o, { openSocket: udpOpener(o), now: () => process.hrtime.bigint() })
  process.stdout.write(JSON.stringify(result) + '\n')
  return 0
}

main(process.argv.slice(2)).then(
  code => {
    process.exitCode = code
  },
  (e: unknown) => {
    process.stderr.write(`probe: ${e instanceof Error ? e.message : String(e)}\n`)
    process.exitCode = 1
  },
)
