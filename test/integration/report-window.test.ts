/**
 * `flowtrail report --file` on an old file (issue 19, item 6): without
 * --since it reads the whole file (the 24 h default is for CloudWatch); with
 * a window, it says how many records fell outside it.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeRecord, encodeRecord } from '../../src/format/codec.js';
import { runCli } from '../harness/cli.js';

const EXAMPLE =
  '1529529591 1529529892 wep policy-demo nginx-7d98456675-* - wep kube-system kube-dns-7cc87d595-* - - - 17 - 53 1 1 1 dst 1 1 73 119 allow';

describe('flowtrail report --file and the time window', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ft-window-'));
  const file = join(dir, 'old.log');
  const threeDaysAgo = Math.floor(Date.now() / 1000) - 3 * 86_400;
  const old = decodeRecord(EXAMPLE);
  old.startTime = threeDaysAgo - 300;
  old.endTime = threeDaysAgo;
  const recent = {
    ...old,
    startTime: old.startTime + 3 * 86_400 - 600,
    endTime: old.endTime + 3 * 86_400 - 600,
  };
  writeFileSync(file, `${encodeRecord(old)}\n${encodeRecord(old)}\n${encodeRecord(recent)}\n`);

  it('without --since, every record of the file counts', async () => {
    const r = await runCli(['report', '--file', file, '--json']);
    expect(r.status).toBe(0);
    expect((JSON.parse(r.stdout) as { totals: { records: number } }).totals.records).toBe(3);
    expect(r.stderr).not.toMatch(/outside/);
  });

  it('with --since, the records outside the window are counted and said', async () => {
    const r = await runCli(['report', '--file', file, '--since', '24h', '--json']);
    expect(r.status).toBe(0);
    expect((JSON.parse(r.stdout) as { totals: { records: number } }).totals.records).toBe(1);
    expect(r.stderr).toContain(
      'flowtrail report: 2 records outside the time window (--since 24h) not counted',
    );
  });
});
