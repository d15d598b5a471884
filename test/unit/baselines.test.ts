import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  baselinesPath,
  decodeBaselines,
  encodeBaselines,
  loadBaselines,
  saveBaselines,
} from '../../src/agent/baselines.js';
import { BaselineRows, R_COMPLETED, R_V4, RI, RN } from '../../src/flows/baseline-snapshot.js';
import { keyed } from '../harness/baselines.js';

/** Two rows: an open IPv4 connection and a completed IPv6 one (address text). */
function sample() {
  const rows = new BaselineRows();
  const a = rows.add();
  rows.numbers.set([1, 2, 3, 4, 1_700_000_000_123, Number.NaN], a * RN);
  rows.integers.set([0x9000_0001 | 0, 0, 6, 40000, 80, 0x0af4_0102, 0x0af4_0103, R_V4], a * RI);
  const b = rows.add();
  rows.numbers.set([5, 6, 7, 8, Number.NaN, 1_700_000_600_000], b * RN);
  rows.integers.set([7, 0, 6, 5555, 80, 0, 0, R_COMPLETED], b * RI);
  rows.setText(b, 'fd00::2', 'fd00::3');
  return rows.snapshot(1_700_000_000_000);
}

describe('baseline snapshots on disk', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ft-baselines-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trip: rows, address text, the last reported instant', () => {
    const path = baselinesPath(join(dir, 'spool'));
    saveBaselines(path, sample(), 1_700_000_000_500);
    const loaded = loadBaselines(path);
    expect(loaded.kind).toBe('loaded');
    if (loaded.kind !== 'loaded') return;
    expect([loaded.savedAtMs, loaded.connections, loaded.snapshot.reportedUntilMs]).toEqual([
      1_700_000_000_500, 2, 1_700_000_000_000,
    ]);
    expect(keyed(loaded.snapshot)).toEqual({
      connections: {
        '2415919105|0|6|10.244.1.2|10.244.1.3|40000|80': [1, 2, 3, 4, 1_700_000_000_123],
      },
      completed: { '7|0|6|fd00::2|fd00::3|5555|80': [5, 6, 7, 8, 1_700_000_600_000] },
    });
    // Written atomically: the temporary file was renamed over the snapshot.
    expect(existsSync(`${path}.tmp`)).toBe(false);
  });

  it('property: any rows survive the file exactly', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            nums: fc.array(fc.double(), { minLength: RN, maxLength: RN }),
            ints: fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), {
              minLength: RI,
              maxLength: RI,
            }),
            text: fc.option(fc.tuple(fc.string(), fc.string()), { nil: undefined }),
          }),
          { maxLength: 20 },
        ),
        fc.option(fc.integer({ min: 1, max: 2 ** 45 }), { nil: undefined }),
        (rs, until) => {
          const rows = new BaselineRows();
          for (const x of rs) {
            const r = rows.add();
            rows.numbers.set(x.nums, r * RN);
            rows.integers.set(x.ints, r * RI);
            if (x.text) rows.setText(r, x.text[0], x.text[1]);
          }
          const s = rows.snapshot(until);
          const d = decodeBaselines(encodeBaselines(s, 42));
          if ('error' in d) throw new Error(d.error);
          expect([...d.snapshot.nums]).toEqual([...s.nums]);
          expect([...d.snapshot.ints]).toEqual([...s.ints]);
          expect([...d.snapshot.texts]).toEqual([...s.texts]);
          expect(d.snapshot.reportedUntilMs).toBe(until);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a torn, flipped or foreign file is invalid, with the path and why', () => {
    const path = baselinesPath(dir);
    saveBaselines(path, sample(), 1);
    const good = readFileSync(path);
    writeFileSync(path, good.subarray(0, good.length - 7));
    expect(loadBaselines(path)).toMatchObject({
      kind: 'invalid',
      reason: expect.stringContaining('torn'),
    });
    const flipped = Buffer.from(good);
    flipped[50] = flipped[50]! ^ 1;
    writeFileSync(path, flipped);
    expect(loadBaselines(path)).toEqual({ kind: 'invalid', reason: `${path}: CRC mismatch` });
    writeFileSync(path, Buffer.from('{"version":1}'.padEnd(60)));
    expect(loadBaselines(path)).toEqual({
      kind: 'invalid',
      reason: `${path}: not a baselines file (magic)`,
    });
    expect(loadBaselines(join(dir, 'elsewhere', 'baselines.bin'))).toEqual({ kind: 'none' });
  });

  it('reads the JSON snapshot of earlier versions once the binary file is absent', () => {
    writeFileSync(
      join(dir, 'baselines.json'),
      JSON.stringify({
        version: 1,
        connections: {
          '5|0|6|10.0.0.1|10.0.0.2|1000|80': [1, 1, 1, 1],
          '6|0|6|10.0.0.1|10.0.0.2|1001|80': [1, 1, 1, 1, 1_796_000_000_123],
          neg: [-1, 0, 0, 0],
          short: [1, 2],
          text: ['1', 2, 3, 4],
        },
        completed: {
          '7|0|6|10.0.0.1|10.0.0.2|1002|80': [1, 2, 3, 4],
          '8|0|6|10.0.0.1|10.0.0.2|1003|80': [1, 2, 3, 4, 5, 6],
          notakey: [1, 2, 3, 4, 5],
        },
        reportedUntilMs: 'yesterday',
        savedAtMs: 9,
      }),
    );
    const loaded = loadBaselines(baselinesPath(dir));
    expect(loaded.kind === 'loaded' && keyed(loaded.snapshot)).toEqual({
      connections: {
        '5|0|6|10.0.0.1|10.0.0.2|1000|80': [1, 1, 1, 1],
        '6|0|6|10.0.0.1|10.0.0.2|1001|80': [1, 1, 1, 1, 1_796_000_000_123],
      },
      completed: {
        '7|0|6|10.0.0.1|10.0.0.2|1002|80': [1, 2, 3, 4, Number.NaN],
        '8|0|6|10.0.0.1|10.0.0.2|1003|80': [1, 2, 3, 4, 5, 6],
      },
    });
    expect(loaded.kind === 'loaded' && loaded.snapshot.reportedUntilMs).toBeUndefined();
    writeFileSync(join(dir, 'baselines.json'), JSON.stringify({ version: 2, connections: {} }));
    expect(loadBaselines(baselinesPath(dir))).toEqual({
      kind: 'invalid',
      reason: `${join(dir, 'baselines.json')}: not a version 1 baseline snapshot`,
    });
  });
});
