/**
 * The report's charts, drawn when the page is written: denied packets over
 * time stacked by what denied them (inline SVG), and the top talkers as
 * HTML bars, whose labels wrap instead of running off the page. Pure.
 */
import type { PairRow } from './analyze.js';
import type { DeniesByCause } from './denies.js';
import { esc } from './html-escape.js';
import { colourAt } from './palette.js';
import { labelWidth } from './ring-layout.js';
import { formatBytes, formatCount, formatShortCount, isoTime, protoName } from './units.js';

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

const FONT = 11;

/** Stacked bars of denied packets per bucket, one colour per cause, with a y axis and the time range. */
export function deniedChart(d: DeniesByCause): string {
  const W = 720;
  const H = 220;
  const bottom = 28;
  const top = 12;
  if (d.buckets.length === 0) {
    return `<svg class="chart" id="denied-over-time" role="img" aria-label="no denied packets" viewBox="0 0 ${W} 60" xmlns="http://www.w3.org/2000/svg"><text x="${W / 2}" y="35" text-anchor="middle" class="muted">no denied packets in range</text></svg>`;
  }
  const totals = d.buckets.map((_, i) => d.series.reduce((n, s) => n + s.packets[i]!, 0));
  const max = niceMax(Math.max(...totals));
  const ticks = [0, 0.5, 1].map((f) => formatShortCount(max * f));
  // Room for the widest tick label, so it is never cut at the left edge.
  const left = Math.ceil(Math.max(...ticks.map((t) => labelWidth(t, FONT))) + 12);
  const plotW = W - left - 10;
  const plotH = H - top - bottom;
  const bw = plotW / d.buckets.length;
  const bars: string[] = [];
  d.buckets.forEach((t, i) => {
    let y = top + plotH;
    const x = (left + i * bw + bw * 0.1).toFixed(1);
    const w = Math.max(1, bw * 0.8).toFixed(1);
    d.series.forEach((s, k) => {
      const packets = s.packets[i]!;
      if (packets === 0) return;
      const h = (packets / max) * plotH;
      y -= h;
      bars.push(
        `<rect class="deny" x="${x}" y="${y.toFixed(1)}" width="${w}" height="${h.toFixed(1)}" fill="${colourAt(k)}" data-t="${t}" data-series="${esc(s.key)}" data-packets="${packets}"><title>${esc(isoTime(t))} ${esc(s.key)}: ${formatCount(packets)} denied packets</title></rect>`,
      );
    });
  });
  const grid = [0, 0.5, 1]
    .map((f, i) => {
      const y = top + plotH - f * plotH;
      return `<line class="grid" x1="${left}" x2="${W - 10}" y1="${y}" y2="${y}"/><text x="${left - 6}" y="${y + 4}" text-anchor="end">${ticks[i]}</text>`;
    })
    .join('');
  const first = d.buckets[0]!;
  const last = d.buckets.at(-1)! + d.bucketSeconds;
  return `<svg class="chart" id="denied-over-time" role="img" aria-label="denied packets over time by ${d.split === 'policy' ? 'policy' : 'cause'}" viewBox="0 0 ${W} ${H}" xmlns="http://www.w3.org/2000/svg">${grid}${bars.join('')}<text x="${left}" y="${H - 8}">${esc(isoTime(first))}</text><text x="${W - 10}" y="${H - 8}" text-anchor="end">${esc(isoTime(last))}</text></svg>`;
}

/** The causes' colours and totals, as an HTML list (long policy names wrap). */
export function deniedLegend(d: DeniesByCause): string {
  if (d.series.length === 0) return '';
  return `<ul class="legend" id="denied-legend">${d.series
    .map(
      (s, k) =>
        `<li><span class="swatch" style="background:${colourAt(k)}"></span>${esc(s.key)} <span class="muted">${formatCount(s.total)} packets</span></li>`,
    )
    .join('')}</ul>`;
}

/** What the chart's series are, in a sentence, saying so when records carry no policy names. */
export function deniedSplitNote(d: DeniesByCause): string {
  switch (d.split) {
    case 'policy':
      return 'By the policies that denied them (the records’ policies field).';
    case 'namespace':
      return 'By namespace of the side that denied them (the destination’s for ingress, the source’s for egress): these are 24-field records, which name no policy. Set <code>flowLogs.includePolicies: true</code> for the 27-field records and a split by policy.';
    case 'mixed':
      return 'By policy where the record names one (27-field records), else by namespace of the side that denied them (24-field records name no policy).';
    default:
      return '';
  }
}

/** `203.0.113.9:443/TCP` style: port then protocol name; no port for ICMP and friends. */
export function portProto(port: string | number, proto: number): string {
  return `${port === '-' ? '' : `${port}/`}${protoName(proto)}`;
}

/** Horizontal bars of bytes per source → destination pair (HTML: labels wrap, never clip). */
export function talkersChart(rows: readonly PairRow[]): string {
  if (rows.length === 0) return '<p class="muted" id="top-talkers">no allowed traffic in range</p>';
  const max = Math.max(...rows.map((r) => r.bytes), 1);
  const bars = rows
    .map((r) => {
      const name = `${r.src} → ${r.dst} ${portProto(r.dstPort, r.proto)}`;
      const pct = Math.max(0.5, (100 * r.bytes) / max).toFixed(1);
      return `<div class="bar-row"><span class="bar-label">${esc(name)}</span><span class="bar-track"><span class="bar allow" style="width:${pct}%" data-bytes="${r.bytes}" title="${formatCount(r.bytes)} bytes"></span></span><span class="bar-value" title="${formatCount(r.bytes)} bytes">${formatBytes(r.bytes)}</span></div>`;
    })
    .join('\n');
  return `<div class="bars" id="top-talkers" role="list" aria-label="top talkers by bytes">\n${bars}\n</div>`;
}
