// `dns-shaper check` names the service dataplane of the namespace it runs in: kube-proxy's nftables-mode
// DNAT built in a throwaway netns must be reported as such, next to iptables-mode chains when both exist,
// and an empty namespace must say that none was found.
import t, { type Test } from 'tap'
import { Netns, makeLabId } from '../../harness/netns.js'
import { kubeProxyNftRules } from '../../lab/race/kube-proxy-modes.js'
import { CLI } from '../../harness/daemon.js'
import { skipFileUnless } from '../../harness/skip.js'

skipFileUnless({ root: 'network namespaces, nft, iptables' })

interface Report {
  items: { id: string; status: string; found: string; action: string }[]
  verdict: { need: string; line: string }
  dataplanes: {
    found: { kind: string; name: string; evidence: string[]; shaping: string; why: string }[]
    shaping: string
    summary: string
    unreadable: string[]
  }
}

let ns: Netns
t.before(async () => {
  ns = await Netns.create(`${makeLabId()}d`)
})
t.teardown(async () => {
  await ns?.destroy()
})

const check = async (t: Test): Promise<Report> => {
  const r = await ns.exec([process.execPath, CLI, 'check', '--json', '--sample', '0', '--metrics-listen', 'off'], {
    timeoutMs: 60_000,
  })
  t.ok(r.stdout.trim().startsWith('{'), `check printed its JSON report: ${r.stderr}`)
  return JSON.parse(r.stdout) as Report
}

t.test('empty namespace: no service dataplane detected', async t => {
  const rep = await check(t)
  t.same(rep.dataplanes.found, [])
  t.equal(rep.dataplanes.shaping, 'unknown')
  const item = rep.items.find(i => i.id === 'dataplane')
  t.match(item?.found, /^no service dataplane detected/)
})

t.test('kube-proxy nftables mode: the dstnat numgen DNAT is named, shaping useful', async t => {
  const endpoints4 = ['203.0.113.53', '203.0.113.54', '203.0.113.55']
  const endpoints6 = ['2001:db8:2::53', '2001:db8:2::54', '2001:db8:2::55']
  await ns.execOk(['nft', '-f', '-'], {
    input:
      kubeProxyNftRules({ family: 4, service: '192.0.2.10', endpoints: endpoints4, snat: true }) +
      kubeProxyNftRules({ family: 6, service: '2001:db8:ffff::10', endpoints: endpoints6, snat: false }),
  })
  const rep = await check(t)
  t.same(
    rep.dataplanes.found.map(d => d.kind),
    ['kube-proxy-nftables'],
  )
  const d = rep.dataplanes.found[0]!
  t.same(d.evidence, ['nft table ip kube-proxy', 'nft table ip6 kube-proxy'])
  t.equal(d.shaping, 'useful')
  t.match(d.why, /dstnat \(-100\)/)
  const item = rep.items.find(i => i.id === 'dataplane')
  t.match(item?.found, /^kube-proxy nftables mode \(nft table ip kube-proxy, nft table ip6 kube-proxy\)/)
  t.match(item?.action, /^shaping useful: /)
  t.notMatch(rep.verdict.line, /eBPF/, 'the verdict does not call shaping inert')
})

t.test('iptables-mode chains left beside it: both reported, with what that means', async t => {
  await ns.execOk(['iptables-restore', '--noflush'], {
    input: '*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-TCOU7JCQXEZGVUNU - [0:0]\nCOMMIT\n',
  })
  const rep = await check(t)
  t.same(
    rep.dataplanes.found.map(d => d.kind),
    ['kube-proxy-nftables', 'kube-proxy-iptables'],
  )
  t.match(rep.dataplanes.summary, /^rules of 2 kube-proxy modes/)
  t.ok(
    rep.items.some(i => i.id === 'dataplane' && /kube-proxy --cleanup/.test(i.found + i.action)),
    'a row explains the combination',
  )
})
