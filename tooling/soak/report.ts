/**
 * The soak's report: the verdict, the counts and the agent's RSS and open
 * file descriptors over time as inline SVG charts, in one HTML file.
 */
import type { Sample, SoakResult } from './run.js';

const esc = (v: unknown) =>
  String(v).replace(
    /[&<>"]/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!,
  );

function chart(samples: readonly Sample[], value: (s: Sample) => number, label: string): string {
  const W = 720;
  const H = 180;
  if (samples.length < 2) return `<p>${esc(label)}: not enough samples</p>`;
  const t0 = samples[0]!.atMs;
  const t1 = samples.at(-1)!.atMs;
  const max = Math.max(1, ...samples.map(value)) * 1.1;
  const x = (t: number) => 40 + ((t - t0) / Math.max(1, t1 - t0)) * (W - 50);
  const y = (v: number) => H - 20 - (v / max) * (H - 30);
  const path = samples
    .map((s, i) => `${i ? 'L' : 'M'}${x(s.atMs).toFixed(1)},${y(value(s)).toFixed(1)}`)
    .join(' ');
  // A restart is a new pid: mark it.
  const restarts = samples
    .filter((s, i) => i > 0 && s.pid !== samples[i - 1]!.pid)
    .map(
      (s) =>
        `<line x1="${x(s.atMs)}" x2="${x(s.atMs)}" y1="10" y2="${H - 20}" stroke="#c33" stroke-dasharray="3,3"/>`,
    )
    .join('');
  return `<figure><figcaption>${esc(label)} (max ${max.toFixed(0)}; dashed: kill -9 and restart)</figcaption>
<svg width="${W}" height="${H}" role="img" aria-label="${esc(label)}">
<line x1="40" x2="${W - 10}" y1="${H - 20}" y2="${H - 20}" stroke="#999"/><line x1="40" x2="40" y1="10" y2="${H - 20}" stroke="#999"/>
<text x="0" y="${y(max / 1.1) + 4}" font-size="10">${(max / 1.1).toFixed(0)}</text><text x="0" y="${H - 16}" font-size="10">0</text>
<text x="${W - 60}" y="${H - 4}" font-size="10">${((t1 - t0) / 60_000).toFixed(1)} min</text>
${restarts}<path d="${path}" fill="none" stroke="#36c" stroke-width="1.5"/></svg></figure>`;
}

export function renderSoakHtml(r: SoakResult): string {
  const c = r.check;
  const rows: [string, unknown][] = [
    ['verdict', r.pass ? 'PASS' : 'FAIL'],
    ['minutes', r.minutes],
    ['connections checked', c.connections],
    ['5-tuple × reporter groups exact', `${c.exact} of ${c.groups}`],
    ['groups not matching the kernel', c.mismatched],
    ['excused: ended while the agent was down (kill -9)', c.excusedDown],
    ['excused: born and dead inside an overrun window', c.excusedOverrun],
    ['record groups the kernel never reported', c.unexplainedGroups],
    ['kernel event log', r.truthFailure ?? 'complete'],
    ['attribution checks under IP reuse', c.attributionChecked],
    ['misattributed', c.misattributed],
    ['records delivered (unique)', r.records],
    ['duplicate records (batches in flight at a kill)', r.duplicates],
    ['kill -9 / restarts', `${r.kills} / ${r.restarts}`],
    ['CloudWatch faults', r.faults.join(', ') || 'none'],
    ['overrun storms', r.storms],
    ['pod churns (IP reused)', r.churns],
    [
      'tuple reuse: bursts, connections; reopened 5-tuple groups exact / checked / all',
      `${r.reuseBursts ?? 0}, ${r.reuseConnections ?? 0}; ${c.reusedExact ?? 0} / ${c.reusedChecked ?? 0} / ${c.reusedGroups ?? 0}`,
    ],
    ['losses the agent reported', JSON.stringify(r.lost)],
    ['RSS max (MiB)', r.rssMaxMiB.toFixed(1)],
    ['RSS trend after warm-up (MiB/h)', r.rssSlopeMiBPerHour.toFixed(2)],
    ['fd trend after warm-up (per hour)', r.fdSlopePerHour.toFixed(2)],
    [
      'longest-running agent: minutes, RSS and fd trend per hour',
      `${r.longestRun.minutes.toFixed(1)} min, ${r.longestRun.rssSlopeMiBPerHour.toFixed(2)} MiB/h, ${r.longestRun.fdSlopePerHour.toFixed(2)} fds/h`,
    ],
  ];
  return `<!doctype html><html><head><meta charset="utf-8"><title>flowtrail soak</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}td{padding:2px 10px;border-bottom:1px solid #eee}</style></head>
<body><h1>flowtrail soak: ${r.pass ? 'PASS' : 'FAIL'}</h1>
<p>${esc(new Date(r.startedAtMs).toISOString())} to ${esc(new Date(r.endedAtMs).toISOString())}</p>
<table>${rows.map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`).join('')}</table>
${chart(r.samples, (s) => s.rssMiB, 'agent RSS (MiB)')}
${chart(r.samples, (s) => s.fds, 'agent open file descriptors')}
${c.mismatchSamples.length ? `<h2>Mismatches</h2><pre>${esc(JSON.stringify(c.mismatchSamples, null, 1))}</pre>` : ''}
${c.misattributedSamples.length ? `<h2>Misattributed</h2><pre>${esc(c.misattributedSamples.join('\n'))}</pre>` : ''}
</body></html>
`;
}
