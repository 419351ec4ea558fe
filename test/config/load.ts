import t from 'tap'
import { loadConfig, DEFAULTS, RUN_FLAGS, describeRules, DEFAULT_METRICS_LISTEN } from '../../src/config/load.js'
import { ConfigError } from '../../src/errors.js'

const load = (argv: string[], env: NodeJS.ProcessEnv = {}, files: Record<string, string> = {}) =>
  loadConfig(argv, {
    env,
    readFile: p => {
      if (!(p in files)) throw new Error(`ENOENT: no such file ${p}`)
      return files[p]!
    },
  })

t.test('defaults follow the CLI contract', async t => {
  const { config, rules } = load([])
  t.same(config, DEFAULTS)
  t.same(rules, [{ qtype: 28, holdMs: 5 }], 'AAAA held 5 ms')
  t.equal(config.metricsListen, '127.0.0.1:9363')
  t.notOk(['9153', '9253'].includes(DEFAULT_METRICS_LISTEN.split(':')[1]!), 'clear of CoreDNS and node-local-dns ports')
})

t.test('flags: every form', async t => {
  const { config, rules } = load([
    '--queue',
    '3',
    '--delay=2.5',
    '--qtypes',
    'aaaa,HTTPS,65,TYPE64',
    '--mode',
    'pair',
    '--pair-window',
    '3',
    '--rules',
    'none',
    '--dns-port',
    '5353',
    '--dns-ip',
    '10.96.0.10,fd00::a',
    '--interfaces',
    'cali+,eth0',
    '--hooks',
    'output',
    '--no-ipv6',
    '--iptables-backend',
    'legacy',
    '--metrics-listen',
    '[::1]:9400',
    '--max-held',
    '50',
    '--dry-run',
    '--log-level',
    'debug',
    '--queues',
    '2',
  ])
  t.equal(config.queue, 3)
  t.equal(config.queues, 2)
  t.equal(config.delayMs, 2.5)
  t.same(config.qtypes, [28, 65, 64], 'names, numbers, TYPEnn; duplicates merged')
  t.equal(config.mode, 'pair')
  t.equal(config.pairWindowMs, 3)
  t.equal(config.rules, 'none')
  t.equal(config.dnsPort, 5353)
  t.same(config.dnsIp, ['10.96.0.10/32', 'fd00::a/128'])
  t.same(config.interfaces, ['cali+', 'eth0'])
  t.same(config.hooks, ['output'])
  t.equal(config.ipv6, false)
  t.equal(config.iptablesBackend, 'legacy')
  t.equal(config.metricsListen, '[::1]:9400')
  t.equal(config.maxHeld, 50)
  t.equal(config.dryRun, true)
  t.equal(config.logLevel, 'debug')
  t.same(rules, [
    { qtype: 28, holdMs: 2.5 },
    { qtype: 65, holdMs: 2.5 },
    { qtype: 64, holdMs: 2.5 },
  ])
  t.equal(load(['--ipv6', 'off']).config.ipv6, false)
  t.equal(load(['--ipv6']).config.ipv6, true)
  t.equal(load(['--dry-run', 'on']).config.dryRun, true)
  t.equal(load(['--metrics-listen', 'off']).config.metricsListen, '')
})

t.test('--kernel-filter', async t => {
  t.equal(load([]).config.kernelFilter, 'auto')
  for (const v of ['bpf', 'u32', 'off', 'auto']) t.equal(load(['--kernel-filter', v]).config.kernelFilter, v)
  t.equal(load([], { DNS_SHAPER_KERNEL_FILTER: 'u32' }).config.kernelFilter, 'u32')
  t.throws(() => load(['--kernel-filter', 'ebpf']), /--kernel-filter.*auto\|bpf\|u32\|off/)
  // Types held only through the file's "holds" are queued by the kernel filter too.
  const files = { '/h.json': JSON.stringify({ holds: { HTTPS: 2 } }) }
  t.same(load(['--config', '/h.json'], {}, files).config.qtypes, [28, 65])
})

t.test('precedence: defaults < file < env < flags', async t => {
  const files = { '/c.json': JSON.stringify({ delay: 7, qtypes: ['AAAA', 'HTTPS'], queue: 4, holds: { HTTPS: 2 } }) }
  const a = load(['--config', '/c.json'], {}, files)
  t.equal(a.config.delayMs, 7)
  t.equal(a.config.queue, 4)
  t.equal(a.config.configFile, '/c.json')
  t.same(
    a.rules,
    [
      { qtype: 28, holdMs: 7 },
      { qtype: 65, holdMs: 2 },
    ],
    'per-type hold from the file',
  )
  const b = load(['--config', '/c.json'], { DNS_SHAPER_DELAY: '9', DNS_SHAPER_QUEUE: '5' }, files)
  t.equal(b.config.delayMs, 9, 'env beats file')
  t.equal(b.config.queue, 5)
  const c = load(['--config', '/c.json', '--delay', '1'], { DNS_SHAPER_DELAY: '9' }, files)
  t.equal(c.config.delayMs, 1, 'flag beats env')
  const d = load([], { DNS_SHAPER_CONFIG: '/c.json', DNS_SHAPER_MAX_HELD: '7' }, files)
  t.equal(d.config.delayMs, 7, 'config file from env')
  t.equal(d.config.maxHeld, 7, 'kebab flags map to SNAKE env names')
})

t.test('bad values: one clear line naming the flag and what is accepted', async t => {
  const cases: [string[], RegExp][] = [
    [['--delay', 'fast'], /^--delay: "fast" is not a valid value \(accepted: milliseconds 0\.\.10000/],
    [['--delay', '-1'], /^--delay: /],
    [['--queue', '70000'], /^--queue: "70000" is not a valid value \(accepted: an integer 0\.\.65535\)/],
    [['--qtypes', 'AAAA,BOGUS'], /^--qtypes: "BOGUS" is not a DNS type/],
    [['--mode', 'smart'], /^--mode: .*\(accepted: fixed\|pair\)/],
    [['--hooks', 'input'], /^--hooks: .*prerouting\|output/],
    [['--hooks', ''], /^--hooks: no hook given/],
    [['--dns-ip', '10.0.0.0/33'], /^--dns-ip: "10\.0\.0\.0\/33" is not an address or CIDR/],
    [['--dns-ip', '$(reboot)'], /^--dns-ip: /],
    [['--interfaces', 'eth0;rm -rf /'], /^--interfaces: "eth0;rm -rf \/" is not an interface name/],
    [['--metrics-listen', 'localhost'], /^--metrics-listen: "localhost" is not HOST:PORT/],
    [['--metrics-listen', '[nothex]:1'], /^--metrics-listen: /],
    [['--bogus'], /^--bogus: unknown flag/],
    [['--delay'], /^--delay: needs a value/],
    [['stray'], /^stray: unexpected argument/],
    [['--ipv6=maybe'], /^--ipv6: .*on\|off/],
    [['--ipv6', 'maybe'], /^maybe: unexpected argument/],
    [['--queue', '65535', '--queues', '2'], /^--queues: /],
  ]
  for (const [argv, re] of cases) {
    let err: unknown
    try {
      load(argv)
    } catch (e) {
      err = e
    }
    t.ok(err instanceof ConfigError, `${argv.join(' ')}: ConfigError`)
    t.match((err as Error | undefined)?.message ?? '', re, argv.join(' '))
    t.notMatch((err as Error | undefined)?.message ?? '', /\n/, 'one line')
  }
  t.throws(() => load([], { DNS_SHAPER_DELAY: 'x' }), /^DNS_SHAPER_DELAY: /, 'env var named in the error')
})

t.test('config file errors name the file and key', async t => {
  t.throws(() => load(['--config', '/missing.json']), /^--config: cannot read \/missing\.json/)
  t.throws(() => load(['--config', '/bad.json'], {}, { '/bad.json': '{nope' }), /^--config: cannot read \/bad\.json/)
  t.throws(() => load(['--config', '/arr.json'], {}, { '/arr.json': '[]' }), /is not a JSON object/)
  t.throws(() => load(['--config', '/k.json'], {}, { '/k.json': '{"delai": 5}' }), /^\/k\.json: delai: unknown key/)
  t.throws(
    () => load(['--config', '/h.json'], {}, { '/h.json': '{"holds": {"NOPE": 5}}' }),
    /holds\.NOPE: is not a DNS type/,
  )
  t.throws(() => load(['--config', '/h.json'], {}, { '/h.json': '{"holds": [5]}' }), /holds: must be an object/)
  t.throws(() => load(['--config', '/v.json'], {}, { '/v.json': '{"delay": "soon"}' }), /^\/v\.json: delay: "soon"/)
  const ok = load(
    ['--config', '/b.json'],
    {},
    { '/b.json': '{"ipv6": false, "dns-ip": ["10.96.0.10"], "dry-run": true}' },
  )
  t.equal(ok.config.ipv6, false)
  t.equal(ok.config.dryRun, true)
  t.same(ok.config.dnsIp, ['10.96.0.10/32'])
})

t.test('helpers', async t => {
  t.ok(RUN_FLAGS.includes('metrics-listen') && RUN_FLAGS.includes('config'))
  t.equal(
    describeRules([
      { qtype: 28, holdMs: 5 },
      { qtype: 65, holdMs: 2 },
    ]),
    'AAAA=5ms,HTTPS=2ms',
  )
  t.equal(describeRules([]), 'nothing held')
})

t.test(
  'interface names: config applies the same rule as the rule manager, so a bad name exits before anything is bound',
  async t => {
    for (const bad of ['abcdefghijklmno+', '-i', 'a/b', '.', 'eth+0']) {
      t.throws(
        () => load(['--interfaces', bad]),
        { name: 'ConfigError', message: /^--interfaces: .* is not an interface name/ },
        bad,
      )
    }
    t.same(load(['--interfaces', 'eth0:1,abcdefghijklmn+']).config.interfaces, ['eth0:1', 'abcdefghijklmn+'])
  },
)

t.test('more distinct hold durations than the data plane has is a config error', async t => {
  const holds = Object.fromEntries(
    ['A', 'NS', 'CNAME', 'SOA', 'PTR', 'MX', 'TXT', 'SRV', 'HTTPS'].map((q, i) => [q, i + 1]),
  )
  t.throws(() => load(['--config', '/h.json'], {}, { '/h.json': JSON.stringify({ holds }) }), {
    name: 'ConfigError',
    message: /^\/h\.json: holds: 9 distinct hold durations; the data plane has 8/,
  })
  delete holds.HTTPS
  t.equal(load(['--config', '/h.json'], {}, { '/h.json': JSON.stringify({ holds }) }).rules.length, 9)
})
