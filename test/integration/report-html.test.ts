/**
 * `flowtrail report` on a gzip-compressed record file (rotated file-sink
 * output) with `--html`: the page is written, self-contained, and carries
 * the same numbers as `--json` from the same file. The page is checked as
 * text here; report-html-browser.test.ts renders pages in chromium.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';

const CLI = new URL('../../bin/flowtrail.js', import.meta.url).pathname;
const END = Math.floor(Date.now() / 1000 / 300) * 300 - 600;
const lines = [
  `${END - 600} ${END - 300} wep dev client-* - wep prod db-0 - - - 6 - 5432 2 2 0 dst 9 0 540 0 deny`,
  `${END - 300} ${END} wep dev client-* - wep prod db-0 - - - 6 - 5432 1 1 0 dst 4 0 240 0 deny`,
  `${END - 300} ${END} wep prod api-* - net - pub - - 203.0.113.9 6 - 443 3 3 3 src 30 40 4000 90000 allow`,
  'garbage line',
];

function report(args: string[]) {
  return spawnSync(process.execPath, [CLI, 'report', ...args], { encoding: 'utf8' });
}

describe('flowtrail report --html on a gzip record file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ft-report-html-'));
  const file = join(dir, 'flowlogs.log.1.gz');
  writeFileSync(file, gzipSync(`${lines.join('\n')}\n`));
  const html = join(dir, 'report.html');

  it('reads the gzip file, counts the bad line, and writes a page with both charts', () => {
    const r = report(['--file', file, '--since', '1h', '--html', html, '--json']);
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('1 lines are not flow records');
    expect(r.stderr).toContain(`${file}:4`);
    const json = JSON.parse(r.stdout) as { totals: { records: number; deniedPackets: number } };
    expect(json.totals).toMatchObject({ records: 3, deniedPackets: 13 });
    const page = readFileSync(html, 'utf8');
    // One inline script (the page's switches), nothing loaded from anywhere.
    expect(page.match(/<script[^>]*>/gi)).toEqual(['<script>']);
    const denied = page.match(/<svg[^>]*id="denied-over-time"[\s\S]*?<\/svg>/)?.[0] ?? '';
    const bars = [...denied.matchAll(/data-packets="(\d+)"/g)].map((m) => Number(m[1]));
    expect(bars.reduce((a, b) => a + b, 0)).toBe(13);
    expect(page).toMatch(/<div class="bars" id="top-talkers"[\s\S]*data-bytes="94000"/);
    // Bytes in binary units, protocols by name: 94,000 B is 91.8 KiB; proto 6 is TCP.
    expect(page).toContain('<span class="bar-value" title="94,000 bytes">91.8 KiB</span>');
    expect(page).toContain('prod/api-* → net/pub (203.0.113.9) 443/TCP');
  });

  it('refuses a --diff without --html, or one that is not the documented shape, naming the field', () => {
    const alone = report(['--file', file, '--diff', join(dir, 'diff.json')]);
    expect(alone.status).toBe(2);
    expect(alone.stderr).toContain('--diff needs --html FILE');
    writeFileSync(
      join(dir, 'diff.json'),
      JSON.stringify({ newlyDenied: [{ srcNamespace: 'dev' }], newlyAllowed: [] }),
    );
    const bad = report(['--file', file, '--html', html, '--diff', join(dir, 'diff.json')]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain(
      `flowtrail report: --diff: ${join(dir, 'diff.json')}: newlyDenied[0].srcWorkload: expected a string, missing`,
    );
  });

  it('shows a given diff in the page', () => {
    writeFileSync(
      join(dir, 'diff.json'),
      JSON.stringify({
        title: 'proposed',
        newlyDenied: [
          {
            srcNamespace: 'dev',
            srcWorkload: 'client',
            dstNamespace: 'prod',
            dstWorkload: 'db',
            port: 5432,
            proto: 6,
            count: 3,
          },
        ],
        newlyAllowed: [],
      }),
    );
    const r = report([
      '--file',
      file,
      '--since',
      '1h',
      '--html',
      html,
      '--diff',
      join(dir, 'diff.json'),
    ]);
    expect(r.status).toBe(0);
    const page = readFileSync(html, 'utf8');
    expect(page).toContain('<h2 id="what-if">What-if: proposed</h2>');
    expect(page).toContain(
      '<td>dev/client</td><td>prod/db</td><td>5432/TCP</td><td class="n">3</td>',
    );
    // 24-field records: the denies are split by namespace, and the page says why.
    expect(page).toContain('these are 24-field records, which name no policy');
    expect(page).toContain('data-series="namespace prod"');
  });
});
