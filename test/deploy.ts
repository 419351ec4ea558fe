// deploy/kubernetes: the manifests are valid Kubernetes objects (schema validation from
// kubernetes-models, and a TypeScript excess-property check against the same models' types, which
// catches misspelt fields the OpenAPI schemas let through), the DaemonSet keeps the security and
// scheduling settings operators rely on, and its args and the ConfigMap's config file are ones
// `dns-shaper run` accepts. Also checks the Dockerfile's entrypoint and port against the manifests.
import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { parseAllDocuments } from 'yaml'
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet'
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap'
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor'
import { RUN_FLAGS, loadConfig } from '../src/config/load.js'
import { isConfigError } from '../src/errors.js'
import { parseQtype } from '../src/policy/qtypes.js'

const dir = new URL('../deploy/kubernetes/', import.meta.url)
const repoRoot = fileURLToPath(new URL('../', import.meta.url))
const METRICS_PORT = 9363

// Loose shapes: the schema checks below are what vouch for the structure.
type Obj = Record<string, any>

function load(name: string): Obj {
  const docs = parseAllDocuments(readFileSync(new URL(name, dir), 'utf8'))
  if (!Array.isArray(docs) || docs.length !== 1) throw new Error(`${name}: expected exactly one YAML document`)
  const doc = docs[0]!
  if (doc.errors.length > 0) throw new Error(`${name}: ${doc.errors.map(e => e.message).join('; ')}`)
  return doc.toJS() as Obj
}

const kustomization = load('kustomization.yaml')
const ds = load('daemonset.yaml')
const cm = load('configmap.yaml')
const pm = load('podmonitor.yaml')
const pod = ds.spec.template.spec as Obj
const container = pod.containers[0] as Obj
const CONFIG_KEY = 'config.json'

/** Errors TypeScript reports when `value` is assigned to the given model interface (excess fields included). */
function typeErrors(value: unknown, typeName: string, from: string): string[] {
  // A virtual file inside the repository, so module resolution finds node_modules.
  const file = `${repoRoot}test/__deploy_types__.ts`
  const source = `import type { ${typeName} } from '${from}'\nexport const v: ${typeName} = ${JSON.stringify(value, null, 1)}\n`
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: [],
  }
  const host = ts.createCompilerHost(options)
  const read = host.getSourceFile.bind(host)
  host.getSourceFile = (name, lang, ...rest) =>
    name === file ? ts.createSourceFile(name, source, lang) : read(name, lang, ...rest)
  const exists = host.fileExists.bind(host)
  host.fileExists = name => name === file || exists(name)
  const program = ts.createProgram([file], options, host)
  return ts.getPreEmitDiagnostics(program).map(d => ts.flattenDiagnosticMessageText(d.messageText, '\n'))
}

const MODELS = {
  DaemonSet: { cls: DaemonSet, type: 'IDaemonSet', from: 'kubernetes-models/apps/v1/DaemonSet' },
  ConfigMap: { cls: ConfigMap, type: 'IConfigMap', from: 'kubernetes-models/v1/ConfigMap' },
  PodMonitor: {
    cls: PodMonitor,
    type: 'IPodMonitor',
    from: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor',
  },
} as const

t.test('every manifest is a valid object of its kind (schema + no unknown fields)', async t => {
  for (const [name, obj] of [
    ['daemonset.yaml', ds],
    ['configmap.yaml', cm],
    ['podmonitor.yaml', pm],
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
  t.same([...resources].sort(), ['configmap.yaml', 'daemonset.yaml'])
  const yamls = readdirSync(dir).filter(f => f.endsWith('.yaml') && f !== 'kustomization.yaml')
  t.same(
    yamls.filter(f => !resources.includes(f)),
    ['podmonitor.yaml'],
    'only the PodMonitor (needs the Prometheus Operator CRDs) is left out',
  )
  const image = (kustomization.images as Obj[]).find(i => i.name === String(container.image).split(':')[0])
  t.ok(image, `kustomization images[] rewrites the DaemonSet image ${String(container.image)}`)
  t.equal(pm.metadata.namespace, kustomization.namespace, 'PodMonitor in the same namespace')
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
  t.equal(pod.containers.length, 1)
  t.ok(container.resources?.requests?.cpu && container.resources?.requests?.memory, 'requests set')
  t.ok(container.resources?.limits?.memory, 'memory limit set')
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
  t.same([container.livenessProbe?.httpGet?.path, container.livenessProbe?.httpGet?.port], ['/healthz', 'metrics'])
  t.same([container.readinessProbe?.httpGet?.path, container.readinessProbe?.httpGet?.port], ['/readyz', 'metrics'])
  const ann = ds.spec.template.metadata.annotations as Obj
  t.same(
    [ann['prometheus.io/scrape'], ann['prometheus.io/port'], ann['prometheus.io/path']],
    ['true', String(METRICS_PORT), '/metrics'],
  )
  const listen = (container.args as string[])[(container.args as string[]).indexOf('--metrics-listen') + 1]
  t.equal(listen, `$(NODE_IP):${METRICS_PORT}`, 'listens on the node address, on the declared port')
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
  const read: string[] = []
  const argv = args.slice(1).map(a => a.replace('$(NODE_IP)', '198.51.100.7'))
  const loaded = loadConfig(argv, {
    env: {},
    readFile: p => {
      read.push(p)
      return text
    },
  })
  t.same(read, [configPath], 'loadConfig read the ConfigMap file')
  t.equal(loaded.config.metricsListen, `198.51.100.7:${METRICS_PORT}`)
  t.equal(loaded.config.rules, 'manage', 'the DaemonSet installs and removes its own rules')
  t.same(
    loaded.config.hooks.slice().sort(),
    ['output', 'prerouting'],
    'pods (PREROUTING) and host-network processes (OUTPUT)',
  )
  t.same(
    loaded.rules,
    [{ qtype: parseQtype('AAAA'), holdMs: file.holds.AAAA }],
    `AAAA held ${String(file.holds.AAAA)} ms`,
  )
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
  t.same(JSON.parse(last(/^ENTRYPOINT\s+(\[.*\])\s*$/gm) ?? 'null'), ['/usr/local/bin/dns-shaper'])
  t.same(JSON.parse(last(/^CMD\s+(\[.*\])\s*$/gm) ?? 'null'), ['run'])
  t.equal(Number(last(/^EXPOSE\s+(\d+)/gm)), METRICS_PORT)
  t.match(dockerfile, /^ARG BASE=debian:trixie-slim$/m, 'base selectable with --build-arg BASE')
})
