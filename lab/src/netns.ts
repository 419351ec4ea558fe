// Typed wrapper around one Linux network namespace for the test lab: create, exec, spawn, resolv.conf, sysctl, destroy.
// It must never touch the root namespace's firewall, routes or sysctls, and never run a command through a shell.

import { execFileSync, spawn as nodeSpawn } from 'node:child_process'
import type { ChildProcess, SpawnOptions } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createRunner, netnsWrap, type ExecOptions, type ExecResult } from '../../src/kernel/exec.js'
import { errorMessage } from '../../src/errors.js'

/** Every namespace this library creates starts with this, so leftovers are easy to find. */
export const LAB_PREFIX = 'dnss-'
/** Linux IFNAMSIZ - 1: names are kept within it so they can double as interface names. */
export const MAX_NAME_LENGTH = 15
/** Where `ip netns exec` looks for per-namespace overrides of /etc files. */
export const NETNS_ETC_DIR = '/etc/netns'

const DEFAULT_TIMEOUT_MS = 10_000
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024
const KILL_GRACE_MS = 2_000

/** What a lab command returned: exec.ts's result plus the argv that ran (for LabError messages). */
export interface LabExecResult extends ExecResult {
  argv: string[]
}

/** Runs argv[0] with argv[1..] (no shell; through src/kernel/exec.ts) and never rejects. Injected in unit tests. */
export type LabRunner = (argv: string[], opts: ExecOptions) => Promise<LabExecResult>
/** Starts a long-running argv (no shell). Injected in unit tests. */
export type Spawner = (argv: string[], opts: SpawnOptions) => ChildProcess

/** A lab command failed: keeps the argv and stderr, and says what to try. */
export class LabError extends Error {
  readonly argv: string[]
  readonly stderr: string
  readonly exitCode: number | null
  readonly hint: string
  constructor(
    message: string,
    init: { argv?: string[]; stderr?: string; exitCode?: number | null; hint?: string } = {},
  ) {
    const hint = init.hint ?? ''
    super(hint ? `${message} (${hint})` : message)
    this.name = 'LabError'
    this.argv = init.argv ?? []
    this.stderr = init.stderr ?? ''
    this.exitCode = init.exitCode ?? null
    this.hint = hint
  }
}

export function isLabError(e: unknown): e is LabError {
  return e instanceof LabError
}

const run = createRunner({ timeoutMs: DEFAULT_TIMEOUT_MS, maxBuffer: MAX_OUTPUT_BYTES })

/** Default runner: src/kernel/exec.ts with a timeout and an output cap; never rejects, the result says what happened. */
export const execRunner: LabRunner = async (argv, opts) => {
  if (argv[0] === undefined) throw new LabError('empty argv')
  try {
    return { argv, ...(await run(argv, opts)) }
  } catch (e) {
    // Spawn failures (ENOENT etc.) have no exit status: report them as a shell does, exit 127.
    return { argv, stdout: '', stderr: `${argv[0]}: ${errorMessage(e)}`, code: 127, signal: null, timedOut: false }
  }
}

export const defaultSpawner: Spawner = (argv, opts) => {
  const [file, ...args] = argv
  if (file === undefined) throw new LabError('empty argv')
  return nodeSpawn(file, args, opts)
}

/** Short random token of [0-9a-z]. */
export function randomToken(length: number, rand: (n: number) => Buffer = randomBytes): string {
  const alphabet = '0123456789abcdefghijklmnopqrstuvwxyz'
  const bytes = rand(length)
  let s = ''
  for (let i = 0; i < length; i++) s += alphabet[(bytes[i] ?? 0) % alphabet.length]
  return s
}

/**
 * A lab id unique per run: `dnss-<pid base36>-<3 random>`, at most 14 chars, so one role
 * character can be appended and the namespace name still fits an interface name.
 */
export function makeLabId(opts: { pid?: number; prefix?: string; random?: string } = {}): string {
  const prefix = opts.prefix ?? LAB_PREFIX
  const pid = (opts.pid ?? process.pid).toString(36)
  const id = `${prefix}${pid}-${opts.random ?? randomToken(3)}`
  if (id.length > MAX_NAME_LENGTH - 1) {
    throw new LabError(`lab id "${id}" is longer than ${MAX_NAME_LENGTH - 1} chars`, { hint: 'use a shorter prefix' })
  }
  return id
}

/** Namespace names become file names under /run/netns and /etc/netns: refuse anything path-like. */
export function validateName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name) || name.length > MAX_NAME_LENGTH) {
    throw new LabError(`invalid namespace name "${name}"`, {
      hint: `use [A-Za-z0-9_.-], at most ${MAX_NAME_LENGTH} chars, not starting with a dot or dash`,
    })
  }
}

/** argv that runs `argv` inside namespace `ns`. */
export function nsExecArgv(ns: string, argv: readonly string[]): string[] {
  return [...netnsWrap(ns), ...argv]
}

/** argv that sets one sysctl inside namespace `ns` (never in the root namespace). */
export function sysctlArgv(ns: string, key: string, value: string | number): string[] {
  if (!/^[a-z0-9_./-]+$/i.test(key)) throw new LabError(`invalid sysctl key "${key}"`)
  return nsExecArgv(ns, ['sysctl', '-q', '-w', `${key}=${value}`])
}

/** resolv.conf text for a namespace. */
export function resolvConfText(
  nameservers: readonly string[],
  opts: { search?: readonly string[]; options?: readonly string[] } = {},
): string {
  const lines: string[] = ['# written by dns-shaper lab; removed with its namespace']
  if (opts.search && opts.search.length > 0) lines.push(`search ${opts.search.join(' ')}`)
  for (const ns of nameservers) lines.push(`nameserver ${ns}`)
  if (opts.options && opts.options.length > 0) lines.push(`options ${opts.options.join(' ')}`)
  return lines.join('\n') + '\n'
}

/** Namespace names from `ip netns list` output ("name (id: 3)" lines). */
export function parseNetnsList(stdout: string): string[] {
  return stdout
    .split('\n')
    .map(l => l.trim().split(/\s+/)[0] ?? '')
    .filter(n => n.length > 0)
}

/** Namespaces whose name starts with `prefix` (default: every lab namespace). */
export async function listNamespaces(prefix: string = LAB_PREFIX, runner: LabRunner = execRunner): Promise<string[]> {
  const r = await runner(['ip', 'netns', 'list'], { timeoutMs: DEFAULT_TIMEOUT_MS })
  if (r.code !== 0) {
    throw new LabError('`ip netns list` failed', {
      argv: r.argv,
      stderr: r.stderr,
      exitCode: r.code,
      hint: 'is iproute2 installed?',
    })
  }
  return parseNetnsList(r.stdout).filter(n => n.startsWith(prefix))
}

function describe(r: LabExecResult): string {
  if (r.timedOut) return 'timed out'
  if (r.signal) return `killed by ${r.signal}`
  return `exit ${r.code}`
}

function hintFor(stderr: string): string {
  if (/Operation not permitted|Permission denied/i.test(stderr))
    return 'run as root (CAP_NET_ADMIN and CAP_SYS_ADMIN are needed)'
  if (/File exists/i.test(stderr))
    return 'a namespace or link with that name exists; list leftovers with listNamespaces() and delete them'
  if (/No such file|Cannot open network namespace/i.test(stderr))
    return 'the namespace is gone or the command is not installed'
  return 'see stderr'
}

export interface NetnsOptions {
  runner?: LabRunner
  spawner?: Spawner
  /** Directory for per-namespace /etc overrides (default /etc/netns); tests point it elsewhere. */
  etcDir?: string
}

export interface SpawnInNsOptions {
  /** stdio for the child (default: ignore stdin, pipe stdout/stderr). */
  stdio?: SpawnOptions['stdio']
  env?: NodeJS.ProcessEnv
  cwd?: string
}

type State = 'new' | 'live' | 'destroyed'

/** Live namespaces of this process; cleaned synchronously on exit and SIGINT/SIGTERM. */
const live = new Set<Netns>()

/** One network namespace. Create with `Netns.create()`; always `destroy()` it. */
export class Netns {
  readonly name: string
  readonly etcDir: string
  #runner: LabRunner
  #spawner: Spawner
  #state: State = 'new'
  #children = new Set<ChildProcess>()
  #wroteEtc = false
  #destroying: Promise<void> | undefined

  private constructor(name: string, opts: NetnsOptions) {
    validateName(name)
    this.name = name
    this.etcDir = opts.etcDir ?? NETNS_ETC_DIR
    this.#runner = opts.runner ?? execRunner
    this.#spawner = opts.spawner ?? defaultSpawner
  }

  /** Creates the namespace and brings its loopback up. Registers it for cleanup at exit. */
  static async create(name: string, opts: NetnsOptions = {}): Promise<Netns> {
    const ns = new Netns(name, opts)
    const r = await ns.#runner(['ip', 'netns', 'add', name], { timeoutMs: DEFAULT_TIMEOUT_MS })
    if (r.code !== 0) {
      throw new LabError(`cannot create network namespace ${name}: ${r.stderr.trim() || describe(r)}`, {
        argv: r.argv,
        stderr: r.stderr,
        exitCode: r.code,
        hint: hintFor(r.stderr),
      })
    }
    ns.#state = 'live'
    track(ns)
    try {
      await ns.execOk(['ip', 'link', 'set', 'lo', 'up'])
    } catch (e: unknown) {
      await ns.destroy().catch(() => undefined)
      throw e
    }
    return ns
  }

  get alive(): boolean {
    return this.#state === 'live'
  }

  /** Child processes spawned in this namespace and not yet exited. */
  get children(): readonly ChildProcess[] {
    return [...this.#children]
  }

  #assertLive(what: string): void {
    if (this.#state !== 'live')
      throw new LabError(`${what}: namespace ${this.name} is ${this.#state === 'new' ? 'not created' : 'destroyed'}`)
  }

  /** Runs argv inside the namespace; resolves with the result whatever the exit code. */
  async exec(argv: readonly string[], opts: ExecOptions = {}): Promise<LabExecResult> {
    this.#assertLive(`exec ${argv[0] ?? ''}`)
    return this.#runner(nsExecArgv(this.name, argv), {
      timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      input: opts.input,
    })
  }

  /** Like exec() but throws a LabError unless the command exits 0. */
  async execOk(argv: readonly string[], opts: ExecOptions = {}): Promise<LabExecResult> {
    const r = await this.exec(argv, opts)
    if (r.code !== 0 || r.timedOut) {
      throw new LabError(`in netns ${this.name}: \`${argv.join(' ')}\` failed (${describe(r)}): ${r.stderr.trim()}`, {
        argv: r.argv,
        stderr: r.stderr,
        exitCode: r.code,
        hint: r.timedOut ? 'the command hung; raise timeoutMs or check the lab topology' : hintFor(r.stderr),
      })
    }
    return r
  }

  /** Sets a sysctl inside this namespace only. */
  async sysctl(key: string, value: string | number): Promise<void> {
    this.#assertLive(`sysctl ${key}`)
    const argv = sysctlArgv(this.name, key, value)
    const r = await this.#runner(argv, { timeoutMs: DEFAULT_TIMEOUT_MS })
    if (r.code !== 0) {
      throw new LabError(`in netns ${this.name}: sysctl ${key}=${value} failed: ${r.stderr.trim() || describe(r)}`, {
        argv,
        stderr: r.stderr,
        exitCode: r.code,
        hint: 'check the key exists in a new namespace (e.g. ipv6 disabled on this host?)',
      })
    }
  }

  /** Writes /etc/netns/NAME/resolv.conf, which `ip netns exec` bind-mounts over /etc/resolv.conf. */
  writeResolvConf(
    nameservers: readonly string[],
    opts: { search?: readonly string[]; options?: readonly string[] } = {},
  ): string {
    this.#assertLive('writeResolvConf')
    const dir = join(this.etcDir, this.name)
    try {
      mkdirSync(dir, { recursive: true })
      this.#wroteEtc = true
      const file = join(dir, 'resolv.conf')
      writeFileSync(file, resolvConfText(nameservers, opts))
      return file
    } catch (e: unknown) {
      throw new LabError(`cannot write ${dir}/resolv.conf: ${errorMessage(e)}`, {
        hint: `check ${this.etcDir} is writable (root)`,
      })
    }
  }

  /**
   * Starts a long-running argv inside the namespace. `ip netns exec` execs the program
   * in place, so the ChildProcess pid is the program itself and signals reach it.
   * The child is killed by destroy().
   */
  spawn(argv: readonly string[], opts: SpawnInNsOptions = {}): ChildProcess {
    this.#assertLive(`spawn ${argv[0] ?? ''}`)
    const child = this.#spawner(nsExecArgv(this.name, argv), {
      stdio: opts.stdio ?? ['ignore', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
    })
    this.#children.add(child)
    const forget = (): void => {
      this.#children.delete(child)
    }
    child.once('exit', forget)
    child.once('error', forget)
    return child
  }

  /** Kills spawned children (TERM, then KILL after a grace), deletes the namespace and its /etc dir. Idempotent. */
  destroy(): Promise<void> {
    this.#destroying ??= this.#destroy()
    return this.#destroying
  }

  async #destroy(): Promise<void> {
    if (this.#state !== 'live') {
      this.#state = 'destroyed'
      untrack(this)
      return
    }
    const failures: string[] = []
    await Promise.all([...this.#children].map(c => killAndWait(c, KILL_GRACE_MS)))
    const r = await this.#runner(['ip', 'netns', 'del', this.name], { timeoutMs: DEFAULT_TIMEOUT_MS })
    if (r.code !== 0 && !/No such file/i.test(r.stderr))
      failures.push(`ip netns del ${this.name}: ${r.stderr.trim() || describe(r)}`)
    this.#removeEtc(failures)
    this.#state = 'destroyed'
    untrack(this)
    if (failures.length > 0) {
      throw new LabError(`cleanup of namespace ${this.name} incomplete: ${failures.join('; ')}`, {
        hint: `remove it by hand: ip netns del ${this.name}`,
      })
    }
  }

  #removeEtc(failures: string[]): void {
    if (!this.#wroteEtc) return
    try {
      rmSync(join(this.etcDir, this.name), { recursive: true, force: true })
    } catch (e: unknown) {
      failures.push(`rm ${join(this.etcDir, this.name)}: ${errorMessage(e)}`)
    }
  }

  /** Synchronous last-chance cleanup for 'exit' and signal handlers: SIGKILL children, delete namespace. */
  destroySync(): void {
    if (this.#state !== 'live') return
    for (const c of this.#children) {
      try {
        c.kill('SIGKILL')
      } catch {
        // already gone
      }
    }
    try {
      execFileSync('ip', ['netns', 'del', this.name], {
        stdio: ['ignore', 'ignore', 'pipe'],
        timeout: DEFAULT_TIMEOUT_MS,
      })
    } catch (e: unknown) {
      // Best effort while exiting; still say what is left so it can be removed by hand.
      const stderr =
        typeof e === 'object' && e !== null && 'stderr' in e ? String((e as { stderr: unknown }).stderr) : ''
      if (!/No such file/i.test(stderr)) {
        process.stderr.write(
          `dns-shaper lab: could not delete namespace ${this.name} (${errorMessage(e)}); run: ip netns del ${this.name}\n`,
        )
      }
    }
    this.#removeEtc([])
    this.#state = 'destroyed'
    this.#destroying ??= Promise.resolve()
    untrack(this)
  }
}

/** Sends SIGTERM, then SIGKILL after graceMs; resolves when the child exited (bounded by 2*graceMs). */
export function killAndWait(child: ChildProcess, graceMs: number = KILL_GRACE_MS): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise(resolve => {
    let killTimer: NodeJS.Timeout | undefined
    let giveUp: NodeJS.Timeout | undefined
    const done = (): void => {
      clearTimeout(killTimer)
      clearTimeout(giveUp)
      resolve()
    }
    child.once('exit', done)
    try {
      child.kill('SIGTERM')
    } catch {
      // ignore: exit or error follows
    }
    killTimer = setTimeout(() => {
      try {
        child.kill('SIGKILL')
      } catch {
        // ignore
      }
    }, graceMs)
    giveUp = setTimeout(done, graceMs * 2)
  })
}

// --- process-wide cleanup -------------------------------------------------------------

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM']
let handlersInstalled = false

/** Synchronously destroys every live namespace of this process. Exposed for CLI signal handlers. */
export function destroyAllSync(): void {
  for (const ns of [...live]) ns.destroySync()
}

function onExit(): void {
  destroyAllSync()
}

function onSignal(sig: NodeJS.Signals): void {
  destroyAllSync()
  removeHandlers()
  // We replaced the default action by listening; if nobody else listens, re-raise so the
  // process still dies of the signal (exit status 128+n) as the user asked.
  if (process.listenerCount(sig) === 0) process.kill(process.pid, sig)
}

function installHandlers(): void {
  if (handlersInstalled) return
  handlersInstalled = true
  process.on('exit', onExit)
  for (const s of SIGNALS) process.on(s, onSignal)
}

function removeHandlers(): void {
  if (!handlersInstalled) return
  handlersInstalled = false
  process.off('exit', onExit)
  for (const s of SIGNALS) process.off(s, onSignal)
}

function track(ns: Netns): void {
  live.add(ns)
  installHandlers()
}

function untrack(ns: Netns): void {
  live.delete(ns)
  if (live.size === 0) removeHandlers()
}

/** Number of namespaces this process still owns (for tests). */
export function liveNamespaceCount(): number {
  return live.size
}
