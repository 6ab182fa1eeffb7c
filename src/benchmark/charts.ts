/**
 * The report's charts as standalone SVG text (pure).
 *
 * Hand-written rather than drawn with an npm charting library: the usable
 * server-side options (vega + vega-lite, chart.js + a canvas backend) pull in
 * megabytes and, for chart.js, a native canvas build, to draw three simple
 * charts; ~200 lines here give deterministic, diff-friendly SVG with no
 * dependency, which suits a file regenerated on every run.
 *
 * @example
 * writeFileSync('latency.svg', latencyChart(rows, 'pg'));
 */
import { cdf } from './stats.js';

const FONT = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif"';
const COLORS = ['#2563eb', '#93c5fd', '#f97316', '#16a34a', '#a855f7', '#dc2626', '#0891b2', '#ca8a04'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function svg(width: number, height: number, body: string[], title: string): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(title)}">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="600" ${FONT}>${esc(title)}</text>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

function legend(items: Array<[string, string]>, x: number, y: number): string[] {
  let cx = x;
  const out: string[] = [];
  for (const [label, color] of items) {
    out.push(
      `<rect x="${cx}" y="${y - 9}" width="12" height="12" fill="${color}"/>`,
      `<text x="${cx + 16}" y="${y + 1}" font-size="12" ${FONT}>${esc(label)}</text>`,
    );
    cx += 28 + label.length * 6.6;
  }
  return out;
}

const fmtMs = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

export interface LatencyRow {
  label: string;
  p50: number;
  p95: number;
  reference?: number;
}

/**
 * Horizontal bars per scenario: our P50 and P95 beside the reference's P50,
 * on a log scale (ours are milliseconds, the reference's hundreds of them).
 */
export function latencyChart(rows: LatencyRow[], title: string): string {
  const left = 190;
  const right = 70;
  const width = 900;
  const rowH = 46;
  const top = 56;
  const height = top + rows.length * rowH + 50;
  const all = rows.flatMap((r) => [r.p50, r.p95, r.reference ?? r.p95]).filter((v) => v > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.min(...all, 1)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...all, 10)));
  const plotW = width - left - right;
  const x = (v: number) => left + ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotW;
  const body: string[] = [];
  for (let d = lo; d <= hi; d *= 10) {
    body.push(
      `<line x1="${x(d)}" y1="${top - 6}" x2="${x(d)}" y2="${height - 44}" stroke="#e5e7eb"/>`,
      `<text x="${x(d)}" y="${height - 30}" text-anchor="middle" font-size="11" ${FONT}>${d} ms</text>`,
    );
  }
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    body.push(`<text x="${left - 8}" y="${y + 20}" text-anchor="end" font-size="12" ${FONT}>${esc(r.label)}</text>`);
    const bars: Array<[number | undefined, string, string]> = [
      [r.p50, COLORS[0]!, 'P50'],
      [r.p95, COLORS[1]!, 'P95'],
      [r.reference, COLORS[2]!, 'ref'],
    ];
    bars.forEach(([v, color], k) => {
      if (v === undefined || !(v > 0)) return;
      const by = y + 2 + k * 13;
      body.push(
        `<rect x="${left}" y="${by}" width="${Math.max(1, x(v) - left).toFixed(1)}" height="11" fill="${color}"/>`,
        `<text x="${(x(v) + 4).toFixed(1)}" y="${by + 10}" font-size="10" ${FONT}>${fmtMs(v)}</text>`,
      );
    });
  });
  body.push(
    ...legend(
      [
        ['weft P50', COLORS[0]!],
        ['weft P95', COLORS[1]!],
        ['reference P50 (seed)', COLORS[2]!],
      ],
      left,
      height - 10,
    ),
  );
  return svg(width, height, body, title);
}

export interface OverheadRow {
  label: string;
  ours_pct: number;
  ours_ms: number;
  reference_pct: number;
}

/** FFI overhead per language vs native, ours beside the reference's +23 %. */
export function overheadChart(rows: OverheadRow[], title: string): string {
  const width = 720;
  const left = 130;
  const right = 90;
  const top = 56;
  const rowH = 40;
  const height = top + rows.length * rowH + 50;
  const vals = rows.flatMap((r) => [r.ours_pct, r.reference_pct]);
  const lo = Math.min(0, ...vals);
  const hi = Math.max(5, ...vals) * 1.1;
  const plotW = width - left - right;
  const x = (v: number) => left + ((v - lo) / (hi - lo)) * plotW;
  const body: string[] = [`<line x1="${x(0)}" y1="${top - 6}" x2="${x(0)}" y2="${height - 44}" stroke="#6b7280"/>`];
  for (const tick of [0, 5, 10, 15, 20, 25, 30].filter((t) => t >= lo && t <= hi)) {
    body.push(`<text x="${x(tick)}" y="${height - 30}" text-anchor="middle" font-size="11" ${FONT}>${tick} %</text>`);
  }
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    body.push(`<text x="${left - 8}" y="${y + 16}" text-anchor="end" font-size="12" ${FONT}>${esc(r.label)}</text>`);
    const draw = (v: number, k: number, color: string, text: string) => {
      const x0 = Math.min(x(0), x(v));
      const w = Math.max(1, Math.abs(x(v) - x(0)));
      body.push(
        `<rect x="${x0.toFixed(1)}" y="${y + k * 15}" width="${w.toFixed(1)}" height="13" fill="${color}"/>`,
        `<text x="${(Math.max(x(0), x(v)) + 4).toFixed(1)}" y="${y + k * 15 + 11}" font-size="10" ${FONT}>${esc(text)}</text>`,
      );
    };
    draw(r.ours_pct, 0, COLORS[0]!, `${r.ours_pct >= 0 ? '+' : ''}${r.ours_pct.toFixed(1)} % (${r.ours_ms >= 0 ? '+' : ''}${r.ours_ms.toFixed(2)} ms)`);
    draw(r.reference_pct, 1, COLORS[2]!, `+${r.reference_pct} %`);
  });
  body.push(
    ...legend(
      [
        ['weft (linear P50 vs native)', COLORS[0]!],
        ['reference (seed)', COLORS[2]!],
      ],
      left,
      height - 10,
    ),
  );
  return svg(width, height, body, title);
}

export interface DistributionSeries {
  label: string;
  samples: number[];
}

/** Cumulative distribution of client latencies, one line per scenario. */
export function distributionChart(series: DistributionSeries[], title: string): string {
  const width = 820;
  const height = 420;
  const left = 60;
  const right = 20;
  const top = 40;
  const bottom = 80;
  const all = series.flatMap((s) => s.samples);
  const maxX = Math.max(1, ...all) * 1.05;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const x = (v: number) => left + (v / maxX) * plotW;
  const y = (f: number) => top + (1 - f) * plotH;
  const body: string[] = [];
  for (const f of [0, 0.25, 0.5, 0.75, 0.95, 1]) {
    body.push(
      `<line x1="${left}" y1="${y(f)}" x2="${width - right}" y2="${y(f)}" stroke="${f === 0.5 || f === 0.95 ? '#d1d5db' : '#f3f4f6'}"/>`,
      `<text x="${left - 6}" y="${y(f) + 4}" text-anchor="end" font-size="11" ${FONT}>${f === 0.5 ? 'P50' : f === 0.95 ? 'P95' : f.toFixed(2)}</text>`,
    );
  }
  const step = niceStep(maxX / 8);
  for (let v = 0; v <= maxX; v += step)
    body.push(`<text x="${x(v)}" y="${height - bottom + 16}" text-anchor="middle" font-size="11" ${FONT}>${fmtMs(v)}</text>`);
  body.push(
    `<text x="${left + plotW / 2}" y="${height - bottom + 34}" text-anchor="middle" font-size="12" ${FONT}>client latency, ms (create → observed completion)</text>`,
  );
  series.forEach((s, i) => {
    if (!s.samples.length) return;
    const pts = cdf(s.samples);
    let d = `M${x(pts[0]!.x).toFixed(1)},${y(0).toFixed(1)}`;
    let prevF = 0;
    for (const p of pts) {
      d += ` L${x(p.x).toFixed(1)},${y(prevF).toFixed(1)} L${x(p.x).toFixed(1)},${y(p.f).toFixed(1)}`;
      prevF = p.f;
    }
    body.push(`<path d="${d}" fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.8"/>`);
  });
  body.push(
    ...legend(
      series.map((s, i) => [`${s.label} (n=${s.samples.length})`, COLORS[i % COLORS.length]!] as [string, string]),
      left,
      height - 12,
    ),
  );
  return svg(width, height, body, title);
}

function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}
