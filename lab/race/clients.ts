// The race lab's C clients (lab/clients): built into a temp dir, and their argv and JSON result.
// Builds with the host compiler into a temp dir it removes; runs nothing in the root namespace.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFile } from 'node:child_process'
import { LabError } from '../../harness/netns.js'
import { SERVICE } from './kube-proxy-modes.js'
import { LOOKUP_NAME, CLIENTS_DIR } from './lab.js'

// ---------------------------------------------------------------------------------------------
// Clients

export type ClientKind = 'split' | 'pair' | 'gai-glibc' | 'gai-musl'

export interface ClientBins {
  dir: string
  bins: Partial<Record<ClientKind, string>>
  remove(): void
}

function run(
  file: string,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise(resolve => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0
      resolve({ code, stdout: String(stdout), stderr: String(stderr) })
    })
  })
}

/** Builds lab/clients into a temp dir (glibc always, musl when musl-gcc exists). */
export async function buildClients(): Promise<ClientBins> {
  const dir = mkdtempSync(join(tmpdir(), 'dnss-race-clients-'))
  const remove = (): void => rmSync(dir, { recursive: true, force: true })
  const r = await run('make', ['-s', '-C', CLIENTS_DIR, `OUT=${dir}`], 120_000)
  if (r.code !== 0) {
    remove()
    throw new LabError(`building lab/clients failed: ${r.stderr.trim()}`, { hint: 'install gcc and make' })
  }
  const bins: ClientBins['bins'] = {
    split: join(dir, 'split_cpu_client'),
    pair: join(dir, 'pair_client'),
    'gai-glibc': join(dir, 'gai_client'),
  }
  const m = await run('make', ['-s', '-C', CLIENTS_DIR, `OUT=${dir}`, 'musl'], 120_000)
  if (m.code === 0) bins['gai-musl'] = join(dir, 'gai_client-musl')
  return { dir, bins, remove }
}

/** The clients' JSON line (fields differ a little between clients). */
export interface ClientResult {
  lookups: number
  failed: number
  answers_lost?: number
  slow_over_1s: number
  p50_us: number
  p99_us: number
  max_us: number
  a_p50_us?: number
  a_p99_us?: number
  aaaa_p50_us?: number
  aaaa_p99_us?: number
  no_a?: number
  no_aaaa?: number
  rcode_errors?: number
  send_errors?: number
  elapsed_s: number
  [k: string]: unknown
}

export interface ClientRun {
  client: ClientKind
  family: 4 | 6
  lookups: number
  threads: number
  maxSeconds: number
}

export function clientArgv(bin: string, c: ClientRun): string[] {
  const server = c.family === 4 ? SERVICE.ipv4 : SERVICE.ipv6
  const common = ['--count', String(c.lookups), '--threads', String(c.threads), '--max-seconds', String(c.maxSeconds)]
  if (c.client === 'gai-glibc' || c.client === 'gai-musl') {
    // getaddrinfo goes to the resolv.conf nameserver (the IPv4 service); --server only checks that.
    return [bin, '--name', LOOKUP_NAME, '--server', SERVICE.ipv4, ...common]
  }
  return [bin, '--server', server, '--name', LOOKUP_NAME, '--timeout-ms', '1000', ...common]
}
