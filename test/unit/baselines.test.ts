import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { baselinesPath, loadBaselines, saveBaselines } from '../../src/baselines.js';

describe('baseline snapshots on disk', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ft-baselines-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trip, completed connections with their expiry', () => {
    const path = baselinesPath(join(dir, 'spool'));
    const snapshot = {
      version: 1 as const,
      connections: { a: [1, 2, 3, 4] as [number, number, number, number] },
      completed: { b: [5, 6, 7, 8, 1_700_000_600_000] as [number, number, number, number, number] },
    };
    saveBaselines(path, snapshot, 1_700_000_000_000);
    expect(loadBaselines(path)).toEqual({
      kind: 'loaded',
      snapshot,
      savedAtMs: 1_700_000_000_000,
      connections: 1,
    });
    // Written atomically: the temporary file was renamed over the snapshot.
    expect(existsSync(`${path}.tmp`)).toBe(false);
  });

  it('reads snapshots written before completed entries carried an expiry', () => {
    const path = join(dir, 'baselines.json');
    writeFileSync(
      path,
      JSON.stringify({ version: 1, connections: {}, completed: { b: [5, 6, 7, 8] }, savedAtMs: 9 }),
    );
    const loaded = loadBaselines(path);
    expect(loaded.kind === 'loaded' && loaded.snapshot.completed).toEqual({ b: [5, 6, 7, 8] });
  });

  it('skips malformed entries and reports a damaged or foreign file as invalid, with the path', () => {
    const path = join(dir, 'baselines.json');
    writeFileSync(
      path,
      JSON.stringify({
        version: 1,
        connections: {
          ok: [1, 1, 1, 1],
          started: [1, 1, 1, 1, 1_796_000_000_123],
          neg: [-1, 0, 0, 0],
          short: [1, 2],
          text: ['1', 2, 3, 4],
          long: [1, 2, 3, 4, 5, 6],
        },
        completed: { five: [1, 2, 3, 4, 5], six: [1, 2, 3, 4, 5, 6], seven: [1, 2, 3, 4, 5, 6, 7] },
        reportedUntilMs: 'yesterday',
      }),
    );
    const loaded = loadBaselines(path);
    // The kernel start time follows the counters (and a completed one's expiry).
    expect(loaded.kind === 'loaded' && loaded.snapshot).toEqual({
      version: 1,
      connections: { ok: [1, 1, 1, 1], started: [1, 1, 1, 1, 1_796_000_000_123] },
      completed: { five: [1, 2, 3, 4, 5], six: [1, 2, 3, 4, 5, 6] },
    });
    writeFileSync(path, '{"version":1,"connec');
    const torn = loadBaselines(path);
    expect(torn.kind).toBe('invalid');
    expect(torn.kind === 'invalid' && torn.reason).toContain(path);
    writeFileSync(path, JSON.stringify({ version: 2, connections: {} }));
    expect(loadBaselines(path)).toEqual({
      kind: 'invalid',
      reason: `${path}: not a version 1 baseline snapshot`,
    });
    expect(loadBaselines(join(dir, 'missing.json'))).toEqual({ kind: 'none' });
  });
});
