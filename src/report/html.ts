/**
 * The report as one self-contained HTML page: inline CSS, inline SVG charts
 * (denied packets over time, top talkers by bytes), no scripts, no external
 * resources. Pure: data in, string out.
 */
import { namesPolicies, type PairRow, type TimePoint, type Totals } from './analyze.js';

export interface HtmlReport {
  readonly title: string;
  /** What the records were read from (files or log group) and the range. */
  readonly source: string;
  readonly generatedAt: Date;
  readonly totals: Totals;
  readonly badLines: number;
  readonly answers: readonly (readonly [string, readonly PairRow[]])[];
  readonly deniedSeries: readonly TimePoint[];
  readonly bucketSeconds: number;
  readonly topTalkers: readonly PairRow[];
}

const ESC: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};
export function esc(v: unknown): string {
  return String(v).replace(/[&<>"']/g, (c) => ESC[c]!);
}

const fmt = (n: number) => n.toLocaleString('en-US');
const iso = (t: number) => new Date(t * 1000).toISOString().replace('.000Z', 'Z');

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** Bars of denied packets per bucket, with a y axis and first/last time labels. */
export function deniedChart(series: readonly TimePoint[], bucketSeconds: number): string {
  const W = 720;
  const H = 220;
  const left = 56;
  const bottom = 28;
  const top = 12;
  const plotW = W - left - 10;
  const plotH = H - top - bottom;
  if (series.length === 0) {
    return `<svg class="chart" id="denied-over-time" role="img" aria-label="no denied packets" viewBox="0 0 ${W} 60" xmlns="http://www.w3.org/2000/svg"><text x="${W / 2}" y="35" text-anchor="middle" class="muted">no denied packets in range</text></svg>`;
  }
  const max = niceMax(Math.max(...series.map((p) => p.packets)));
  const bw = plotW / series.length;
  const bars = series
    .map((p, i) => {
      const h = (p.packets / max) * plotH;
      const x = left + i * bw;
      return `<rect class="deny" x="${(x + bw * 0.1).toFixed(1)}" y="${(top + plotH - h).toFixed(1)}" width="${Math.max(1, bw * 0.8).toFixed(1)}" height="${h.toFixed(1)}" data-t="${p.t}" data-packets="${p.packets}"><title>${esc(iso(p.t))}: ${fmt(p.packets)} denied packets</title></rect>`;
    })
    .join('');
  const ticks = [0, 0.5, 1]
    .map((f) => {
      const y = top + plotH - f * plotH;
      return `<line class="grid" x1="${left}" x2="${W - 10}" y1="${y}" y2="${y}"/><text x="${left - 6}" y="${y + 4}" text-anchor="end">${fmt(max * f)}</text>`;
    })
    .join('');
  const first = series[0]!.t;
  const last = series.at(-1)!.t + bucketSeconds;
  return `<svg class="chart" id="denied-over-time" role="img" aria-label="denied packets over time" viewBox="0 0 ${W} ${H}" xmlns="http://www.w3.org/2000/svg">${ticks}${bars}<text x="${left}" y="${H - 8}">${esc(iso(first))}</text><text x="${W - 10}" y="${H - 8}" text-anchor="end">${esc(iso(last))}</text></svg>`;
}

/** Horizontal bars: bytes per source → destination pair. */
export function talkersChart(rows: readonly PairRow[]): string {
  const W = 720;
  const rowH = 26;
  const label = 300;
  if (rows.length === 0) {
    return `<svg class="chart" id="top-talkers" role="img" aria-label="no allowed traffic" viewBox="0 0 ${W} 60" xmlns="http://www.w3.org/2000/svg"><text x="${W / 2}" y="35" text-anchor="middle" class="muted">no allowed traffic in range</text></svg>`;
  }
  const max = Math.max(...rows.map((r) => r.bytes), 1);
  const H = rows.length * rowH + 8;
  const bars = rows
    .map((r, i) => {
      const y = 4 + i * rowH;
      const w = ((W - label - 110) * r.bytes) / max;
      const name = `${r.src} → ${r.dst}:${r.dstPort}`;
      return `<text x="${label - 8}" y="${y + 17}" text-anchor="end">${esc(name.length > 46 ? `${name.slice(0, 45)}…` : name)}</text><rect class="allow" x="${label}" y="${y + 4}" width="${Math.max(1, w).toFixed(1)}" height="${rowH - 8}" data-bytes="${r.bytes}"><title>${esc(name)}: ${fmt(r.bytes)} bytes</title></rect><text x="${(label + Math.max(1, w) + 6).toFixed(1)}" y="${y + 17}">${fmt(r.bytes)} B</text>`;
    })
    .join('');
  return `<svg class="chart" id="top-talkers" role="img" aria-label="top talkers by bytes" viewBox="0 0 ${W} ${H}" xmlns="http://www.w3.org/2000/svg">${bars}</svg>`;
}

function table(rows: readonly PairRow[]): string {
  if (rows.length === 0) return '<p class="muted">none</p>';
  const withPolicies = namesPolicies(rows);
  const head = ['source', 'destination', 'port', 'proto', 'flows', 'packets', 'bytes'];
  if (withPolicies) head.push('policies');
  const body = rows
    .map(
      (r) =>
        `<tr><td>${esc(r.src)}</td><td>${esc(r.dst)}</td><td class="n">${esc(r.dstPort)}</td><td class="n">${r.proto}</td><td class="n">${fmt(r.flows)}</td><td class="n">${fmt(r.packets)}</td><td class="n">${fmt(r.bytes)}</td>${withPolicies ? `<td>${esc(r.policies.join(' '))}</td>` : ''}</tr>`,
    )
    .join('\n');
  return `<table><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:980px;color:#1b1f24;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.1rem;margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.3rem}
.muted{color:#656d76;fill:#656d76}.summary{display:flex;gap:1.5rem;flex-wrap:wrap;margin:1rem 0}
.summary div{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:.5rem .9rem}.summary b{display:block;font-size:1.2rem}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{border-bottom:1px solid #eaeef2;padding:4px 8px;text-align:left}
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}
svg.chart{width:100%;height:auto;font-size:11px}svg text{fill:#1b1f24}rect.deny{fill:#cf222e}rect.allow{fill:#0969da}line.grid{stroke:#eaeef2}
`;

export function renderHtml(r: HtmlReport): string {
  const t = r.totals;
  const range =
    t.firstTime !== undefined && t.lastTime !== undefined
      ? `${iso(t.firstTime)} – ${iso(t.lastTime)}`
      : 'no records';
  const sections = r.answers.map(([q, rows]) => `<h2>${esc(q)}</h2>\n${table(rows)}`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(r.title)}</title>
<style>${CSS}</style></head>
<body>
<h1>${esc(r.title)}</h1>
<p class="muted">${esc(r.source)} · records ${esc(range)} · generated ${esc(r.generatedAt.toISOString())}</p>
<div class="summary">
<div><b>${fmt(t.records)}</b>records</div>
<div><b>${fmt(t.allowRecords)}</b>allow</div>
<div><b>${fmt(t.denyRecords)}</b>deny</div>
<div><b>${fmt(t.deniedPackets)}</b>denied packets</div>
${r.badLines > 0 ? `<div><b>${fmt(r.badLines)}</b>lines skipped (not records)</div>` : ''}
</div>
<h2>Denied packets over time (per ${r.bucketSeconds >= 3600 ? `${r.bucketSeconds / 3600} h` : `${r.bucketSeconds / 60} min`})</h2>
${deniedChart(r.deniedSeries, r.bucketSeconds)}
<h2>Top talkers by bytes</h2>
${talkersChart(r.topTalkers)}
${sections}
</body></html>
`;
}
