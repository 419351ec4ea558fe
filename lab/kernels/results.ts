// Kernel-lab results: reads what the guest left in the results share and judges the lab's expected signs.
// Parsing and judging are pure (text in, values out); only readGuestResults touches the file system.

import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { RaceReport, RaceRow } from '../race/race.js'
import { GUEST_FILES, GUEST_LOG_PREFIX, PROBE_HANDLINGS, probeFile } from './guest.js'
import type { ProbeHandling } from './guest.js'

export interface GuestResults {
  /** key=value lines of guest-info (kernel, cmdline, lab_pre56_clash, cpus). */
  info: Record<string, string>
  /** Exit code of the race lab in the guest; null when the guest never got that far. */
  rc: number | null
  report: RaceReport | null
  /** Why there is no report, when there is none (and one was asked for). */
  problem: string | null
  /** `check --probe --json` runs the guest made, in the order it made them. */
  probes: ProbeRun[]
}

/** One `dns-shaper check --probe --json` in the guest, as it left it. */
export interface ProbeRun {
  handling: ProbeHandling
  /** Exit code of `check` (1 when it found problems, a recommendation among them). */
  rc: number | null
  /** Its JSON output; null when it printed none or none that parses. */
  json: unknown
  stderr: string
}

export function parseGuestInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const i = line.indexOf('=')
    if (i > 0) out[line.slice(0, i).trim()] = line.slice(i + 1).trim()
  }
  return out
}

/** A race report as race-cli writes it; throws with what is wrong if it is not one. */
export function parseRaceReport(text: string): RaceReport {
  const j = JSON.parse(text) as Partial<RaceReport>
  if (!j || typeof j !== 'object' || !Array.isArray(j.rows) || typeof j.kernel !== 'string')
    throw new Error('not a race-lab report (no rows or kernel)')
  for (const [i, r] of j.rows.entries()) {
    const row = r as Partial<RaceRow>
    for (const k of ['insertFailed', 'clashResolve', 'lookups', 'failed', 'slowOver1s'] as const) {
      if (typeof row[k] !== 'number') throw new Error(`row ${i}: ${k} is not a number`)
    }
  }
  return { date: j.date ?? '', kernel: j.kernel, cpus: j.cpus ?? 0, rows: j.rows, skipped: j.skipped ?? [] }
}

export function readGuestResults(runDir: string, opts: { raceAsked?: boolean } = {}): GuestResults {
  const file = (f: string): string | null => {
    const p = join(runDir, f)
    return existsSync(p) ? readFileSync(p, 'utf8') : null
  }
  const infoText = file(GUEST_FILES.info)
  const rcText = file(GUEST_FILES.rc)
  const reportText = file(GUEST_FILES.report)
  const info = infoText === null ? {} : parseGuestInfo(infoText)
  const rc = rcText === null || !/^\d+\s*$/.test(rcText) ? null : Number(rcText.trim())
  let report: RaceReport | null = null
  let problem: string | null = null
  if (infoText === null) {
    problem =
      'the guest never reached the lab (no guest-info): the kernel did not boot to the init, or could not mount ' +
      'the 9p root or results share. A --kernel needs VIRTIO_PCI, NET_9P_VIRTIO, 9P_FS, TMPFS, DEVTMPFS and ' +
      'SERIAL_8250_CONSOLE built in (=y); see the console log'
  } else if (reportText === null && opts.raceAsked === false) {
    // The probe-only run: no race report is expected.
  } else if (reportText === null) {
    problem = `the race lab in the guest wrote no report (exit ${rc ?? 'unknown'}); see the console log`
  } else {
    try {
      report = parseRaceReport(reportText)
    } catch (e: unknown) {
      problem = `the guest's report is unreadable: ${e instanceof Error ? e.message : String(e)}`
    }
  }
  const probes: ProbeRun[] = []
  for (const handling of PROBE_HANDLINGS) {
    const rcT = file(probeFile(handling, 'rc'))
    if (rcT === null) continue
    const jsonT = file(probeFile(handling, 'json')) ?? ''
    let json: unknown = null
    try {
      json = jsonT.trim() ? (JSON.parse(jsonT) as unknown) : null
    } catch {
      json = null
    }
    probes.push({
      handling,
      rc: /^\d+\s*$/.test(rcT) ? Number(rcT.trim()) : null,
      json,
      stderr: file(probeFile(handling, 'err')) ?? '',
    })
  }
  return { info, rc, report, problem, probes }
}

/** The guest's own console lines (GUEST_LOG_PREFIX), without the serial line's carriage returns. */
export function guestConsoleLines(consoleText: string): string[] {
  return consoleText
    .split('\n')
    .map(l => l.replace(/\r$/, ''))
    .filter(l => l.startsWith(GUEST_LOG_PREFIX))
}

/**
 * Console lines worth showing live: the guest init's own, the race table and its skips, and what
 * ends a run early (race-cli errors, a kernel panic). Kernel messages otherwise stay in console.log.
 */
export function isShownConsoleLine(line: string): boolean {
  return (
    line.startsWith(GUEST_LOG_PREFIX) ||
    /^(\(|no shaper|raw |mangle |netem |shaper |skip:|\d+ rows$|race-cli:)/.test(line) ||
    /Kernel panic/.test(line)
  )
}

export interface SignCheck {
  name: string
  status: 'PASS' | 'FAIL' | 'SKIP'
  detail: string
}

const sum = (rows: readonly RaceRow[], f: (r: RaceRow) => number): number => rows.reduce((a, r) => a + f(r), 0)

/** The split client's own stall: the largest gap between its two senders leaving the barrier. */
const senderStallS = (r: RaceRow): number =>
  typeof r.raw['release_skew_ns_max'] === 'number' ? r.raw['release_skew_ns_max'] / 1e9 : 0

/**
 * One dns-shaper row: any kernel drop (insert_failed, conntrack drop) is bad. A lost answer with no
 * kernel drop is bad too, unless it is explained: a sender that left the barrier more than the
 * client's 1 s timeout after its sibling (a descheduled vCPU under TCG) counts its pair as lost
 * though nothing was dropped; or the shaper released every packet it held (none bypassed), so
 * neither conntrack nor the shaper dropped it. The note says which.
 */
export function judgeShapedRow(r: RaceRow): { bad: boolean; note: string | null } {
  const where = `${r.client} snat=${r.snat ? 'on' : 'off'}`
  const lost = (r.answersLost ?? 0) + r.failed
  if (r.insertFailed > 0 || r.drop > 0)
    return {
      bad: true,
      note: `${where}: insert_failed ${r.insertFailed}, drop ${r.drop}, lost ${r.answersLost ?? '-'}, failed ${r.failed}`,
    }
  if (lost === 0) return { bad: false, note: null }
  const stall = senderStallS(r)
  if (stall > 1)
    return {
      bad: false,
      note: `${where}: lost ${r.answersLost ?? '-'}/failed ${r.failed} with no kernel drop: a sender stalled ${stall.toFixed(2)} s, past the client's 1 s timeout`,
    }
  // Nothing dropped by conntrack and every packet the shaper held was released, none bypassed: the
  // answer went missing after both (the client counts an answer later than 1 s as lost, and the
  // guest's latency tail reaches that). Not a drop by either; the note says it cannot tell more.
  const c = r.shaperCounters
  const heldAll = c !== null && (c['held'] ?? 0) === (c['pairReleased'] ?? 0) + (c['deadlineReleased'] ?? 0)
  if (heldAll && (c?.['bypassed'] ?? 0) === 0)
    return {
      bad: false,
      note: `${where}: lost ${r.answersLost ?? '-'}/failed ${r.failed} with no kernel drop and every held packet released (late or lost past conntrack; p99 ${(r.p99Us / 1e6).toFixed(2)} s)`,
    }
  return { bad: true, note: `${where}: lost ${r.answersLost ?? '-'}, failed ${r.failed} with no kernel drop` }
}

/**
 * The signs the lab expects, from the rows themselves: (a) drops (insert_failed) without a shaper
 * under pre-5.6 clash handling, for the forced race at least (split-CPU pairs); (d)/(e) dns-shaper
 * rows with no insert_failed and nothing lost; (f) stock 5.10 resolving the same race (clash_resolve,
 * no insert_failed). A sign whose rows did not run is SKIP, never PASS.
 */
export function checkExpectedSigns(rows: readonly RaceRow[]): SignCheck[] {
  const modeRows = rows.filter(r => r.id === null && r.service !== 'iptables')
  // A kube-proxy mode run (--services) has no lettered rows: their signs would all be SKIP noise.
  const lettered = rows.length === 0 || rows.some(r => r.id !== null) ? letteredSigns(rows) : []
  return [...lettered, ...modeSigns(modeRows)]
}

/**
 * Signs of the kube-proxy mode rows (IPVS, nftables): every dns-shaper row, fixed or pair, without a
 * kernel drop or an unexplained loss, per mode. Rows without a shaper are read from the table, not
 * judged: whether a mode clashes at all there is what they measure.
 */
export function modeSigns(rows: readonly RaceRow[]): SignCheck[] {
  const out: SignCheck[] = []
  for (const service of [...new Set(rows.map(r => r.service))]) {
    // By label, not by counters: a dns-shaper row whose /metrics could not be read has none.
    const isShaped = (r: RaceRow): boolean => !r.shaper.startsWith('no shaper')
    const shaped = rows.filter(r => r.service === service && isShaped(r))
    const name = `(${service}) dns-shaper rows: no drops`
    if (shaped.length === 0) {
      out.push({ name, status: 'SKIP', detail: `no ${service} dns-shaper rows ran` })
      continue
    }
    const verdicts = shaped.map(judgeShapedRow)
    const bad = verdicts.filter(v => v.bad)
    const none = rows.filter(r => r.service === service && !isShaped(r))
    const context = `without a shaper: clash_resolve ${sum(none, r => r.clashResolve)}, insert_failed ${sum(none, r => r.insertFailed)} over ${none.length} row(s)`
    out.push({
      name,
      status: bad.length === 0 ? 'PASS' : 'FAIL',
      detail:
        bad.length === 0
          ? [
              `insert_failed 0, conntrack drop 0 over ${shaped.length} row(s)`,
              ...verdicts.filter(v => v.note !== null).map(v => v.note),
              context,
            ].join('; ')
          : bad.map(v => v.note).join('; '),
    })
  }
  return out
}

function letteredSigns(rows: readonly RaceRow[]): SignCheck[] {
  const byId = (id: string): RaceRow[] => rows.filter(r => r.id === id)
  const out: SignCheck[] = []

  // (a) and (f) judge the split-CPU rows of their letter (and all its rows); SKIP when none ran.
  const splitSign = (
    id: string,
    name: string,
    judge: (all: RaceRow[], split: RaceRow[]) => { pass: boolean; detail: string },
  ): SignCheck => {
    const all = byId(id)
    const split = all.filter(r => r.client === 'split')
    if (split.length === 0) return { name, status: 'SKIP', detail: `no (${id}) split rows ran` }
    const { pass, detail } = judge(all, split)
    return { name, status: pass ? 'PASS' : 'FAIL', detail }
  }

  out.push(
    splitSign('a', '(a) drops without a shaper', (_all, split) => {
      const f = sum(split, r => r.insertFailed)
      return {
        pass: f > 0,
        detail: `insert_failed ${f} over ${split.length} split-CPU row(s)${f > 0 ? '' : ': pre-5.6 handling should drop the loser; is the lab switch on?'}`,
      }
    }),
  )

  for (const [id, what] of [
    ['d', '(d) dns-shaper fixed 5 ms: no drops'],
    ['e', '(e) dns-shaper pair: no drops'],
  ] as const) {
    const rs = byId(id)
    if (rs.length === 0) {
      out.push({ name: what, status: 'SKIP', detail: `no (${id}) rows ran` })
      continue
    }
    const verdicts = rs.map(judgeShapedRow)
    const bad = verdicts.filter(v => v.bad)
    const notes = verdicts.filter(v => v.note !== null).map(v => v.note)
    out.push({
      name: what,
      status: bad.length === 0 ? 'PASS' : 'FAIL',
      detail:
        bad.length === 0
          ? [`insert_failed 0, conntrack drop 0 over ${rs.length} row(s)`, ...notes].join('; ')
          : bad.map(v => v.note).join('; '),
    })
  }

  out.push(
    splitSign('f', '(f) stock 5.10 resolves the clash', (all, split) => {
      const ins = sum(all, r => r.insertFailed)
      const res = sum(split, r => r.clashResolve)
      return {
        pass: ins === 0 && res > 0,
        detail: `clash_resolve ${res} over split rows, insert_failed ${ins} over all (f) rows`,
      }
    }),
  )
  return out
}

export function formatChecks(checks: readonly SignCheck[]): string {
  return checks.map(c => `${c.status.padEnd(4)} ${c.name}: ${c.detail}`).join('\n')
}

/** The probe's outcome and figures, as `check --probe --json` reports them (report.probe.verdict). */
export interface ProbeFigures {
  /** drops | resolves | inconclusive, with the reason when inconclusive. */
  verdict: string
  /** The probe's own sentence. */
  text: string
  pairs: number
  clashes: number
  dropped: number
  resolved: number
}

/** Reads report.probe.verdict of `check --json`; null when there is none or it carries no figures. */
export function probeFigures(json: unknown): ProbeFigures | null {
  const get = (o: unknown, k: string): unknown =>
    o !== null && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined
  const v = get(get(json, 'probe'), 'verdict')
  const outcome = get(v, 'outcome')
  const f = get(v, 'figures')
  const n = (k: string): number | null => {
    const x = get(f, k)
    return typeof x === 'number' ? x : null
  }
  const [pairs, clashes, dropped, resolved] = ['pairs', 'clashes', 'dropped', 'resolved'].map(n)
  if (typeof outcome !== 'string' || pairs == null || clashes == null || dropped == null || resolved == null)
    return null
  const reason = get(v, 'reason')
  const text = get(v, 'text')
  return {
    verdict: typeof reason === 'string' ? `${outcome} (${reason})` : outcome,
    text: typeof text === 'string' ? text : '',
    pairs,
    clashes,
    dropped,
    resolved,
  }
}

/** The probe's own sentence when it gave no figures (not run, failed), for the operator. */
function probeText(json: unknown): string {
  const p = json !== null && typeof json === 'object' ? (json as Record<string, unknown>)['probe'] : undefined
  if (p === null || typeof p !== 'object') return ''
  const o = p as Record<string, unknown>
  const v = o['verdict']
  if (v !== null && typeof v === 'object' && typeof (v as Record<string, unknown>)['text'] === 'string')
    return (v as Record<string, string>)['text']!
  return typeof o['error'] === 'string' ? o['error'] : ''
}

const PROBE_EXPECT: Record<Exclude<ProbeHandling, 'asis'>, { verdict: RegExp; name: string }> = {
  pre56: { verdict: /^drops$/, name: 'check --probe, pre-5.6 handling (switch on): drops' },
  stock: { verdict: /^resolves$/, name: 'check --probe, stock 5.10 (switch off): resolves' },
}

/**
 * The probe's signs: with the switch on, its verdict says the kernel drops clashes (and it counted
 * drops); with it off, it resolves them (resolved > 0, nothing dropped). An 'asis' run (a kernel
 * without the switch) is reported, not judged: no one here knows what that kernel should do.
 */
export function probeSigns(probes: readonly ProbeRun[], asked: boolean): SignCheck[] {
  if (!asked) return []
  const out: SignCheck[] = []
  for (const h of ['pre56', 'stock'] as const) {
    const { name, verdict } = PROBE_EXPECT[h]
    const p = probes.find(x => x.handling === h)
    if (!p) {
      const asis = probes.find(x => x.handling === 'asis')
      out.push({
        name,
        status: 'SKIP',
        detail: asis ? 'this kernel has no lab switch: only the as-is probe ran' : 'the probe did not run in the guest',
      })
      continue
    }
    const f = probeFigures(p.json)
    if (!f) {
      out.push({
        name,
        status: 'FAIL',
        detail: `check --probe exited ${p.rc ?? '?'} with no probe figures: ${probeText(p.json) || p.stderr.trim().slice(-300) || 'no output'}`,
      })
      continue
    }
    const figures = `verdict ${f.verdict}: ${f.pairs} pairs, ${f.clashes} clashes, ${f.dropped} dropped, ${f.resolved} resolved`
    const ok = verdict.test(f.verdict) && (h === 'pre56' ? f.dropped > 0 : f.resolved > 0 && f.dropped === 0)
    out.push({ name, status: ok ? 'PASS' : 'FAIL', detail: figures })
  }
  return out
}
