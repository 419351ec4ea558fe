// src/config/interface.ts: the one interface-name rule.
import t from 'tap'
import { isValidInterface } from '../../src/config/interface.js'

t.test('interface names', async t => {
  for (const ok of [
    'eth0',
    'veth1234567890a',
    'cali+',
    'bond0.100',
    'eth0:1',
    'br-1a2b',
    'wg@x',
    'lo',
    'x+',
    'abcdefghijklmn+',
  ]) {
    t.ok(isValidInterface(ok), ok)
  }
  for (const bad of [
    '',
    '+',
    'a b',
    'eth0;id',
    '$(id)',
    '-i',
    'abcdefghijklmnop',
    'abcdefghijklmno+',
    'a/b',
    '.',
    '..',
    'eth+0',
    'e"th',
    'eth\n0',
    'ä0',
  ]) {
    t.notOk(isValidInterface(bad), JSON.stringify(bad))
  }
})
