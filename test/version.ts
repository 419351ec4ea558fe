// src/version.ts: the version comes from package.json and the runtime from process.versions.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { NODE_VERSION, VERSION } from '../src/version.js'

t.test('VERSION is package.json version; NODE_VERSION has no leading v', async t => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  t.equal(VERSION, pkg.version)
  t.match(VERSION, /^\d+\.\d+\.\d+/)
  t.equal(NODE_VERSION, process.version.slice(1))
  t.notMatch(NODE_VERSION, /^v/)
})
