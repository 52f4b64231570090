/**
 * A small SVG writer for line and step charts: axes with round ticks, a grid,
 * a title and subtitle, a legend, dashed styles and labelled vertical
 * markers. No dependency; the output is a standalone SVG document.
 */
import type { Chart, ChartSeries } from './types.js';

/** Colour-blind-safe palette (Okabe–Ito), by series position. */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#999999'];

const WIDTH = 960;
const HEIGHT = 440;
const MARGIN = { top: 72, right: 24, bottom: 92, left: 64 };

/** About how many characters of 11.5 px text fit on one subtitle line. */
const SUBTITLE_CHARS = 140;

/** Splits `text` into at most `lines` lines of about `width` characters, at spaces; the last line takes the rest. */
export function wrap(text: string, width: number, lines: number): string[] {
  const out: string[] = [];
  let rest = text.trim();
  while (rest.length > 0) {
    if (out.length === lines - 1 || rest.length <= width) {
      out.push(rest);
      break;
    }
    let cut = rest.lastIndexOf(' ', width);
    if (cut <= 0) cut = width;
    out.push(rest.slice(0, cut));
    rest = rest.slice(cut).trim();
  }
  return out;
}

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A round step (1, 2, 2.5 or 5 × 10^k) giving about `count` intervals over `span`. */
export function niceStep(span: number, count: number): number {
  if (!(span > 0) || !Number.isFinite(span)) return 1;
  const raw = span / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const f = raw / power;
  const nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
  return nice * power;
}

/** Tick values covering [lo, hi] with a round step. */
export function ticks(lo: number, hi: number, count: number): number[] {
  const step = niceStep(hi - lo, count);
  const out: number[] = [];
  const first = Math.ceil(lo / step - 1e-9) * step;
  for (let v = first; v <= hi + step * 1e-9 && out.length < 100; v += step) out.push(Math.round(v / step) * step);
  return out;
}

function label(v: number): string {
  if (v === 0) return '0';
  const abs = Math.abs(v);
  if (abs >= 1e6) return `${+(v / 1e6).toFixed(2)}M`;
  if (abs >= 1e4) return `${+(v / 1e3).toFixed(1)}k`;
  return String(+v.toFixed(abs < 1 ? 3 : 2));
}

function dashArray(dash: ChartSeries['dash']): string {
  if (dash === 'dashed') return ' stroke-dasharray="8 5"';
  if (dash === 'dotted') return ' stroke-dasharray="2 4"';
  return '';
}

function extent(chart: Chart): { x0: number; x1: number; y0: number; y1: number } {
  let x0 = Infinity;
  let x1 = -Infinity;
  let y0 = Infinity;
  let y1 = -Infinity;
  for (const s of chart.series) {
    for (const [x, y] of s.points) {
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      x0 = Math.min(x0, x);
      x1 = Math.max(x1, x);
      y0 = Math.min(y0, y);
      y1 = Math.max(y1, y);
    }
  }
  for (const m of chart.markers ?? []) {
    x0 = Math.min(x0, m.x);
    x1 = Math.max(x1, m.x);
  }
  if (!Number.isFinite(x0)) [x0, x1] = [0, 1];
  if (!Number.isFinite(y0)) [y0, y1] = [0, 1];
  if (chart.yFromZero !== false) y0 = Math.min(0, y0);
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) y1 = y0 + 1;
  return { x0, x1, y0, y1: y1 + (y1 - y0) * 0.08 };
}

/** Renders a chart to a standalone SVG document. */
export function renderChart(chart: Chart): string {
  const { x0, x1, y0, y1: yTop } = extent(chart);
  const yTicks = ticks(y0, yTop, 6);
  const y1 = Math.max(yTop, yTicks[yTicks.length - 1] ?? yTop);
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const sx = (x: number): number => MARGIN.left + ((x - x0) / (x1 - x0)) * plotW;
  const sy = (y: number): number => MARGIN.top + plotH - ((y - y0) / (y1 - y0)) * plotH;
  const r = (v: number): string => v.toFixed(1);

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" font-size="12">`,
  );
  out.push(`<title>${esc(chart.title)}</title>`);
  out.push(`<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`);
  out.push(`<text x="${MARGIN.left}" y="24" font-size="16" font-weight="600" fill="#222">${esc(chart.title)}</text>`);
  wrap(chart.subtitle ?? '', SUBTITLE_CHARS, 2).forEach((line, i) => {
    out.push(`<text x="${MARGIN.left}" y="${42 + i * 14}" font-size="11.5" fill="#555">${esc(line)}</text>`);
  });

  // Grid and axes.
  out.push('<g stroke="#e5e5e5" stroke-width="1">');
  for (const t of yTicks) out.push(`<line x1="${r(sx(x0))}" y1="${r(sy(t))}" x2="${r(sx(x1))}" y2="${r(sy(t))}"/>`);
  const xTicks = ticks(x0, x1, 10);
  for (const t of xTicks) out.push(`<line x1="${r(sx(t))}" y1="${r(sy(y0))}" x2="${r(sx(t))}" y2="${r(sy(y1))}"/>`);
  out.push('</g>');
  out.push(
    `<g stroke="#333" stroke-width="1"><line x1="${r(sx(x0))}" y1="${r(sy(y0))}" x2="${r(sx(x1))}" y2="${r(sy(y0))}"/><line x1="${r(sx(x0))}" y1="${r(sy(y0))}" x2="${r(sx(x0))}" y2="${r(sy(y1))}"/></g>`,
  );
  out.push('<g fill="#333" font-size="11">');
  for (const t of yTicks) out.push(`<text x="${r(sx(x0) - 6)}" y="${r(sy(t) + 4)}" text-anchor="end">${esc(label(t))}</text>`);
  for (const t of xTicks) out.push(`<text x="${r(sx(t))}" y="${r(sy(y0) + 16)}" text-anchor="middle">${esc(label(t))}</text>`);
  out.push('</g>');
  out.push(`<text x="${r(MARGIN.left + plotW / 2)}" y="${r(sy(y0) + 36)}" text-anchor="middle" fill="#333">${esc(chart.xLabel)}</text>`);
  out.push(
    `<text transform="translate(16 ${r(MARGIN.top + plotH / 2)}) rotate(-90)" text-anchor="middle" fill="#333">${esc(chart.yLabel)}</text>`,
  );

  // Markers.
  for (const m of chart.markers ?? []) {
    const x = r(sx(m.x));
    out.push(`<line x1="${x}" y1="${r(sy(y0))}" x2="${x}" y2="${r(sy(y1))}" stroke="#888" stroke-width="1" stroke-dasharray="3 3"/>`);
    out.push(`<text x="${r(sx(m.x) + 3)}" y="${r(sy(y1) + 12)}" font-size="10" fill="#666">${esc(m.label)}</text>`);
  }

  // Series.
  out.push(`<clipPath id="plot"><rect x="${MARGIN.left}" y="${MARGIN.top - 2}" width="${plotW}" height="${plotH + 4}"/></clipPath>`);
  out.push('<g clip-path="url(#plot)" fill="none" stroke-linejoin="round">');
  const order = chart.series.map((s, i) => ({ s, i })).sort((a, b) => (a.s.layer ?? 0) - (b.s.layer ?? 0) || a.i - b.i);
  order.forEach(({ s, i }) => {
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (pts.length === 0) return;
    const color = s.color ?? PALETTE[i % PALETTE.length] ?? '#000';
    let d = '';
    pts.forEach(([x, y], k) => {
      if (k === 0) d += `M${r(sx(x))},${r(sy(y))}`;
      else if (s.step !== false) d += `H${r(sx(x))}V${r(sy(y))}`;
      else d += `L${r(sx(x))},${r(sy(y))}`;
    });
    out.push(`<path d="${d}" stroke="${color}" stroke-width="${s.width ?? 2}"${dashArray(s.dash)} opacity="0.9"/>`);
  });
  out.push('</g>');

  // Legend, below the x label, in rows.
  let lx = MARGIN.left;
  let ly = HEIGHT - 26;
  chart.series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length] ?? '#000';
    const width = 34 + s.name.length * 6.6;
    if (lx + width > WIDTH - MARGIN.right) {
      lx = MARGIN.left;
      ly += 16;
    }
    out.push(
      `<line x1="${r(lx)}" y1="${r(ly - 4)}" x2="${r(lx + 24)}" y2="${r(ly - 4)}" stroke="${color}" stroke-width="${Math.max(2, s.width ?? 2)}"${dashArray(s.dash)}/>`,
    );
    out.push(`<text x="${r(lx + 30)}" y="${r(ly)}" fill="#222">${esc(s.name)}</text>`);
    lx += width + 16;
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
