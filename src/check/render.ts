// Renders a check report: aligned text with the verdict line, or JSON. Pure.
import type { CheckReport } from './run.js'

export function renderText(report: CheckReport): string {
  const head = { status: 'STATUS', id: 'CHECK', found: 'FOUND', action: 'ACTION' }
  const rows = [head, ...report.items.map(i => ({ status: i.status, id: i.id, found: i.found, action: i.action }))]
  const ws = Math.max(...rows.map(r => r.status.length))
  const wi = Math.max(...rows.map(r => r.id.length))
  // Only rows with an action need their FOUND padded: a long finding without one must not push ACTION away.
  const wf = Math.max(...rows.filter(r => r.action).map(r => r.found.length))
  const lines = rows.map(r =>
    `${r.status.padEnd(ws)}  ${r.id.padEnd(wi)}  ${r.action ? `${r.found.padEnd(wf)}  ${r.action}` : r.found}`.trimEnd(),
  )
  return `${lines.join('\n')}\n\nverdict: ${report.verdict.line}\n`
}

export function renderJson(report: CheckReport): string {
  return JSON.stringify(report, null, 2) + '\n'
}
