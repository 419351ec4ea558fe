// The race report as a fixed-width text table. Pure.

import type { RaceRow } from './scenario.js'

// ---------------------------------------------------------------------------------------------
// Table

const fmtMs = (us: number | null): string => (us === null ? '-' : (us / 1000).toFixed(2))

export function tableHeader(): string {
  return formatCells([
    'shaper',
    'client',
    'service',
    'fam',
    'snat',
    'lookups',
    'failed',
    '>1s',
    'lost',
    'clashres',
    'ins_fail',
    'drop',
    'p50 ms',
    'p99 ms',
    'A p50',
    'AAAA p50',
    'held',
    'pair_rel',
    'deadline',
  ])
}

export function tableRow(r: RaceRow): string {
  return formatCells([
    r.shaper,
    r.client,
    r.service,
    `v${r.family}`,
    r.snat ? 'yes' : 'no',
    String(r.lookups),
    String(r.failed),
    String(r.slowOver1s),
    r.answersLost === null ? '-' : String(r.answersLost),
    String(r.clashResolve),
    String(r.insertFailed),
    String(r.drop),
    fmtMs(r.p50Us),
    fmtMs(r.p99Us),
    fmtMs(r.aP50Us),
    fmtMs(r.aaaaP50Us),
    ...(['held', 'pairReleased', 'deadlineReleased'] as const).map(k =>
      r.shaperCounters ? String(r.shaperCounters[k] ?? 0) : '-',
    ),
  ])
}

const WIDTHS = [22, 10, 12, 4, 5, 8, 7, 5, 6, 9, 9, 5, 8, 8, 7, 8, 6, 8, 8]
function formatCells(cells: string[]): string {
  return cells.map((c, i) => (i < 3 ? c.padEnd(WIDTHS[i]!) : c.padStart(WIDTHS[i]!))).join(' ')
}

export function formatTable(rows: readonly RaceRow[]): string {
  return [tableHeader(), ...rows.map(tableRow)].join('\n')
}
