// Renders the subset of kustomize that deploy/ uses, so test/deploy.ts can schema-check every variant
// on machines without a kustomize binary (Debian has none; kubectl carries one but is not a Debian
// package). It must stay faithful rather than grow: any field, op or selector outside the subset throws,
// and when `kubectl kustomize` or `kustomize` exists the test compares this output with the real one.
//
// Subset: Kustomization and Component files with `resources` (YAML files or directories), `components`,
// `namespace`, `images` (newName/newTag/digest), `patches` given inline as JSON 6902 operations (add,
// remove, replace, test) or as a `$patch: delete` object, with a `target` of kind and/or name;
// `configMapGenerator` (files and literals, own namespace, option labels, create only) with kustomize's
// content-hash name suffix and the pod-spec references renamed with it; `replacements` from one field
// into fields of selected objects (`*` over list items, options delimiter and index). Objects annotated
// config.kubernetes.io/local-config are dropped from the output. Order as kustomize applies it:
// resources, then components (each like a kustomization over what has been accumulated), then this
// file's generators, patches, replacements, namespace and images; generated names are suffixed last.
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { basename, isAbsolute, join, resolve } from 'node:path'
import { spawnSync } from 'node:child_process'
import { parse, parseAllDocuments } from 'yaml'

export type KObject = Record<string, any>

const KUSTOMIZATION_FIELDS = new Set([
  'apiVersion',
  'kind',
  'namespace',
  'resources',
  'components',
  'images',
  'patches',
  'configMapGenerator',
  'replacements',
])
const KINDS: Record<string, string> = {
  Kustomization: 'kustomize.config.k8s.io/v1beta1',
  Component: 'kustomize.config.k8s.io/v1alpha1',
}
/** Kinds without a namespace among those deploy/ ships (kustomize knows the full list). */
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition'])

function kustomizationFile(dir: string): string {
  for (const name of ['kustomization.yaml', 'kustomization.yml', 'Kustomization']) {
    const p = join(dir, name)
    if (existsSync(p)) return p
  }
  throw new Error(`${dir}: no kustomization.yaml`)
}

function yamlObjects(file: string): KObject[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).map(d => {
    if (d.errors.length > 0) throw new Error(`${file}: ${d.errors.map(e => e.message).join('; ')}`)
    return d.toJS() as KObject
  })
}

function decodePointer(path: string): string[] {
  if (!path.startsWith('/')) throw new Error(`JSON patch path ${path} must start with /`)
  return path
    .slice(1)
    .split('/')
    .map(s => s.replace(/~1/g, '/').replace(/~0/g, '~'))
}

/** RFC 6902 add, remove, replace and test on `doc` (in place). */
export function applyJsonPatch(doc: KObject, ops: KObject[]): void {
  for (const op of ops) {
    const keys = decodePointer(String(op.path))
    const last = keys.pop()!
    let parent: any = doc
    for (const k of keys) {
      parent = Array.isArray(parent) ? parent[Number(k)] : parent?.[k]
      if (parent === undefined || parent === null || typeof parent !== 'object')
        throw new Error(`JSON patch ${op.op} ${op.path}: ${k} does not exist`)
    }
    const isArray = Array.isArray(parent)
    const index = last === '-' ? (isArray ? parent.length : NaN) : Number(last)
    if (isArray && !(Number.isInteger(index) && index >= 0 && index <= parent.length))
      throw new Error(`JSON patch ${op.op} ${op.path}: bad array index`)
    const exists = isArray ? index < parent.length : Object.hasOwn(parent, last)
    switch (op.op) {
      case 'add':
        if (isArray) parent.splice(index, 0, structuredClone(op.value))
        else parent[last] = structuredClone(op.value)
        break
      case 'replace':
      case 'remove':
        if (!exists) throw new Error(`JSON patch ${op.op} ${op.path}: nothing there`)
        if (op.op === 'replace') {
          if (isArray) parent[index] = structuredClone(op.value)
          else parent[last] = structuredClone(op.value)
        } else if (isArray) parent.splice(index, 1)
        else delete parent[last]
        break
      case 'test':
        if (!exists || JSON.stringify(isArray ? parent[index] : parent[last]) !== JSON.stringify(op.value))
          throw new Error(`JSON patch test ${op.path} failed`)
        break
      default:
        throw new Error(`JSON patch op ${String(op.op)} is outside the subset this renderer supports`)
    }
  }
}

function applyPatches(objects: KObject[], patches: KObject[], file: string): void {
  for (const p of patches) {
    for (const k of Object.keys(p))
      if (k !== 'target' && k !== 'patch') throw new Error(`${file}: patches[].${k} is not supported here`)
    for (const k of Object.keys(p.target ?? {}))
      if (k !== 'kind' && k !== 'name') throw new Error(`${file}: patches[].target.${k} is not supported here`)
    const ops = parse(String(p.patch)) as unknown
    const hits = objects.filter(
      o =>
        (p.target?.kind === undefined || o.kind === p.target.kind) &&
        (p.target?.name === undefined || o.metadata?.name === p.target.name),
    )
    // kustomize fails a patch whose target matches nothing; so does this.
    if (hits.length === 0) throw new Error(`${file}: patch target ${JSON.stringify(p.target)} matches no resource`)
    if (isDeletePatch(ops)) {
      for (const o of hits) objects.splice(objects.indexOf(o), 1)
      continue
    }
    if (!Array.isArray(ops))
      throw new Error(`${file}: only JSON 6902 patches (a list of operations) and $patch: delete are supported`)
    for (const o of hits) applyJsonPatch(o, ops as KObject[])
  }
}

/** A strategic-merge patch that only deletes its target: `$patch: delete` beside its identity. */
function isDeletePatch(p: unknown): boolean {
  if (typeof p !== 'object' || p === null || Array.isArray(p)) return false
  const o = p as KObject
  if (o.$patch !== 'delete') return false
  for (const k of Object.keys(o))
    if (!['$patch', 'apiVersion', 'kind', 'metadata'].includes(k))
      throw new Error(`strategic-merge patch field ${k} is outside the subset this renderer supports`)
  return true
}

const LOCAL_CONFIG = 'config.kubernetes.io/local-config'
/** Generated objects whose name gets kustomize's content hash once the build is done, by their base name. */
const hashed = new WeakMap<KObject, string>()

/** Go's json.Marshal escapes these; kustomize hashes Go's encoding. */
const goJson = (v: unknown): string =>
  JSON.stringify(v).replace(/[<>&\u2028\u2029]/g, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)

/**
 * kustomize's name suffix for a ConfigMap (api/hasher): sha256 of {"data","kind","name"} as Go encodes
 * it, with the name still empty at hashing time, first 10 hex digits with 0 1 3 a e mapped to g h k m t
 * so the suffix never reads as a number or a word.
 */
export function configMapHash(data: Record<string, string>): string {
  const hex = createHash('sha256')
    .update(goJson({ data, kind: 'ConfigMap', name: '' }))
    .digest('hex')
  const map: Record<string, string> = { '0': 'g', '1': 'h', '3': 'k', a: 'm', e: 't' }
  return [...hex.slice(0, 10)].map(c => map[c] ?? c).join('')
}

const GENERATOR_FIELDS = new Set(['name', 'namespace', 'files', 'literals', 'options'])

function generateConfigMaps(dir: string, generators: KObject[], file: string): KObject[] {
  return generators.map(g => {
    for (const k of Object.keys(g))
      if (!GENERATOR_FIELDS.has(k)) throw new Error(`${file}: configMapGenerator[].${k} is not supported here`)
    for (const k of Object.keys(g.options ?? {}))
      if (k !== 'labels') throw new Error(`${file}: configMapGenerator[].options.${k} is not supported here`)
    const data: Record<string, string> = {}
    for (const f of (g.files ?? []) as string[]) {
      const eq = f.indexOf('=')
      const [key, path] = eq >= 0 ? [f.slice(0, eq), f.slice(eq + 1)] : [basename(f), f]
      data[key] = readFileSync(resolve(dir, path), 'utf8')
    }
    for (const l of (g.literals ?? []) as string[]) {
      const eq = l.indexOf('=')
      if (eq < 0) throw new Error(`${file}: literal ${l} is not KEY=VALUE`)
      data[l.slice(0, eq)] = l.slice(eq + 1)
    }
    const metadata: KObject = { name: String(g.name) }
    if (g.namespace) metadata.namespace = g.namespace
    if (g.options?.labels) metadata.labels = { ...g.options.labels }
    const cm: KObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata, data }
    hashed.set(cm, String(g.name))
    return cm
  })
}

/** The value at a kustomize field path (dots; `*` over every item of a list), or every match of it. */
function fieldMatches(obj: KObject, path: string): { parent: KObject; key: string }[] {
  const keys = path.split('.')
  let level: { parent: any; key: string }[] = [{ parent: { root: obj }, key: 'root' }]
  for (const k of keys) {
    const next: { parent: any; key: string }[] = []
    for (const { parent, key } of level) {
      const v = parent[key]
      if (v === undefined || v === null) continue
      if (k === '*') {
        if (!Array.isArray(v)) throw new Error(`field path ${path}: * needs a list`)
        v.forEach((_, i) => next.push({ parent: v, key: String(i) }))
      } else if (/^\[.*\]$/.test(k)) throw new Error(`field path ${path}: [selectors] are outside the subset`)
      else next.push({ parent: v, key: k })
    }
    level = next
  }
  return level.filter(({ parent, key }) => parent[key] !== undefined)
}

function selects(o: KObject, sel: KObject | undefined): boolean {
  for (const k of Object.keys(sel ?? {}))
    if (k !== 'kind' && k !== 'name') throw new Error(`replacement select.${k} is outside the subset`)
  return (sel?.kind === undefined || o.kind === sel.kind) && (sel?.name === undefined || o.metadata?.name === sel.name)
}

function applyReplacements(objects: KObject[], replacements: KObject[], file: string): void {
  for (const r of replacements) {
    const src = r.source as KObject
    const from = objects.filter(o => selects(o, { kind: src.kind, name: src.name }))
    const value = from.flatMap(o => fieldMatches(o, String(src.fieldPath))).map(m => m.parent[m.key] as unknown)
    // As kustomize: a source that selects nothing fails the build, naming it.
    if (value.length !== 1)
      throw new Error(
        `${file}: replacement source ${String(src.kind)}/${String(src.name)}:${String(src.fieldPath)} selects ${value.length} values`,
      )
    for (const target of (r.targets ?? []) as KObject[]) {
      for (const k of Object.keys(target))
        if (k !== 'select' && k !== 'fieldPaths' && k !== 'options')
          throw new Error(`${file}: replacements[].targets[].${k} is not supported here`)
      const hits = objects.filter(o => selects(o, target.select as KObject))
      for (const o of hits)
        for (const fp of target.fieldPaths as string[])
          for (const { parent, key } of fieldMatches(o, fp)) {
            const opt = (target.options ?? {}) as KObject
            if (opt.delimiter === undefined) parent[key] = structuredClone(value[0])
            else {
              const parts = String(parent[key]).split(String(opt.delimiter))
              parts[Number(opt.index ?? 0)] = String(value[0])
              parent[key] = parts.join(String(opt.delimiter))
            }
          }
    }
  }
}

/** Gives generated ConfigMaps their hashed names and renames what pod specs say about them. */
function suffixGeneratedNames(objects: KObject[]): void {
  const renamed = new Map<string, string>()
  for (const o of objects) {
    const base = hashed.get(o)
    if (base === undefined) continue
    const name = `${base}-${configMapHash(o.data as Record<string, string>)}`
    renamed.set(`${String(o.metadata.namespace ?? '')}/${base}`, name)
    o.metadata.name = name
    hashed.delete(o)
  }
  if (renamed.size === 0) return
  const rename = (ns: string, n: string): string => renamed.get(`${ns}/${n}`) ?? n
  for (const o of objects) {
    const spec = o.spec?.template?.spec
    if (!spec) continue
    const ns = String(o.metadata?.namespace ?? '')
    for (const v of (spec.volumes ?? []) as KObject[]) if (v.configMap) v.configMap.name = rename(ns, v.configMap.name)
    for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? [])] as KObject[]) {
      for (const e of (c.env ?? []) as KObject[]) {
        const ref = e.valueFrom?.configMapKeyRef
        if (ref) ref.name = rename(ns, ref.name)
      }
      for (const e of (c.envFrom ?? []) as KObject[])
        if (e.configMapRef) e.configMapRef.name = rename(ns, e.configMapRef.name)
    }
  }
}

function splitImage(image: string): { name: string; tag?: string; digest?: string } {
  const at = image.indexOf('@')
  const base = at >= 0 ? image.slice(0, at) : image
  const digest = at >= 0 ? image.slice(at + 1) : undefined
  const colon = base.lastIndexOf(':')
  // A colon before the last slash belongs to a registry port, not a tag.
  if (colon > base.lastIndexOf('/')) return { name: base.slice(0, colon), tag: base.slice(colon + 1), digest }
  return { name: base, digest }
}

function applyImages(objects: KObject[], images: KObject[]): void {
  for (const o of objects) {
    const spec = o.spec?.template?.spec ?? o.spec
    for (const c of [...(spec?.containers ?? []), ...(spec?.initContainers ?? [])] as KObject[]) {
      const cur = splitImage(String(c.image))
      const rule = images.find(i => i.name === cur.name)
      if (!rule) continue
      const name = rule.newName ?? cur.name
      if (rule.digest) c.image = `${name}@${rule.digest}`
      else {
        const tag = rule.newTag ?? cur.tag
        c.image = `${name}${tag ? `:${tag}` : ''}${!rule.newTag && cur.digest ? `@${cur.digest}` : ''}`
      }
    }
  }
}

/** The objects `kustomize build dir` prints, in the order resources were listed. */
export function renderKustomization(
  dir: string,
  expectKind: 'Kustomization' | 'Component' = 'Kustomization',
): KObject[] {
  const objects = accumulate(dir, expectKind)
  suffixGeneratedNames(objects)
  return objects.filter(o => o.metadata?.annotations?.[LOCAL_CONFIG] !== 'true')
}

function accumulate(dir: string, expectKind: 'Kustomization' | 'Component'): KObject[] {
  const file = kustomizationFile(dir)
  const k = parse(readFileSync(file, 'utf8')) as KObject
  for (const key of Object.keys(k))
    if (!KUSTOMIZATION_FIELDS.has(key)) throw new Error(`${file}: ${key} is outside the subset this renderer supports`)
  if (k.kind !== expectKind || k.apiVersion !== KINDS[expectKind])
    throw new Error(`${file}: expected ${KINDS[expectKind]} ${expectKind}, found ${k.apiVersion} ${k.kind}`)
  return build(dir, k, file, [])
}

function build(dir: string, k: KObject, file: string, inherited: KObject[]): KObject[] {
  const objects = inherited
  for (const r of (k.resources ?? []) as string[]) {
    // As kustomize: a kustomization's roots are relative ("new root cannot be absolute").
    if (isAbsolute(r)) throw new Error(`${file}: resource ${r} must be a relative path`)
    const p = resolve(dir, r)
    if (statSync(p).isDirectory()) objects.push(...accumulate(p, 'Kustomization'))
    else objects.push(...yamlObjects(p))
  }
  for (const c of (k.components ?? []) as string[]) {
    const cdir = resolve(dir, c)
    const cfile = kustomizationFile(cdir)
    const ck = parse(readFileSync(cfile, 'utf8')) as KObject
    for (const key of Object.keys(ck))
      if (!KUSTOMIZATION_FIELDS.has(key))
        throw new Error(`${cfile}: ${key} is outside the subset this renderer supports`)
    if (ck.kind !== 'Component' || ck.apiVersion !== KINDS.Component)
      throw new Error(`${cfile}: components must be ${KINDS.Component} Component`)
    build(cdir, ck, cfile, objects)
  }
  objects.push(...generateConfigMaps(dir, (k.configMapGenerator ?? []) as KObject[], file))
  applyPatches(objects, (k.patches ?? []) as KObject[], file)
  applyReplacements(objects, (k.replacements ?? []) as KObject[], file)
  if (k.namespace)
    for (const o of objects)
      if (!CLUSTER_SCOPED.has(String(o.kind))) o.metadata = { ...o.metadata, namespace: k.namespace }
  applyImages(objects, (k.images ?? []) as KObject[])
  return objects
}

/** The real kustomize's output for `dir`, or why it could not be had (no binary here). */
export function realKustomize(dir: string): { objects: KObject[] } | { skip: string } {
  for (const [cmd, args] of [
    ['kustomize', ['build', dir]],
    ['kubectl', ['kustomize', dir]],
  ] as const) {
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60000 })
    if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') continue
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.error?.message}`)
    return { objects: parseAllDocuments(r.stdout).map(d => d.toJS() as KObject) }
  }
  return { skip: 'neither kustomize nor kubectl is installed' }
}

/** kind/namespace/name, the identity kustomize keys resources by. */
export function objectKey(o: KObject): string {
  return `${String(o.kind)}/${String(o.metadata?.namespace ?? '')}/${String(o.metadata?.name)}`
}
