// src/config/flags.ts: argv to flag values and positionals.
import t from 'tap'
import { parseFlags } from '../../src/config/flags.js'

t.test('parseFlags', async t => {
  t.same(parseFlags(['a', '--x=1', '--y', '2'], ['x', 'y'], new Set()).positionals, ['a'])
})
