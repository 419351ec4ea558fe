// Renders the subset of kustomize that deploy/ uses, so test/deploy.ts can schema-check every variant
// on machines without a kustomize binary (Debian has none; kubectl carries one but is not a Debian
// package). It must stay faithful rather than grow: any field, op or selector outside the subset throws,
// and when `kubectl kustomize` or `kustomize` exists the test compares this output with the real one.
//
// Subset: Kustomization and Component files with `resources` (YAML files or directories), `components`,
// `namespace`, `images` (newName/newTag/digest) and `patches` given inline as JSON 6902 operations
// (add, remove, replace, test) with a `target` of kind and/or name. Order as kustomize applies it:
// resources, then components (each like a kustomization over what has been accumulated), then this
// file's own patches, namespace and images.
import { existsSync, readFileSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
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
    if (!Array.isArray(ops)) throw new Error(`${file}: only JSON 6902 patches (a list of operations) are supported`)
    const hits = objects.filter(
      o =>
        (p.target?.kind === undefined || o.kind === p.target.kind) &&
        (p.target?.name === undefined || o.metadata?.name === p.target.name),
    )
    // kustomize fails a patch whose target matches nothing; so does this.
    if (hits.length === 0) throw new Error(`${file}: patch target ${JSON.stringify(p.target)} matches no resource`)
    for (const o of hits) applyJsonPatch(o, ops as KObject[])
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
    const p = resolve(dir, r)
    if (statSync(p).isDirectory()) objects.push(...renderKustomization(p))
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
  applyPatches(objects, (k.patches ?? []) as KObject[], file)
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
