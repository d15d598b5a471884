#!/usr/bin/env node
// npm run soak -- --minutes N [--kills K] [--out DIR]
// Runs tooling/soak/run.ts (built into dist-tooling/) as root on a simulated node with
// moto, then writes DIR/soak.json and DIR/soak.html (default soak-results/)
// and exits 1 when a check failed.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { renderSoakHtml } from '../dist-tooling/soak/report.js';
import { runSoak } from '../dist-tooling/soak/run.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    kills: { type: 'string', default: '12' },
    out: { type: 'string', default: 'soak-results' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log(
    [
      'usage: npm run soak -- --minutes N [--kills K] [--out DIR]   (root; moto_server)',
      '  --minutes N  length of the run (default 10)',
      '  --kills K    kill -9 and restarts of the agent over the run (default 12; 0: none)',
      '  --out DIR    where soak.json and soak.html go (default soak-results/)',
    ].join('\n'),
  );
  process.exit(0);
}
const minutes = Number(values.minutes);
if (!(minutes > 0 && minutes <= 24 * 60)) {
  console.error(`soak: --minutes: expected 0-1440, got ${values.minutes}`);
  process.exit(2);
}
if (process.getuid?.() !== 0) {
  console.error('soak: needs root (network namespaces, iptables, conntrack)');
  process.exit(2);
}
const kills = Number(values.kills);
if (!(Number.isInteger(kills) && kills >= 0 && kills <= 1000)) {
  console.error(`soak: --kills: expected an integer 0-1000, got ${values.kills}`);
  process.exit(2);
}
const started = Date.now();
const result = await runSoak({
  minutes,
  kills,
  log: (line) => console.error(`[${((Date.now() - started) / 1000).toFixed(0)}s] ${line}`),
});
mkdirSync(values.out, { recursive: true });
writeFileSync(join(values.out, 'soak.json'), `${JSON.stringify(result, null, 2)}\n`);
writeFileSync(join(values.out, 'soak.html'), renderSoakHtml(result));
const c = result.check;
console.log(
  [
    `soak ${minutes} min: ${result.pass ? 'PASS' : 'FAIL'}`,
    `  groups exact ${c.exact}/${c.groups}, mismatched ${c.mismatched}, excused ${c.excusedDown} (down) + ${c.excusedOverrun} (overrun), without kernel truth ${c.unexplainedGroups}`,
    ...(result.truthFailure ? [`  kernel event log incomplete: ${result.truthFailure}`] : []),
    `  misattributed ${c.misattributed} of ${c.attributionChecked} checks; duplicates ${result.duplicates}; kills ${result.kills}; storms ${result.storms}; churns ${result.churns}`,
    `  tuple reuse: ${result.reuseBursts} bursts, ${result.reuseConnections} connections; reopened 5-tuple groups exact ${c.reusedExact} of ${c.reusedChecked} checked (${c.reusedGroups} in all)`,
    `  losses reported ${JSON.stringify(result.lost)}`,
    `  RSS max ${result.rssMaxMiB.toFixed(1)} MiB, trend ${result.rssSlopeMiBPerHour.toFixed(1)} MiB/h; fd trend ${result.fdSlopePerHour.toFixed(1)}/h`,
    `  longest-running agent ${result.longestRun.minutes.toFixed(1)} min: RSS trend ${result.longestRun.rssSlopeMiBPerHour.toFixed(1)} MiB/h, fd trend ${result.longestRun.fdSlopePerHour.toFixed(1)}/h`,
    `  report: ${join(values.out, 'soak.html')}`,
  ].join('\n'),
);
process.exit(result.pass ? 0 : 1);
