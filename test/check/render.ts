// src/check/render.ts: aligned text and JSON.
import t from 'tap'
import { renderJson, renderText } from '../../src/check/render.js'
import { runCheck } from '../../src/check/run.js'
import { cfg, fakes } from '../helpers/check.js'

t.test('render: aligned text with the verdict line; JSON shape', async t => {
  const r = await runCheck(cfg, fakes({ iptables: async () => new Error('no iptables') }), { sampleSeconds: 1 })
  const text = renderText(r)
  t.match(
    text,
    /\n\nverdict: cannot run: iptables: no iptables — optional: the kernel resolves clashes \(20\/s seen\)\n$/,
  )
  const rows = text.split('\n\n')[0]!.split('\n')
  t.match(rows[0], /^STATUS {2}CHECK +FOUND +ACTION$/)
  t.equal(rows.length, r.items.length + 1)
  const col = rows[0]!.indexOf('CHECK')
  const foundCol = rows[0]!.indexOf('FOUND')
  for (const row of rows.slice(1)) {
    t.not(row[col], ' ', `CHECK column aligned: ${row}`)
    t.equal(row[col - 1], ' ')
    t.not(row[foundCol], ' ', `FOUND column aligned: ${row}`)
  }
  t.ok(rows.some(row => row.startsWith('fail    iptables') && row.endsWith('dns-shaper rules print` yourself')))
  const j = JSON.parse(renderJson(r))
  t.same(Object.keys(j).sort(), [
    'conntrack',
    'daemon',
    'dataplanes',
    'exitCode',
    'items',
    'kernel',
    'ready',
    'verdict',
  ])
  t.same(Object.keys(j.verdict).sort(), ['blockers', 'line', 'need', 'ready'])
  t.same(Object.keys(j.items[0]).sort(), ['action', 'found', 'id', 'status'])
  t.equal(j.exitCode, 1)
  t.equal(j.verdict.need, 'optional')
  t.match(j.verdict.blockers, ['iptables: no iptables'])
  t.ok(renderJson(r).endsWith('}\n'))
})
