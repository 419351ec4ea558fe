// src/dataplane/limits.ts: the bounds re-exported from native/limits.h, held-slot sizing and the memory budget
// a config must fit (issue 14 item 10). Needs no root.
import t from 'tap'
import { heldCapacity, MAX_HELD, MEMORY_BUDGET_BYTES, preallocatedBytes } from '../../src/dataplane/limits.js'
import { limits } from '../../src/dataplane/constants.js'
import { loadConfig } from '../../src/config/load.js'

t.test('held capacity: 4 x --max-held, at least 1024, at most the max-held bound', async t => {
  t.equal(heldCapacity(1), 1024)
  t.equal(heldCapacity(10000), 40000)
  t.equal(heldCapacity(MAX_HELD), MAX_HELD)
  t.equal(heldCapacity(MAX_HELD / 2), MAX_HELD)
})

t.test('preallocation: per-slot sizes from the addon, times slots, times queues', async t => {
  t.ok(limits.bytesPerHeldSlot >= 32 && limits.bytesPerHeldSlot <= 128, `${limits.bytesPerHeldSlot} B per held slot`)
  t.ok(limits.bytesPerPairSlot >= 16 && limits.bytesPerPairSlot <= 64, `${limits.bytesPerPairSlot} B per pair slot`)
  t.ok(limits.bytesPerQueue > 512 * 1024, `${limits.bytesPerQueue} B per queue besides`)
  const one = preallocatedBytes(1, 10000)
  t.equal(one, 40000 * limits.bytesPerHeldSlot + 4096 * limits.bytesPerPairSlot + limits.bytesPerQueue)
  t.equal(preallocatedBytes(4, 10000), 4 * one)
  t.ok(one < 4 * 2 ** 20, `the default config preallocates ${(one / 2 ** 20).toFixed(1)} MiB per queue`)
  t.equal(MEMORY_BUDGET_BYTES, 128 * 2 ** 20, 'budget: half the DaemonSet memory limit')
})

t.test('config load rejects a config whose preallocation exceeds the budget, exit-2 style', async t => {
  t.doesNotThrow(() => loadConfig(['--max-held', String(MAX_HELD)]), 'one queue at the max-held bound fits')
  t.doesNotThrow(() => loadConfig(['--queues', '8']), 'eight queues at the default fit')
  t.throws(() => loadConfig(['--max-held', String(MAX_HELD), '--queues', '3']), {
    name: 'ConfigError',
    message: /--max-held: 3 queue\(s\) with --max-held 1048576 preallocate \d+ MiB.*at most 128 MiB/,
  })
  t.throws(() => loadConfig(['--queues', '64']), { name: 'ConfigError', message: /fewer --queues/ })
})
