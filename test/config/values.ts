// src/config/values.ts: scalar flag values, each error naming the flag and what it accepts.
import t from 'tap'
import { bool, int, list, ms, oneOf } from '../../src/config/values.js'

t.test('int, ms, bool, oneOf, list', async t => {
  t.equal(int(' 7 ', '--n', 1, 9), 7)
  t.throws(() => int('10', '--n', 1, 9), {
    name: 'ConfigError',
    message: '--n: "10" is not a valid value (accepted: an integer 1..9)',
  })
  t.throws(() => int('1.5', '--n', 1, 9), { name: 'ConfigError' })
  t.equal(ms('2.5', '--delay', 10000), 2.5)
  t.throws(() => ms('10001', '--delay', 10000), { message: /milliseconds 0\.\.10000, fractions allowed/ })
  t.equal(bool(true, '--ipv6'), true)
  t.equal(bool(' Off ', '--ipv6'), false)
  t.throws(() => bool('maybe', '--ipv6'), { message: '--ipv6: "maybe" is not a valid value (accepted: on|off)' })
  t.equal(oneOf(' PAIR ', '--mode', ['fixed', 'pair']), 'pair')
  t.throws(() => oneOf('x', '--mode', ['fixed', 'pair']), { message: /\(accepted: fixed\|pair\)/ })
  t.same(list(' a, ,b ,'), ['a', 'b'])
})
