// src/dataplane/nfqueue.ts, the sole importer of the .node: what it loads and where it looks.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { addonConstants as constants, addonLimits as limits, parsePacket, Queue } from '../../src/dataplane/nfqueue.js'

t.test('the addon loads with its typed surface', async t => {
  t.type(Queue, 'function')
  t.type(parsePacket, 'function')
  t.ok(constants.help && Object.keys(constants.help).length > 0, 'counter help text comes from native')
  t.ok(limits.maxHoldClasses > 0 && limits.maxHoldMs > 0, 'limits come from native')
})

t.test('DNS_SHAPER_ADDON naming a file that does not exist falls back to the build directory', async t => {
  const src = fileURLToPath(new URL('../../src/dataplane/nfqueue.ts', import.meta.url))
  const r = spawnSync(
    process.execPath,
    [
      '--import=@tapjs/typescript/import',
      '-e',
      `import(${JSON.stringify(src)}).catch(e => { console.error(e.message); process.exit(3) })`,
    ],
    {
      env: { ...process.env, DNS_SHAPER_ADDON: '/nonexistent/nfqueue.node', TS_NODE_TRANSPILE_ONLY: '1' },
      encoding: 'utf8',
    },
  )
  t.equal(r.status, 0, r.stderr)
})
