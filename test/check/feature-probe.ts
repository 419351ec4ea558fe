// Tests for check/feature-probe.ts: what is tried, and what "not probed" means, over a fake runner.
import t from 'tap'
import { NotProbed, probeFeatures } from '../../src/check/feature-probe.js'
import { result } from '../helpers/check.js'
import type { Runner } from '../../src/kernel/exec.js'

t.test('probeFeatures: without CAP_SYS_ADMIN nothing is tried and both are NotProbed, never "modprobe"', async t => {
  const ran: string[][] = []
  const run: Runner = async argv => {
    ran.push([...argv])
    return result('')
  }
  const podCaps = (1n << 12n) | (1n << 13n)
  const f = await probeFeatures('nft', run, podCaps)
  t.same(ran, [], 'no namespace is attempted')
  t.ok(f.nfqueue instanceof NotProbed && f.xtBpf instanceof NotProbed)
  t.match(String((f.nfqueue as Error).message), /needs CAP_SYS_ADMIN, which this process lacks/)
  // Capabilities unknown, and `ip netns add` refused for lack of permission: the same, said with the error.
  const denied: Runner = async argv =>
    argv[0] === 'ip' && argv[2] === 'add'
      ? result('', 'mount --make-shared /run/netns failed: Operation not permitted', 1)
      : result('')
  const g = await probeFeatures('nft', denied)
  t.ok(g.nfqueue instanceof NotProbed, 'EPERM from ip netns add is "not probed"')
  t.match(String((g.nfqueue as Error).message), /Operation not permitted/)
  // Any other failure to make the namespace stays an error.
  const broken: Runner = async argv =>
    argv[0] === 'ip' && argv[2] === 'add' ? result('', 'ip: command failed', 1) : result('')
  const h = await probeFeatures('nft', broken)
  t.notOk(h.nfqueue instanceof NotProbed)
  t.ok(h.nfqueue instanceof Error)
})
