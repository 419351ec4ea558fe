// src/config/host-port.ts: the one host:port parser.
import t from 'tap'
import { parseHostPort, parseListen } from '../../src/config/host-port.js'

t.test('parseListen', async t => {
  t.equal(parseListen('0.0.0.0:9363'), '0.0.0.0:9363')
  t.throws(() => parseListen('0.0.0.0:0'))
})

t.test('parseHostPort: IPv6 in brackets, host names, bounds', async t => {
  t.same(parseHostPort('[::1]:9400'), { host: '::1', port: 9400 })
  t.same(parseHostPort('127.0.0.1:9363'), { host: '127.0.0.1', port: 9363 })
  t.same(parseHostPort('node.example:80'), { host: 'node.example', port: 80 })
  t.same(parseHostPort('127.0.0.1:0'), { host: '127.0.0.1', port: 0 }, 'port 0: any free port (probes, tests)')
  for (const bad of ['::1:9400', '[nothex]:1', 'localhost', '127.0.0.1:65536', '[::1]'])
    t.equal(parseHostPort(bad), undefined, bad)
})
