import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  loadConfig,
  DEFAULTS,
  RUN_FLAGS,
  describeRules,
  DEFAULT_METRICS_LISTEN,
  RECONCILE_INTERVAL_MS,
  reconcileIntervalFromEnv,
} from '../../src/config/load.js'
import { ConfigError } from '../../src/errors.js'
import type { Config } from '../../src/config/types.js'
import { interfaceFlag } from '../../src/config/interface.js'
import { RuleManager } from '../../src/rules/manager.js'
import { renderRestore } from '../../src/rules/restore.js'
import { configWith } from '../helpers/config.js'

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

t.test('file keys from Object.prototype are unknown keys (exit 2), not flags or a TypeError', async t => {
  for (const key of ['constructor', 'toString', '__proto__', 'valueOf', 'hasOwnProperty', 'isPrototypeOf']) {
    const file = `{${JSON.stringify(key)}: 1}`
    t.throws(
      () => load(['--config', '/p.json'], {}, { '/p.json': file }),
      { name: 'ConfigError', message: new RegExp(`^/p\\.json: ${key}: unknown key`) },
      key,
    )
  }
  t.throws(
    () => load(['--config', '/h.json'], {}, { '/h.json': '{"holds": {"constructor": 5}}' }),
    /holds\.constructor: is not a DNS type/,
  )
})

t.test('DNS_SHAPER_RECONCILE_INTERVAL_MS is validated', async t => {
  t.equal(reconcileIntervalFromEnv({}), RECONCILE_INTERVAL_MS)
  t.equal(reconcileIntervalFromEnv({ DNS_SHAPER_RECONCILE_INTERVAL_MS: '' }), RECONCILE_INTERVAL_MS)
  t.equal(reconcileIntervalFromEnv({ DNS_SHAPER_RECONCILE_INTERVAL_MS: '5000' }), 5000)
  for (const bad of ['abc', '0', '-5', '1.5', '50', '1e9', '99999999999'])
    t.throws(
      () => reconcileIntervalFromEnv({ DNS_SHAPER_RECONCILE_INTERVAL_MS: bad }),
      {
        name: 'ConfigError',
        message: /^DNS_SHAPER_RECONCILE_INTERVAL_MS: .* \(accepted: an integer 100\.\.86400000\)$/,
      },
      bad,
    )
})

t.test('--dns-ip auto: the nameservers of resolv.conf (default /etc/resolv.conf, or --resolv-conf)', async t => {
  const resolv = 'search svc.cluster.local\nnameserver 192.0.2.10\nnameserver 2001:db8::a\nnameserver 127.0.0.53\n'
  const a = load(['--dns-ip', 'auto'], {}, { '/etc/resolv.conf': resolv })
  t.same(a.config.dnsIp, ['192.0.2.10/32', '2001:db8::a/128'], 'both families')
  t.same(a.config.dnsIpAuto, {
    resolvConf: '/etc/resolv.conf',
    ignored: [{ value: '127.0.0.53', why: 'loopback (a local stub resolver, not the DNS service)' }],
  })
  const b = load(['--dns-ip', 'AUTO', '--resolv-conf', '/run/x/resolv.conf'], {}, { '/run/x/resolv.conf': resolv })
  t.equal(b.config.dnsIpAuto?.resolvConf, '/run/x/resolv.conf', '--resolv-conf, given after --dns-ip, is the one read')
  // The ConfigMap says auto; an explicit list from the environment (a kustomize component) wins.
  const files = { '/c.json': '{"dns-ip": "auto"}' }
  const c = load(['--config', '/c.json'], { DNS_SHAPER_DNS_IP: '198.51.100.53' }, files)
  t.same(c.config.dnsIp, ['198.51.100.53/32'])
  t.equal(c.config.dnsIpAuto, undefined, 'resolv.conf not used (and not required) when overridden')
  t.same(load([], {}, {}).config.dnsIp, [], 'without auto nothing reads resolv.conf')
})

t.test('--dns-ip auto without usable nameservers is a config error naming where auto came from', async t => {
  const err = (f: () => unknown): ConfigError => {
    try {
      f()
    } catch (e) {
      if (e instanceof ConfigError) return e
      throw e
    }
    throw new Error('no error')
  }
  t.match(err(() => load(['--dns-ip', 'auto'])).message, /^--dns-ip: auto: cannot read \/etc\/resolv\.conf \(ENOENT/)
  t.match(
    err(() => load(['--config', '/c.json'], {}, { '/c.json': '{"dns-ip": "auto"}', '/etc/resolv.conf': '' })).message,
    /^\/c\.json: dns-ip: auto: \/etc\/resolv\.conf names no usable nameserver/,
  )
  t.match(err(() => load(['--dns-ip', 'auto,192.0.2.1'])).message, /"auto" stands alone/)
  t.match(err(() => load(['--resolv-conf', ''])).message, /--resolv-conf: needs a path/)
})

t.test('--config-poll-interval: seconds, 0 for SIGHUP only, 30 by default', async t => {
  t.equal(load([]).config.configPollIntervalS, 30)
  t.equal(load(['--config-poll-interval', '5']).config.configPollIntervalS, 5)
  t.equal(load(['--config-poll-interval', '0']).config.configPollIntervalS, 0)
  t.throws(() => load(['--config-poll-interval', '1.5']), /--config-poll-interval/)
  t.throws(() => load(['--config-poll-interval', '-1']), /--config-poll-interval/)
})

t.test('the loaded config carries the hash of the file text it parsed', async t => {
  const { contentHash } = await import('../../src/config/watch.js')
  const text = '{"delay": 7}'
  t.equal(load(['--config', '/c.json'], {}, { '/c.json': text }).configHash, contentHash(text))
  t.equal(load([]).configHash, undefined)
})

t.test('--ipv4 on|off, and not both families off', async t => {
  t.equal(load([]).config.ipv4, true)
  t.equal(load(['--ipv4', 'off']).config.ipv4, false)
  t.equal(load(['--no-ipv4']).config.ipv4, false)
  t.equal(load([], { DNS_SHAPER_IPV4: 'off' }).config.ipv4, false)
  t.throws(() => load(['--ipv4', 'off', '--ipv6', 'off']), /IPv4 and IPv6 are both off/)
})

// Moved from test/rules/plan.ts when the rules stopped validating (validateRuleConfig): the same bad
// values, now refused once, at load, by the parsers that alone make the checked types the rules take.
t.test('the values the rules are built from are checked at load, naming the flag and accepted form', async t => {
  const bad: [string[], string, RegExp][] = [
    [['--queue=-1'], '--queue', /an integer 0\.\.65535/],
    [['--queue', '1.5'], '--queue', /"1\.5" is not a valid value/],
    [['--queue', '65536'], '--queue', /0\.\.65535/],
    [['--queues', '0'], '--queues', /an integer 1\.\.64/],
    [['--queue', '65535', '--queues', '2'], '--queues', /exceeds 65535/],
    [['--dns-port', '0'], '--dns-port', /1\.\.65535/],
    [['--dns-port', '70000'], '--dns-port', /"70000" is not a valid value/],
    [
      ['--dns-ip', '198.51.100.10,10.0.0.10 && reboot'],
      '--dns-ip',
      /"10\.0\.0\.10 && reboot" is not an address or CIDR \(accepted: IPv4 or IPv6/,
    ],
    [['--interfaces', 'eth0,eth1|x'], '--interfaces', /"eth1\|x" is not an interface name \(accepted: interface names/],
    [['--hooks', ','], '--hooks', /no hook given/],
    [['--hooks', 'input'], '--hooks', /"input" is not a valid value \(accepted: prerouting\|output\)/],
  ]
  for (const [argv, flag, msg] of bad) {
    const e = (() => {
      try {
        load(argv)
      } catch (x) {
        return x
      }
      return undefined
    })()
    t.ok(e instanceof ConfigError, `${argv.join(' ')} → ConfigError`)
    t.equal((e as ConfigError).flag, flag)
    t.match((e as ConfigError).message, msg)
    t.ok((e as ConfigError).message.startsWith(flag + ': '))
  }
  t.doesNotThrow(() => load(['--queue', '65532', '--queues', '4', '--dns-ip', '2001:db8::53', '--interfaces', 'eth+']))
  // Was "the RuleManager constructor validates": a Config holding port -5 cannot be made.
  t.throws(() => new RuleManager({ config: configWith({ dnsPort: -5 }) }), ConfigError, 'no Port -5 to hand over')
  // Was renderRestore rejecting `id`: the one interface parser refuses it, and the type the rules take
  // cannot be built from a plain string (tsc fails on this line if the check goes away).
  t.throws(() => interfaceFlag('`id`', '--interfaces'), ConfigError)
  t.throws(() => renderRestore(configWith({ interfaces: ['`id`'] }), 'ipv4'), ConfigError)
  // @ts-expect-error: a plain string is not an InterfaceName; only interfaceFlag makes one
  const unchecked: Config = { ...DEFAULTS, interfaces: ['`id`'] }
  t.equal(unchecked.interfaces.length, 1)
})

t.test('the precedence trap: a flag or variable is never overridden by the file, holds included', async t => {
  // The ConfigMap shipped before issue 26: "delay": 5 and "holds": {"AAAA": 5}.
  const files = { '/c.json': JSON.stringify({ delay: 5, holds: { AAAA: 5 } }) }
  const aaaa = (l: ReturnType<typeof load>) => l.rules.find(r => r.qtype === 28)?.holdMs
  t.equal(aaaa(load(['--config', '/c.json'], {}, files)), 5, 'the file alone')
  t.equal(aaaa(load(['--config', '/c.json', '--delay', '1'], {}, files)), 1, '--delay beats the file holds')
  t.equal(aaaa(load(['--config', '/c.json'], { DNS_SHAPER_DELAY: '1' }, files)), 1, 'DNS_SHAPER_DELAY too')
  t.equal(
    aaaa(load(['--config', '/c.json', '--delay', '2'], { DNS_SHAPER_DELAY: '1' }, files)),
    2,
    'and the flag beats the variable',
  )
  const o = load(['--config', '/c.json', '--delay', '1'], {}, files).origins!
  t.same(o.holds.get(28), { source: 'flag', by: '--delay' }, 'the AAAA hold says where it came from')
  t.same(o.settings.delay, { source: 'flag', by: '--delay' })
  t.same(o.settings.queue, { source: 'default' })
})

t.test('per-type holds and delay: the highest source wins per type; within one, the per-type hold', async t => {
  const files = { '/c.json': JSON.stringify({ delay: 5, qtypes: 'AAAA,HTTPS', holds: { HTTPS: 2 } }) }
  const holds = (l: ReturnType<typeof load>) => Object.fromEntries(l.rules.map(r => [r.qtype, r.holdMs]))
  t.same(holds(load(['--config', '/c.json'], {}, files)), { 28: 5, 65: 2 }, 'file: HTTPS its own, the rest delay')
  t.same(holds(load(['--config', '/c.json', '--delay', '1'], {}, files)), { 28: 1, 65: 1 }, '--delay: every type')
  t.same(
    holds(load(['--config', '/c.json', '--delay', '1', '--holds', 'HTTPS=3'], {}, files)),
    { 28: 1, 65: 3 },
    '--holds beats --delay for its type',
  )
  t.same(
    holds(load(['--config', '/c.json'], { DNS_SHAPER_HOLDS: 'AAAA=4' }, files)),
    { 28: 4, 65: 2 },
    'DNS_SHAPER_HOLDS merges per type over the file',
  )
  t.same(holds(load(['--holds', 'SVCB=1'], {}, {})), { 28: 5, 64: 1 }, 'a type given a hold is held (queued) too')
  t.same(load(['--holds', 'SVCB=1']).config.qtypes, [28, 64])
  t.throws(() => load(['--holds', 'AAAA']), /^--holds: "AAAA" is not TYPE=MS \(accepted: AAAA=5,HTTPS=2\)/)
  t.throws(() => load([], { DNS_SHAPER_HOLDS: 'NOPE=1' }), /^DNS_SHAPER_HOLDS NOPE: is not a DNS type/)
})

t.test('an unknown DNS_SHAPER_* variable exits 2 like an unknown flag', async t => {
  t.throws(() => load([], { DNS_SHAPER_DELAYS: '3' }), {
    name: 'ConfigError',
    message: /^DNS_SHAPER_DELAYS: unknown variable \(accepted: .*DNS_SHAPER_DELAY /,
  })
  t.doesNotThrow(() => load([], { DNS_SHAPER_RECONCILE_INTERVAL_MS: '500', DNS_SHAPER_ADDON: '/x.node' }))
  t.doesNotThrow(
    () => load([], { DNS_SHAPER_IMAGE_ROOTFS: '/tmp/r', DNS_SHAPER_SOAK_SECONDS: '5', DNS_SHAPER_TEST_CRASH: 'exit' }),
    "the project's test tooling's own variables are not config",
  )
  t.doesNotThrow(() => load([], { DNS_SHAPERX: '1', OTHER: '2' }), 'only the DNS_SHAPER_ prefix is ours')
  // Every DNS_SHAPER_* name the repository's own tooling sets or reads (CI, scripts, harness, labs,
  // bench, tests): exported for a whole run, it reaches every daemon a test starts. A name missing from
  // the tooling prefixes failed 40 test files once (DNS_SHAPER_CI_ARM64=never).
  const repo = fileURLToPath(new URL('../..', import.meta.url))
  const names = new Set<string>()
  const walk = (dir: string): void => {
    for (const e of readdirSync(join(repo, dir), { withFileTypes: true })) {
      const rel = join(dir, e.name)
      if (e.isDirectory()) walk(rel)
      else if (/\.(ts|mjs|sh)$|^run$/.test(e.name))
        for (const m of readFileSync(join(repo, rel), 'utf8').matchAll(/\bDNS_SHAPER_[A-Z0-9]+(?:_[A-Z0-9]+)*\b/g))
          names.add(m[0])
    }
  }
  for (const dir of ['.ci', 'scripts', 'harness', 'lab', 'bench', 'test/integration']) walk(dir)
  // Names tests use as the operator's typo, to see it refused.
  const deliberate = new Set(['DNS_SHAPER_DELAYS'])
  const unknown = [...names].filter(n => {
    if (deliberate.has(n)) return false
    try {
      load([], { [n]: '1' })
      return false
    } catch (e) {
      return e instanceof ConfigError && /unknown variable/.test(e.message)
    }
  })
  t.ok(names.has('DNS_SHAPER_CI_ARM64') && names.size > 20, `${names.size} names found`)
  t.same(unknown, [], 'none of them is an unknown variable to the daemon')
  // A Service named dns-shaper in the namespace: kubelet's service links, in every pod.
  t.doesNotThrow(
    () =>
      load([], {
        DNS_SHAPER_SERVICE_HOST: '10.96.7.7',
        DNS_SHAPER_SERVICE_PORT: '9363',
        DNS_SHAPER_SERVICE_PORT_METRICS: '9363',
        DNS_SHAPER_PORT: 'tcp://10.96.7.7:9363',
        DNS_SHAPER_PORT_9363_TCP: 'tcp://10.96.7.7:9363',
        DNS_SHAPER_PORT_9363_TCP_PROTO: 'tcp',
        DNS_SHAPER_PORT_9363_TCP_PORT: '9363',
        DNS_SHAPER_PORT_9363_TCP_ADDR: '10.96.7.7',
      }),
    "kubelet's service-link variables are not config",
  )
  t.throws(() => load([], { DNS_SHAPER_PORTS: '1' }), /DNS_SHAPER_PORTS: unknown variable/, 'but near misses are')
  t.doesNotThrow(() => load([], { DNS_SHAPER_MAX_HELD: '50', DNS_SHAPER_HOLDS: 'AAAA=2' }), 'every flag has its name')
})
