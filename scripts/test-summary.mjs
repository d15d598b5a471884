// Runs vitest, then prints one closing line `tests: N passed, N failed, N skipped`
// and, under CI=true, fails when any test was skipped: a skipped test proves nothing.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = mkdtempSync(join(tmpdir(), 'ft-vitest-'));
const out = join(dir, 'results.json');
const args = [
  'vitest',
  'run',
  '--reporter=default',
  '--reporter=json',
  `--outputFile.json=${out}`,
  ...process.argv.slice(2),
];
const run = spawnSync('npx', args, { stdio: 'inherit' });
let summary;
try {
  summary = JSON.parse(readFileSync(out, 'utf8'));
} catch {
  console.error('test-summary: vitest wrote no results');
  process.exit(run.status || 1);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const passed = summary.numPassedTests;
const failed = summary.numFailedTests;
const skipped = summary.numPendingTests + summary.numTodoTests;
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
const ci = process.env.CI === 'true' || process.env.CI === '1';
if (ci && skipped > 0) {
  console.error(`test-summary: ${skipped} tests skipped under CI=true; every test must run in CI`);
  process.exit(1);
}
process.exit(run.status ?? 1);
