/**
 * The report as one self-contained HTML page: a workload map, the
 * namespace × namespace matrix, denied packets over time by policy, the
 * what-if diff when given one, top talkers and the audit answers. Inline
 * CSS, inline SVG drawn here, one small inline script (page-script.ts) for
 * the switches; no external resource of any kind, so the page works
 * offline and from a mail attachment. Pure: data in, string out.
 */
import type { FlowRecord } from '../format/record.js';
import { namesPolicies, type PairRow, type Totals } from './analyze.js';
import { deniedChart, deniedLegend, deniedSplitNote, portProto, talkersChart } from './charts.js';
import { deniesByCause } from './denies.js';
import type { WhatIfDiff, WhatIfFlow } from './diff.js';
import { buildGraph, namespaceMatrix } from './graph.js';
import { esc } from './html-escape.js';
import { mapLegend, mapSvg, matrixTable } from './map-svg.js';
import { PAGE_SCRIPT } from './page-script.js';
import { formatBytes, formatCount, isoTime, protoName, protoNumber } from './units.js';

export { esc } from './html-escape.js';

export interface HtmlReport {
  readonly title: string;
  /** What the records were read from (files or log group) and the range. */
  readonly source: string;
  readonly generatedAt: Date;
  readonly totals: Totals;
  readonly badLines: number;
  readonly answers: readonly (readonly [string, readonly PairRow[]])[];
  /** Bucket of the denies-over-time chart, seconds. */
  readonly bucketSeconds: number;
  readonly topTalkers: readonly PairRow[];
  /** The records the answers came from: the map, the matrix and the denies chart are drawn from them. */
  readonly records: readonly FlowRecord[];
  /** A what-if diff (`--diff FILE`) to show and mark on the map. */
  readonly diff?: WhatIfDiff | undefined;
}

function table(rows: readonly PairRow[]): string {
  if (rows.length === 0) return '<p class="muted">none</p>';
  const withPolicies = namesPolicies(rows);
  const head = ['source', 'destination', 'port', 'proto', 'flows', 'packets', 'bytes'];
  if (withPolicies) head.push('policies');
  const body = rows
    .map(
      (r) =>
        `<tr><td>${esc(r.src)}</td><td>${esc(r.dst)}</td><td class="n">${esc(r.dstPort)}</td><td>${esc(protoName(r.proto))}</td><td class="n">${formatCount(r.flows)}</td><td class="n">${formatCount(r.packets)}</td><td class="n" title="${formatCount(r.bytes)} bytes">${formatBytes(r.bytes)}</td>${withPolicies ? `<td>${esc(r.policies.join(' '))}</td>` : ''}</tr>`,
    )
    .join('\n');
  return `<table><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

const who = (ns: string, w: string) => (ns === '-' ? w : `${ns}/${w}`);

function diffRows(id: string, flows: readonly WhatIfFlow[]): string {
  if (flows.length === 0) return `<p class="muted" id="${id}">none</p>`;
  const body = flows
    .map((f) => {
      const proto = typeof f.proto === 'number' ? f.proto : protoNumber(f.proto)!;
      return `<tr><td>${esc(who(f.srcNamespace, f.srcWorkload))}</td><td>${esc(who(f.dstNamespace, f.dstWorkload))}</td><td>${esc(portProto(f.port ?? '-', proto))}</td><td class="n">${formatCount(f.count)}</td><td>${esc(f.policy ?? '')}</td></tr>`;
    })
    .join('\n');
  return `<table id="${id}"><thead><tr><th>source</th><th>destination</th><th>port</th><th>flows</th><th>policy</th></tr></thead><tbody>\n${body}\n</tbody></table>`;
}

function diffSection(d: WhatIfDiff): string {
  const sum = (fs: readonly WhatIfFlow[]) => fs.reduce((n, f) => n + f.count, 0);
  return `<h2 id="what-if">What-if${d.title ? `: ${esc(d.title)}` : ''}</h2>
<p>${formatCount(sum(d.newlyDenied))} recorded flows would be <b class="deny-text">newly denied</b> (${d.newlyDenied.length} groups), ${formatCount(sum(d.newlyAllowed))} <b class="allow-text">newly allowed</b> (${d.newlyAllowed.length} groups). On the map, “mark what-if” outlines the edges they change.</p>
<h3>Newly denied</h3>
${diffRows('what-if-denied', d.newlyDenied)}
<h3>Newly allowed</h3>
${diffRows('what-if-allowed', d.newlyAllowed)}`;
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1200px;color:#1b1f24;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.1rem;margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.3rem}h3{font-size:1rem}
nav a{margin-right:1rem}code{background:#f6f8fa;padding:0 .25em;border-radius:3px}
.muted{color:#656d76;fill:#656d76}.summary{display:flex;gap:1.5rem;flex-wrap:wrap;margin:1rem 0}
.summary div{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:.5rem .9rem}.summary b{display:block;font-size:1.2rem}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{border-bottom:1px solid #eaeef2;padding:4px 8px;text-align:left;overflow-wrap:anywhere}
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums;overflow-wrap:normal}
svg.chart{width:100%;height:auto;font-size:11px;display:block}svg text{fill:#1b1f24}line.grid{stroke:#eaeef2}
.deny-text{color:#cf222e}.allow-text{color:#0969da}
.controls{display:flex;gap:1.5rem;flex-wrap:wrap;align-items:center;margin:.5rem 0}.controls fieldset{border:1px solid #d0d7de;border-radius:6px;padding:.2rem .7rem}
.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.3rem 1.2rem;font-size:13px}
.swatch{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:.35em;vertical-align:-.05em}
.line{display:inline-block;width:1.6em;border-top:3px solid #6e7781;margin-right:.35em;vertical-align:.25em}.line.deny{border-top:3px dashed #cf222e}
svg.map{margin:0 auto}
.e{fill:none;stroke:#6e7781;opacity:.55}.e.deny{stroke:#cf222e;stroke-dasharray:5 3;opacity:.75}
.w-bytes .e{stroke-width:var(--wb)}.w-flows .e{stroke-width:var(--wf)}
.arrow.allow path{fill:#6e7781}.arrow.deny path{fill:#cf222e}
.hide-allow .e.allow,.hide-deny .e.deny{display:none}
.show-whatif .e.wi{opacity:1;stroke-dasharray:none;filter:drop-shadow(0 0 2px #fff)}.show-whatif .e.wi-deny{stroke:#bf3989}.show-whatif .e.wi-allow{stroke:#1a7f37}
.map .band{stroke:#fff;stroke-width:.5}.group-label{font-weight:600;paint-order:stroke;stroke:#fff;stroke-width:3px}
.node{cursor:default;outline:none}.node text{paint-order:stroke;stroke:#fff;stroke-width:2px}
.map.focus .e:not(.hl){opacity:.07}.map.focus .node:not(.hl){opacity:.35}.map .e.hl{opacity:1}.map .node.hl text{font-weight:700}
.scroll{overflow-x:auto}
table.matrix{width:auto;font-variant-numeric:tabular-nums;font-size:12px}table.matrix td{min-width:3.8rem;text-align:right;border:1px solid #eaeef2;white-space:nowrap;overflow-wrap:normal}
table.matrix thead th{vertical-align:bottom}table.matrix thead th span{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap}
table.matrix tbody th{white-space:nowrap;position:sticky;left:0;z-index:1}
table.matrix th.corner{font-weight:400;color:#656d76;white-space:nowrap}
td.cell{background:rgb(9 105 218 / var(--ab))}.w-flows td.cell{background:rgb(9 105 218 / var(--af))}
td.cell b{display:block;color:#cf222e;font-weight:600}td.has-deny{box-shadow:inset 3px 0 #cf222e}
.w-flows .by-bytes,.w-bytes .by-flows{display:none}
.bars{display:grid;grid-template-columns:minmax(10rem,40%) 1fr auto;gap:.35rem .6rem;align-items:center;font-size:13px}
.bar-row{display:contents}.bar-label{overflow-wrap:anywhere;text-align:right}.bar-track{background:#f6f8fa;height:1.1rem;border-radius:3px}
.bar{display:block;height:100%;background:#0969da;border-radius:3px}.bar-value{font-variant-numeric:tabular-nums;white-space:nowrap}
`;

export function renderHtml(r: HtmlReport): string {
  const t = r.totals;
  const range =
    t.firstTime !== undefined && t.lastTime !== undefined
      ? `${isoTime(t.firstTime)} – ${isoTime(t.lastTime)}`
      : 'no records';
  const graph = buildGraph(r.records);
  const denies = deniesByCause(r.records, r.bucketSeconds);
  const sections = r.answers.map(([q, rows]) => `<h2>${esc(q)}</h2>\n${table(rows)}`).join('\n');
  const per =
    r.bucketSeconds >= 3600 ? `${r.bucketSeconds / 3600} h` : `${r.bucketSeconds / 60} min`;
  const wepCount = [...graph.nodes.values()].filter((n) => n.type === 'wep').length;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(r.title)}</title>
<style>${CSS}</style></head>
<body class="w-bytes">
<h1>${esc(r.title)}</h1>
<p class="muted">${esc(r.source)} · records ${esc(range)} · generated ${esc(r.generatedAt.toISOString())}</p>
<div class="summary">
<div><b>${formatCount(t.records)}</b>records</div>
<div><b>${formatCount(t.allowRecords)}</b>allow</div>
<div><b>${formatCount(t.denyRecords)}</b>deny</div>
<div><b>${formatCount(t.deniedPackets)}</b>denied packets</div>
<div><b>${formatCount(wepCount)}</b>workloads</div>
${r.badLines > 0 ? `<div><b>${formatCount(r.badLines)}</b>lines skipped (not records)</div>` : ''}
</div>
<nav><a href="#map">Map</a><a href="#matrix">Namespace matrix</a><a href="#denies">Denies over time</a>${r.diff ? '<a href="#what-if">What-if</a>' : ''}<a href="#talkers">Top talkers</a><a href="#answers">Audit answers</a></nav>
<h2 id="map">Workload map</h2>
<form class="controls" id="map-controls" onsubmit="return false">
<fieldset><legend>weight edges by</legend><label><input type="radio" name="weight" value="bytes" checked> bytes</label> <label><input type="radio" name="weight" value="flows"> flows</label></fieldset>
<fieldset><legend>show</legend><label><input type="checkbox" name="allow" checked> allowed</label> <label><input type="checkbox" name="deny" checked> denied</label>${r.diff ? ' <label><input type="checkbox" name="whatif"> mark what-if</label>' : ''}</fieldset>
</form>
${mapSvg(graph, { diff: r.diff })}
${mapLegend(graph)}
<p class="muted">Each dot is a workload (pods by their Deployment, StatefulSet or DaemonSet name), grouped by namespace around the ring; hosts and outside addresses come last. A line is traffic from one to the other, arrow at the receiver: grey allowed, red dashed denied, wider for more bytes (or flows). Point at a workload to see only its traffic; hover a line for its counts and ports.</p>
<h2 id="matrix">Namespace × namespace</h2>
<p class="muted">Rows send, columns receive. Allowed ${'<span class="by-bytes">bytes</span><span class="by-flows">flows</span>'} in blue (darker is more), denied in red (✕).</p>
${matrixTable(namespaceMatrix(graph))}
<h2 id="denies">Denied packets over time (per ${per})</h2>
<p class="muted">${deniedSplitNote(denies)}</p>
${deniedChart(denies)}
${deniedLegend(denies)}
${r.diff ? diffSection(r.diff) : ''}
<h2 id="talkers">Top talkers by bytes</h2>
${talkersChart(r.topTalkers)}
<div id="answers">
${sections}
</div>
<script>${PAGE_SCRIPT}</script>
</body></html>
`;
}
