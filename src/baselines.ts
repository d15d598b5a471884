/**
 * Restart continuity: at each flush the flow table's reported baselines (per
 * open connection, the counters already reported) are saved beside the
 * spool, atomically (write a temporary file, fsync, rename). After a restart
 * — kill -9 included — they are loaded before the start-up dump, so the dump
 * yields deltas instead of totals counted twice.
 *
 * The window: baselines are saved right after the interval's records reached
 * every sink (the spool, for CloudWatch). A crash between those two steps
 * repeats that one interval's deltas; a crash before the flush loses nothing
 * (the next agent reports from the last saved baselines). So a crash can
 * repeat at most one flush interval, never lose one.
 */
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import type { BaselineSnapshot } from './flows/flow-table.js';

export const BASELINES_FILE = 'baselines.json';

export function baselinesPath(spoolDir: string): string {
  return join(spoolDir, BASELINES_FILE);
}

export function saveBaselines(path: string, snapshot: BaselineSnapshot, savedAtMs: number): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, JSON.stringify({ ...snapshot, savedAtMs }));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export type LoadedBaselines =
  | { kind: 'none' }
  | { kind: 'loaded'; snapshot: BaselineSnapshot; savedAtMs: number; connections: number }
  | { kind: 'invalid'; reason: string };

/** Reads saved baselines; a missing file is `none`, a damaged one `invalid` (with why), never fatal. */
export function loadBaselines(path: string): LoadedBaselines {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none' };
    return {
      kind: 'invalid',
      reason: `cannot read ${path} (${(err as NodeJS.ErrnoException).code})`,
    };
  }
  try {
    const raw = JSON.parse(text) as {
      version?: unknown;
      connections?: unknown;
      savedAtMs?: unknown;
    };
    if (raw.version !== 1 || typeof raw.connections !== 'object' || raw.connections === null) {
      return { kind: 'invalid', reason: `${path}: not a version 1 baseline snapshot` };
    }
    // Four counters, then the kernel start time; completed connections carry
    // their expiry before it. Older snapshots have fewer numbers.
    const counters = <T extends number[]>(m: unknown, lengths: readonly number[]) => {
      const out: Record<string, T> = {};
      if (typeof m !== 'object' || m === null) return out;
      for (const [k, v] of Object.entries(m as Record<string, unknown>)) {
        if (
          Array.isArray(v) &&
          lengths.includes(v.length) &&
          v.every((n) => Number.isSafeInteger(n) && n >= 0)
        ) {
          out[k] = v as T;
        }
      }
      return out;
    };
    const connections = counters<
      [number, number, number, number] | [number, number, number, number, number]
    >(raw.connections, [4, 5]);
    const completed = counters<
      | [number, number, number, number]
      | [number, number, number, number, number]
      | [number, number, number, number, number, number]
    >((raw as { completed?: unknown }).completed, [4, 5, 6]);
    const until = (raw as { reportedUntilMs?: unknown }).reportedUntilMs;
    const snapshot: BaselineSnapshot = { version: 1, connections, completed };
    if (typeof until === 'number' && Number.isSafeInteger(until) && until > 0) {
      snapshot.reportedUntilMs = until;
    }
    return {
      kind: 'loaded',
      snapshot,
      savedAtMs: typeof raw.savedAtMs === 'number' ? raw.savedAtMs : 0,
      connections: Object.keys(connections).length,
    };
  } catch (err) {
    return { kind: 'invalid', reason: `${path}: ${(err as Error).message}` };
  }
}
