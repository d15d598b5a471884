/**
 * Restart continuity: at each flush the flow table's reported baselines (per
 * connection, the counters already reported; see flows/baseline-snapshot.ts)
 * are saved beside the spool, atomically (write a temporary file, rename).
 * After a restart — kill -9 included — they are loaded before the start-up
 * dump, so the dump yields deltas instead of totals counted twice.
 *
 * The window: baselines are saved right after the interval's records reached
 * every sink (the spool, for CloudWatch). A crash between those two steps
 * repeats that one interval's deltas; a crash before the flush loses nothing
 * (the next agent reports from the last saved baselines). So a crash can
 * repeat at most one flush interval, never lose one.
 *
 * No fsync: a killed process leaves its writes in the page cache and the
 * rename is atomic; a node that loses power loses its conntrack table too,
 * so baselines older than the crash describe connections that are gone.
 *
 * The file is rows of numbers (little-endian): a 40-byte header (magic,
 * version, row count, text length, reportedUntilMs, savedAtMs), the row
 * doubles, the row int32s, then the address text of rows without IPv4
 * numbers as JSON, and a CRC-32 of everything before it. Snapshots written
 * as JSON by earlier versions (baselines.json) are still read.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { crc32 } from 'node:zlib';
import { type BaselineSnapshot, fromKeyedSnapshot, RI, RN } from '../flows/baseline-snapshot.js';

export const BASELINES_FILE = 'baselines.bin';
/** What versions before the binary rows wrote, read once after an upgrade. */
const LEGACY_FILE = 'baselines.json';

const MAGIC = 0x4c425446; // "FTBL"
const VERSION = 2;
const HEADER = 40;

export function baselinesPath(spoolDir: string): string {
  return join(spoolDir, BASELINES_FILE);
}

/** The file's bytes for a snapshot. */
export function encodeBaselines(snapshot: BaselineSnapshot, savedAtMs: number): Buffer {
  const texts = JSON.stringify([...snapshot.texts].map(([r, [src, dst]]) => [r, src, dst]));
  const textBytes = Buffer.byteLength(texts);
  const n = snapshot.count;
  const size = HEADER + n * RN * 8 + n * RI * 4 + textBytes + 4;
  const buf = Buffer.alloc(size);
  buf.writeUInt32LE(MAGIC, 0);
  buf.writeUInt32LE(VERSION, 4);
  buf.writeUInt32LE(n, 8);
  buf.writeUInt32LE(textBytes, 12);
  buf.writeDoubleLE(snapshot.reportedUntilMs ?? Number.NaN, 16);
  buf.writeDoubleLE(savedAtMs, 24);
  let at = HEADER;
  const nums = new Float64Array(buf.buffer, buf.byteOffset + at, n * RN);
  nums.set(snapshot.nums.subarray(0, n * RN));
  at += n * RN * 8;
  const ints = new Int32Array(buf.buffer, buf.byteOffset + at, n * RI);
  ints.set(snapshot.ints.subarray(0, n * RI));
  at += n * RI * 4;
  buf.write(texts, at);
  at += textBytes;
  buf.writeUInt32LE(crc32(buf.subarray(0, at)), at);
  return buf;
}

/** The snapshot in a file's bytes, or why they are not one. */
export function decodeBaselines(
  buf: Buffer,
): { snapshot: BaselineSnapshot; savedAtMs: number } | { error: string } {
  if (buf.length < HEADER + 4) return { error: `${buf.length} bytes: shorter than a header` };
  if (buf.readUInt32LE(0) !== MAGIC) return { error: 'not a baselines file (magic)' };
  const version = buf.readUInt32LE(4);
  if (version !== VERSION) return { error: `version ${version}, expected ${VERSION}` };
  const n = buf.readUInt32LE(8);
  const textBytes = buf.readUInt32LE(12);
  const end = HEADER + n * RN * 8 + n * RI * 4 + textBytes;
  if (buf.length !== end + 4) return { error: `${buf.length} bytes, expected ${end + 4} (torn)` };
  if (crc32(buf.subarray(0, end)) !== buf.readUInt32LE(end)) return { error: 'CRC mismatch' };
  // Copies: the typed views of a Buffer need aligned offsets, and the snapshot outlives it.
  const nums = new Float64Array(n * RN);
  for (let k = 0; k < n * RN; k++) nums[k] = buf.readDoubleLE(HEADER + k * 8);
  const intsAt = HEADER + n * RN * 8;
  const ints = new Int32Array(n * RI);
  for (let k = 0; k < n * RI; k++) ints[k] = buf.readInt32LE(intsAt + k * 4);
  let texts: Map<number, readonly [string, string]>;
  try {
    const raw = JSON.parse(buf.toString('utf8', end - textBytes, end)) as [
      number,
      string,
      string,
    ][];
    texts = new Map(raw.map(([r, src, dst]) => [r, [src, dst] as const]));
  } catch (err) {
    return { error: `address text: ${(err as Error).message}` };
  }
  const until = buf.readDoubleLE(16);
  return {
    snapshot: {
      count: n,
      nums,
      ints,
      texts,
      ...(Number.isNaN(until) ? {} : { reportedUntilMs: until }),
    },
    savedAtMs: buf.readDoubleLE(24),
  };
}

export function saveBaselines(path: string, snapshot: BaselineSnapshot, savedAtMs: number): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, encodeBaselines(snapshot, savedAtMs));
  renameSync(tmp, path);
}

export type LoadedBaselines =
  | { kind: 'none' }
  | { kind: 'loaded'; snapshot: BaselineSnapshot; savedAtMs: number; connections: number }
  | { kind: 'invalid'; reason: string };

function readOrMissing(path: string): Buffer | 'missing' | { reason: string } {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'missing';
    return { reason: `cannot read ${path} (${code})` };
  }
}

/** Reads saved baselines; a missing file is `none`, a damaged one `invalid` (with why), never fatal. */
export function loadBaselines(path: string): LoadedBaselines {
  const bytes = readOrMissing(path);
  if (bytes === 'missing') return loadLegacy(join(dirname(path), LEGACY_FILE));
  if (!Buffer.isBuffer(bytes)) return { kind: 'invalid', reason: bytes.reason };
  const decoded = decodeBaselines(bytes);
  if ('error' in decoded) return { kind: 'invalid', reason: `${path}: ${decoded.error}` };
  return {
    kind: 'loaded',
    snapshot: decoded.snapshot,
    savedAtMs: decoded.savedAtMs,
    connections: decoded.snapshot.count,
  };
}

/** The JSON snapshot of earlier versions (keys of text, arrays of numbers). */
function loadLegacy(path: string): LoadedBaselines {
  const bytes = readOrMissing(path);
  if (bytes === 'missing') return { kind: 'none' };
  if (!Buffer.isBuffer(bytes)) return { kind: 'invalid', reason: bytes.reason };
  try {
    const raw = JSON.parse(bytes.toString('utf8')) as {
      version?: unknown;
      connections?: unknown;
      completed?: unknown;
      savedAtMs?: unknown;
      reportedUntilMs?: unknown;
    };
    if (raw.version !== 1 || typeof raw.connections !== 'object' || raw.connections === null) {
      return { kind: 'invalid', reason: `${path}: not a version 1 baseline snapshot` };
    }
    // Four counters, then (completed) an expiry, then the kernel start time.
    const counters = (m: unknown, lengths: readonly number[]) => {
      const out: Record<string, number[]> = {};
      if (typeof m !== 'object' || m === null) return out;
      for (const [k, v] of Object.entries(m as Record<string, unknown>)) {
        if (
          Array.isArray(v) &&
          lengths.includes(v.length) &&
          v.every((x) => Number.isSafeInteger(x) && x >= 0)
        ) {
          out[k] = v as number[];
        }
      }
      return out;
    };
    const until = raw.reportedUntilMs;
    const snapshot = fromKeyedSnapshot({
      connections: counters(raw.connections, [4, 5]),
      completed: counters(raw.completed, [4, 5, 6]),
      ...(typeof until === 'number' && Number.isSafeInteger(until) && until > 0
        ? { reportedUntilMs: until }
        : {}),
    });
    return {
      kind: 'loaded',
      snapshot,
      savedAtMs: typeof raw.savedAtMs === 'number' ? raw.savedAtMs : 0,
      connections: snapshot.count,
    };
  } catch (err) {
    return { kind: 'invalid', reason: `${path}: ${(err as Error).message}` };
  }
}
