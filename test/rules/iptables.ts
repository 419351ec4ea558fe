// Iptables' legacy raw-table read: whether the raw table exists is read from /proc/net/ip{,6}_tables_names
// by the reader it is given (the daemon's own file read: the image has no `cat`), else by `cat` through
// the runner (a namespace prefix or a test's fake). Pure: a fake runner, no iptables runs.
import t from 'tap'
import type { Runner } from '../../src/kernel/exec.js'
import { Iptables } from '../../src/rules/iptables.js'
import { FakeTables } from '../helpers/rules.js'

const iptables = (run: Runner, readFile?: (path: string) => Promise<string>): Iptables =>
  new Iptables({ run, waitSeconds: 5, timeoutMs: 30_000, dryRun: false, ...(readFile ? { readFile } : {}) })
const argvs = (fake: FakeTables): string[] => fake.calls.map(c => c.argv.join(' '))

t.test('given a reader, the legacy table list is read by it and no cat runs', async t => {
  const fake = new FakeTables()
  const read: string[] = []
  const reader = (names: string) => async (path: string) => (read.push(path), names)
  t.equal(await iptables(fake.runner, reader('filter\nnat\n')).readRaw('legacy', 'ipv4'), undefined, 'no raw listed')
  t.same(argvs(fake), [], 'nothing ran: no cat, and no save that would create the raw table')
  fake.table('iptables-legacy-save')
  fake.table('ip6tables-legacy-save')
  t.ok(await iptables(fake.runner, reader('raw\nfilter\n')).readRaw('legacy', 'ipv6'), 'raw listed: read')
  t.same(read, ['/proc/net/ip_tables_names', '/proc/net/ip6_tables_names'], 'the family’s list')
  t.same(argvs(fake), ['ip6tables-legacy-save -c -t raw'], 'the raw table alone, no cat')
})

t.test('a reader that cannot read: the raw table is assumed to exist, as without permission', async t => {
  const fake = new FakeTables()
  fake.table('iptables-legacy-save')
  const denied = (): Promise<string> => Promise.reject(Object.assign(new Error('EACCES'), { code: 'EACCES' }))
  t.ok(await iptables(fake.runner, denied).readRaw('legacy', 'ipv4'))
  t.same(argvs(fake), ['iptables-legacy-save -c -t raw'])
})

t.test('without a reader, cat through the runner (the namespace its prefix stands for)', async t => {
  const fake = new FakeTables()
  t.equal(await iptables(fake.runner).readRaw('legacy', 'ipv4'), undefined)
  t.same(argvs(fake), ['cat /proc/net/ip_tables_names'])
})
