/**
 * A small line chart as inline SVG text, for `meshgrad report`'s self-contained page.
 *
 * Written by hand rather than taken from a charting library: the page must open with no network
 * and no scripts (a file mailed around or kept beside a checkpoint), so a browser-side library
 * (Chart.js, Plotly, Vega) would have to be inlined whole — hundreds of KiB of JavaScript for a
 * few polylines — and server-side renderers pull in a DOM implementation. What is needed here is
 * linear axes with round tick values, one path per series (broken where a value is missing), a
 * dot per point (a one-epoch run still shows something) and a legend: about a hundred lines.
 */

export interface Series {
  /** Shown in the legend; also the path's `data-split`. */
  readonly name: string;
  readonly color: string;
  /** [x, y] pairs; a null y leaves a gap. */
  readonly points: readonly (readonly [number, number | null])[];
}

export interface ChartOptions {
  readonly title: string;
  /** The path's `data-metric` (e.g. "loss"). */
  readonly metric: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  /** Tick labels of the y axis. */
  readonly formatY?: (v: number) => string;
  readonly width?: number;
  readonly height?: number;
}

/** Text for an SVG or HTML text node or attribute value. */
export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** Round tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten, about `count` of them. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

const fmt = (v: number): string => (Math.round(v * 100) / 100).toString();

export function lineChart(o: ChartOptions): string {
  const width = o.width ?? 560;
  const height = o.height ?? 320;
  const m = { left: 64, right: 16, top: 36, bottom: 48 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const xs = o.series.flatMap((s) => s.points.map(([x]) => x));
  const ys = o.series.flatMap((s) => s.points.map(([, y]) => y)).filter((y): y is number => y !== null && Number.isFinite(y));
  let [x0, x1] = xs.length ? [Math.min(...xs), Math.max(...xs)] : [0, 1];
  if (x1 === x0) [x0, x1] = [x0 - 0.5, x1 + 0.5];
  let [y0, y1] = ys.length ? [Math.min(...ys), Math.max(...ys)] : [0, 1];
  const pad = y1 > y0 ? (y1 - y0) * 0.08 : Math.max(Math.abs(y0) * 0.1, 0.05);
  [y0, y1] = [y0 - pad, y1 + pad];
  const px = (x: number): number => m.left + ((x - x0) / (x1 - x0)) * plotW;
  const py = (y: number): number => m.top + plotH - ((y - y0) / (y1 - y0)) * plotH;
  const formatY = o.formatY ?? ((v: number) => String(Number(v.toPrecision(4))));
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-metric="${escapeXml(o.metric)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeXml(o.title)}">`);
  parts.push(`<title>${escapeXml(o.title)}</title>`);
  parts.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#fff"/>`);
  parts.push(`<text x="${m.left}" y="20" font-size="15" font-weight="bold">${escapeXml(o.title)}</text>`);
  // Grid and tick labels.
  for (const t of niceTicks(y0, y1)) {
    const y = fmt(py(t));
    parts.push(`<line x1="${m.left}" x2="${m.left + plotW}" y1="${y}" y2="${y}" stroke="#e3e3e3"/>`);
    parts.push(`<text x="${m.left - 6}" y="${y}" font-size="11" text-anchor="end" dominant-baseline="middle">${escapeXml(formatY(t))}</text>`);
  }
  const xTicks = niceTicks(x0, x1, Math.min(8, Math.max(1, Math.round(x1 - x0)))).filter((t) => Number.isInteger(t));
  for (const t of xTicks) {
    const x = fmt(px(t));
    parts.push(`<line x1="${x}" x2="${x}" y1="${m.top}" y2="${m.top + plotH}" stroke="#f0f0f0"/>`);
    parts.push(`<text x="${x}" y="${m.top + plotH + 16}" font-size="11" text-anchor="middle">${t}</text>`);
  }
  parts.push(`<rect x="${m.left}" y="${m.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`);
  parts.push(`<text x="${m.left + plotW / 2}" y="${height - 10}" font-size="12" text-anchor="middle">${escapeXml(o.xLabel)}</text>`);
  parts.push(`<text x="14" y="${m.top + plotH / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 14 ${m.top + plotH / 2})">${escapeXml(o.yLabel)}</text>`);
  // One path per series, broken at missing values, and a dot per point.
  o.series.forEach((s, i) => {
    let d = '';
    let pen = false;
    const dots: string[] = [];
    for (const [x, y] of s.points) {
      if (y === null || !Number.isFinite(y)) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${fmt(px(x))} ${fmt(py(y))} `;
      pen = true;
      dots.push(`<circle cx="${fmt(px(x))}" cy="${fmt(py(y))}" r="3" fill="${s.color}"/>`);
    }
    parts.push(`<path class="curve" data-metric="${escapeXml(o.metric)}" data-split="${escapeXml(s.name)}" d="${d.trim()}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    parts.push(...dots);
    // The legend, right of the title.
    const lx = width - m.right - (o.series.length - i) * 72;
    parts.push(`<line x1="${lx}" x2="${lx + 18}" y1="16" y2="16" stroke="${s.color}" stroke-width="3"/>`);
    parts.push(`<text x="${lx + 22}" y="16" font-size="12" dominant-baseline="middle">${escapeXml(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
