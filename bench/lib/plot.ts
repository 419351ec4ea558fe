// A tiny SVG writer for the benchmark's charts: CDF of A-query latency per variant (log x axis), CDF
// of the AAAA hold per holding variant (linear x axis, configured hold marked), and the sweeps' x-y
// lines (cost against held depth, flows, ...; log or linear axes). Pure: returns text.

export interface Series {
  label: string
  /** [x, cumulative fraction 0..1] ascending in x. */
  points: Array<[number, number]>
}

export interface Panel {
  title: string
  xLabel: string
  log: boolean
  series: Series[]
  /** Vertical marker lines, e.g. the configured hold. */
  markers?: Array<{ x: number; label: string }>
  /** Axis range (default: from the data). */
  xMin?: number
  xMax?: number
}

const COLORS = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
]

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

const Y_TICKS = [0, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999]

/**
 * Vertical position (0..1) of a cumulative fraction: 0..0.9 linear over the lower 40 %, then one
 * equal step per nine (0.99, 0.999, 0.9999) so p99 and p99.9 stay readable.
 */
export function tailScale(p: number): number {
  if (!(p > 0)) return 0
  if (p < 0.9) return (0.4 * p) / 0.9
  const nines = Math.min(-Math.log10(Math.max(1 - p, 1e-4)), 4)
  return 0.4 + (0.6 * (nines - 1)) / 3
}

const fmt = (v: number): string =>
  Math.abs(v) >= 100 || Number.isInteger(v) ? String(Math.round(v)) : String(Number(v.toPrecision(3)))

/** Tick values: powers of 10 (and 2x, 5x when few decades) for log axes, ~6 round steps for linear. */
export function ticks(min: number, max: number, log: boolean): number[] {
  if (!(max > min)) return [min]
  if (log) {
    const out: number[] = []
    const lo = Math.floor(Math.log10(min))
    const hi = Math.ceil(Math.log10(max))
    const mults = hi - lo <= 3 ? [1, 2, 5] : [1]
    for (let e = lo; e <= hi; e++)
      for (const m of mults) {
        const v = m * 10 ** e
        if (v >= min * 0.999 && v <= max * 1.001) out.push(v)
      }
    return out
  }
  const raw = (max - min) / 6
  const mag = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 2.5, 5, 10].map(m => m * mag).find(s => s >= raw) ?? raw
  const out: number[] = []
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)))
  return out
}

function panelSvg(p: Panel, ox: number, oy: number, w: number, h: number, colorOf: (label: string) => string): string {
  const m = { l: 56, r: 12, t: 28, b: 44 }
  const pw = w - m.l - m.r
  const ph = h - m.t - m.b
  const xs = p.series.flatMap(s => s.points.map(q => q[0])).filter(x => Number.isFinite(x) && (!p.log || x > 0))
  let xMin = p.xMin ?? (xs.length ? Math.min(...xs) : 1)
  let xMax = p.xMax ?? (xs.length ? Math.max(...xs) : 10)
  if (p.log) {
    xMin = Math.max(xMin, 1e-9)
    xMax = Math.max(xMax, xMin * 10)
  }
  if (!(xMax > xMin)) xMax = xMin + 1
  const tx = (x: number): number => {
    const c = Math.min(Math.max(x, xMin), xMax)
    const f = p.log
      ? (Math.log10(c) - Math.log10(xMin)) / (Math.log10(xMax) - Math.log10(xMin))
      : (c - xMin) / (xMax - xMin)
    return ox + m.l + f * pw
  }
  const ty = (y: number): number => oy + m.t + (1 - tailScale(y)) * ph
  const o = panelFrame(p.title, { ox, oy, m, pw, ph }, ticks(xMin, xMax, p.log), tx, fmt)
  for (const v of Y_TICKS) {
    const y = ty(v).toFixed(1)
    o.push(`<line x1="${ox + m.l}" x2="${ox + m.l + pw}" y1="${y}" y2="${y}" stroke="#eee"/>`)
    o.push(`<text x="${ox + m.l - 4}" y="${y}" text-anchor="end" dominant-baseline="middle" font-size="10">${v}</text>`)
  }
  o.push(`<text x="${ox + m.l + pw / 2}" y="${oy + h - 8}" text-anchor="middle" font-size="11">${esc(p.xLabel)}</text>`)
  o.push(
    `<text transform="translate(${ox + 14},${oy + m.t + ph / 2}) rotate(-90)" text-anchor="middle" font-size="11">fraction of queries (tail stretched)</text>`,
  )
  for (const mk of p.markers ?? []) {
    const x = tx(mk.x).toFixed(1)
    o.push(`<line x1="${x}" x2="${x}" y1="${oy + m.t}" y2="${oy + m.t + ph}" stroke="#000" stroke-dasharray="4 3"/>`)
    o.push(`<text x="${Number(x) + 3}" y="${oy + m.t + 12}" font-size="10">${esc(mk.label)}</text>`)
  }
  for (const s of p.series) {
    if (s.points.length === 0) continue
    // Step function: the CDF is flat until the next sample value.
    const pts: string[] = []
    let prevY = 0
    for (const [x, y] of s.points) {
      pts.push(`${tx(x).toFixed(1)},${ty(prevY).toFixed(1)}`, `${tx(x).toFixed(1)},${ty(y).toFixed(1)}`)
      prevY = y
    }
    o.push(
      `<polyline fill="none" stroke="${colorOf(s.label)}" stroke-width="1.6" points="${pts.join(' ')}"><title>${esc(s.label)}</title></polyline>`,
    )
  }
  return o.join('\n')
}

/** Panels side by side, one legend for all series (colour by label, stable across panels). */
export function renderSvg(title: string, panels: Panel[], subtitle = ''): string {
  const pw = 520
  const ph = 360
  const labels = [...new Set(panels.flatMap(p => p.series.map(s => s.label)))]
  const colorOf = (l: string): string => COLORS[Math.max(0, labels.indexOf(l)) % COLORS.length]!
  const legendH = 18 * Math.ceil(labels.length / 3) + 8
  const W = pw * Math.max(1, panels.length)
  const H = 44 + ph + legendH
  const o: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`,
    `<text x="${W / 2}" y="34" text-anchor="middle" font-size="10" fill="#555">${esc(subtitle)}</text>`,
  ]
  panels.forEach((p, i) => o.push(panelSvg(p, i * pw, 40, pw, ph, colorOf)))
  labels.forEach((l, i) => {
    const x = 20 + (i % 3) * (W / 3)
    const y = 40 + ph + 14 + Math.floor(i / 3) * 18
    o.push(`<line x1="${x}" x2="${x + 24}" y1="${y}" y2="${y}" stroke="${colorOf(l)}" stroke-width="3"/>`)
    o.push(`<text x="${x + 30}" y="${y}" dominant-baseline="middle">${esc(l)}</text>`)
  })
  o.push('</svg>', '')
  return o.join('\n')
}

export interface XyPanel {
  title: string
  xLabel: string
  yLabel: string
  xLog: boolean
  yLog: boolean
  /** points: [x, y]; drawn in x order, joined, each marked. */
  series: Series[]
  /** Vertical marker lines, e.g. the pair table's size. */
  markers?: Array<{ x: number; label: string }>
  yMin?: number
  yMax?: number
}

function axisMap(min: number, max: number, log: boolean, from: number, len: number): (v: number) => number {
  return (v: number): number => {
    const c = Math.min(Math.max(v, min), max)
    const f = log ? (Math.log10(c) - Math.log10(min)) / (Math.log10(max) - Math.log10(min)) : (c - min) / (max - min)
    return from + f * len
  }
}

/** Data range of one axis, widened so a log axis spans at least a decade and a flat line still shows. */
export function axisRange(values: number[], log: boolean, fixedMin?: number, fixedMax?: number): [number, number] {
  const vs = values.filter(v => Number.isFinite(v) && (!log || v > 0))
  let lo = fixedMin ?? (vs.length ? Math.min(...vs) : log ? 1 : 0)
  let hi = fixedMax ?? (vs.length ? Math.max(...vs) : 10)
  if (log) {
    lo = Math.max(lo, 1e-9)
    if (hi < lo * 10) {
      const mid = Math.sqrt(lo * hi)
      lo = fixedMin ?? mid / Math.sqrt(10)
      hi = fixedMax ?? mid * Math.sqrt(10)
    }
  } else {
    if (fixedMin === undefined && lo > 0) lo = 0
    if (!(hi > lo)) hi = lo + 1
  }
  return [lo, hi]
}

function xyPanelSvg(p: XyPanel, ox: number, oy: number, w: number, h: number, colorOf: (l: string) => string): string {
  const m = { l: 60, r: 12, t: 28, b: 44 }
  const pw = w - m.l - m.r
  const ph = h - m.t - m.b
  const pts = p.series.flatMap(s => s.points)
  const [xMin, xMax] = axisRange([...pts.map(q => q[0]), ...(p.markers ?? []).map(k => k.x)], p.xLog)
  const [yMin, yMax] = axisRange(
    pts.map(q => q[1]),
    p.yLog,
    p.yMin,
    p.yMax,
  )
  const tx = axisMap(xMin, xMax, p.xLog, ox + m.l, pw)
  const tyUp = axisMap(yMin, yMax, p.yLog, 0, ph)
  const ty = (v: number): number => oy + m.t + ph - tyUp(v)
  const o = panelFrame(p.title, { ox, oy, m, pw, ph }, ticks(xMin, xMax, p.xLog), tx, fmt)
  for (const v of ticks(yMin, yMax, p.yLog)) {
    const y = ty(v).toFixed(1)
    o.push(`<line x1="${ox + m.l}" x2="${ox + m.l + pw}" y1="${y}" y2="${y}" stroke="#eee"/>`)
    o.push(
      `<text x="${ox + m.l - 4}" y="${y}" text-anchor="end" dominant-baseline="middle" font-size="10">${fmt(v)}</text>`,
    )
  }
  o.push(`<text x="${ox + m.l + pw / 2}" y="${oy + h - 8}" text-anchor="middle" font-size="11">${esc(p.xLabel)}</text>`)
  o.push(
    `<text transform="translate(${ox + 14},${oy + m.t + ph / 2}) rotate(-90)" text-anchor="middle" font-size="11">${esc(p.yLabel)}</text>`,
  )
  for (const mk of p.markers ?? []) {
    const x = tx(mk.x).toFixed(1)
    o.push(`<line x1="${x}" x2="${x}" y1="${oy + m.t}" y2="${oy + m.t + ph}" stroke="#000" stroke-dasharray="4 3"/>`)
    o.push(`<text x="${Number(x) + 3}" y="${oy + m.t + 12}" font-size="10">${esc(mk.label)}</text>`)
  }
  for (const s of p.series) {
    const ok = s.points
      .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!p.xLog || x > 0) && (!p.yLog || y > 0))
      .sort((a, b) => a[0] - b[0])
    if (ok.length === 0) continue
    const c = colorOf(s.label)
    const xy = ok.map(([x, y]) => `${tx(x).toFixed(1)},${ty(y).toFixed(1)}`)
    o.push(
      `<polyline fill="none" stroke="${c}" stroke-width="1.6" points="${xy.join(' ')}"><title>${esc(s.label)}</title></polyline>`,
    )
    for (const q of xy) {
      const [x, y] = q.split(',')
      o.push(`<circle cx="${x}" cy="${y}" r="2.5" fill="${c}"/>`)
    }
  }
  return o.join('\n')
}

/** X-y panels in a grid of `columns`, one legend for all series (colour by label, stable across panels). */
export function renderXySvg(title: string, panels: XyPanel[], subtitle = '', columns = 2): string {
  const pw = 520
  const ph = 340
  const cols = Math.max(1, Math.min(columns, panels.length))
  const rows = Math.max(1, Math.ceil(panels.length / cols))
  const labels = [...new Set(panels.flatMap(p => p.series.map(s => s.label)))]
  const colorOf = (l: string): string => COLORS[Math.max(0, labels.indexOf(l)) % COLORS.length]!
  const legendH = 18 * Math.ceil(labels.length / 3) + 8
  const W = pw * cols
  const H = 44 + ph * rows + legendH
  const o: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`,
    `<text x="${W / 2}" y="34" text-anchor="middle" font-size="10" fill="#555">${esc(subtitle)}</text>`,
  ]
  panels.forEach((p, i) => o.push(xyPanelSvg(p, (i % cols) * pw, 40 + Math.floor(i / cols) * ph, pw, ph, colorOf)))
  labels.forEach((l, i) => {
    const x = 20 + (i % 3) * (W / 3)
    const y = 40 + ph * rows + 14 + Math.floor(i / 3) * 18
    o.push(`<line x1="${x}" x2="${x + 24}" y1="${y}" y2="${y}" stroke="${colorOf(l)}" stroke-width="3"/>`)
    o.push(`<text x="${x + 30}" y="${y}" dominant-baseline="middle">${esc(l)}</text>`)
  })
  o.push('</svg>', '')
  return o.join('\n')
}

/** A panel's title, frame and vertical grid lines with their x labels (both chart kinds draw these alike). */
function panelFrame(
  title: string,
  at: { ox: number; oy: number; m: { l: number; t: number }; pw: number; ph: number },
  xTicks: readonly number[],
  tx: (v: number) => number,
  fmt: (v: number) => string,
): string[] {
  const box = { x: at.ox + at.m.l, y: at.oy + at.m.t, w: at.pw, h: at.ph }
  const o: string[] = []
  o.push(
    `<text x="${box.x + box.w / 2}" y="${at.oy + 18}" text-anchor="middle" font-weight="bold">${esc(title)}</text>`,
  )
  o.push(`<rect x="${box.x}" y="${box.y}" width="${box.w}" height="${box.h}" fill="none" stroke="#444"/>`)
  for (const v of xTicks) {
    const x = tx(v).toFixed(1)
    o.push(`<line x1="${x}" x2="${x}" y1="${box.y}" y2="${box.y + box.h}" stroke="#ddd"/>`)
    o.push(`<text x="${x}" y="${box.y + box.h + 14}" text-anchor="middle" font-size="10">${fmt(v)}</text>`)
  }
  return o
}
