/**
 * The disk spool on real files: one named test per kind of damage (a torn
 * write, a flipped byte in the newest and in the oldest segment, a flipped
 * length, a damaged segment tail, stray bytes after the last frame, a
 * failed write), the legacy format, a model test against an in-memory
 * queue, and fast-check over the segment reader with arbitrary corruption.
 */
import {
  appendFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  encodeFrame,
  encodeLegacyFrame,
  type FramedRecord,
  GapCounter,
  parseSegmentV2,
  V2_HEADER,
} from '../../src/sinks/spool/frames.js';
import { Spool, SpoolWriteError } from '../../src/sinks/spool/spool.js';

const NOW = 1_800_000_000_000;
const dirOf = () => mkdtempSync(join(tmpdir(), 'ft-spool-'));
const lines = (n: number, tag = 'r', t0 = NOW) =>
  Array.from({ length: n }, (_, i) => ({ line: `${tag}${i}`, timestampMs: t0 + i }));
const segments = (dir: string) =>
  readdirSync(dir)
    .filter((n) => /\.seg2?$/.test(n))
    .sort()
    .map((n) => join(dir, n));

/** Opens the spool in `dir`, noting what it reports lost to damage. */
function openNoting(dir: string, extra: { maxBytes?: number; segmentBytes?: number } = {}) {
  const corrupt: [number, number, number][] = [];
  const spool = Spool.open({
    dir,
    maxBytes: extra.maxBytes ?? 1 << 20,
    ...(extra.segmentBytes ? { segmentBytes: extra.segmentBytes } : {}),
    onCorrupt: (n, from, to) => corrupt.push([n, from, to]),
  });
  return { spool, corrupt };
}

/** Byte offset of the frame holding record `index` (0-based) in a segment. */
function frameOffset(seg: string, index: number): number {
  const buf = readFileSync(seg);
  let o = 0;
  for (let i = 0; i < index; i++) o += V2_HEADER + buf.readUInt32LE(o + 4);
  return o;
}

function flipByte(path: string, at: number): void {
  const buf = readFileSync(path);
  buf[at] = buf[at]! ^ 0x5a;
  writeFileSync(path, buf);
}

describe('disk spool', () => {
  it('replays unacknowledged records in order after a restart', () => {
    const dir = dirOf();
    const s = Spool.open({ dir, maxBytes: 1 << 20 });
    s.append(lines(5));
    s.ack(2);
    s.close();
    const again = Spool.open({ dir, maxBytes: 1 << 20 });
    expect(again.read(0, 100).map((r) => [r.id, r.line])).toEqual([
      [3, 'r2'],
      [4, 'r3'],
      [5, 'r4'],
    ]);
    expect(again.stats.depth).toBe(3);
  });

  it('a torn last write is cut at recovery and not counted as lost; the frames before it survive', () => {
    const dir = dirOf();
    const s = Spool.open({ dir, maxBytes: 1 << 20 });
    s.append(lines(3));
    s.close();
    // The start of a frame whose write never finished: a header promising 40 bytes, 3 present.
    appendFileSync(segments(dir)[0]!, Buffer.from([1, 2, 3, 4, 40, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0]));
    const { spool: again, corrupt } = openNoting(dir);
    expect(again.read(0, 10).map((r) => r.line)).toEqual(['r0', 'r1', 'r2']);
    expect(again.stats.tornBytesCut).toBe(15);
    expect(corrupt).toEqual([]);
    expect(again.append(lines(1, 'n'))).toEqual([4]);
    expect(again.read(0, 10).map((r) => [r.id, r.line])).toContainEqual([4, 'n0']);
  });

  it('stray bytes after the last frame (a torn write the spool did not see) are cut before the next append, which reads back (issue 19 repro)', () => {
    const dir = dirOf();
    const s = Spool.open({ dir, maxBytes: 1 << 20 });
    s.append(lines(1));
    s.ack(1);
    appendFileSync(segments(dir)[0]!, Buffer.from('junk bytes of a torn frame'));
    s.append(lines(2, 'n'));
    expect(s.stats.depth).toBe(2);
    expect(s.read(0, 10).map((r) => [r.id, r.line])).toEqual([
      [2, 'n0'],
      [3, 'n1'],
    ]);
    s.close();
    const again = Spool.open({ dir, maxBytes: 1 << 20 });
    expect(again.read(0, 10).map((r) => r.id)).toEqual([2, 3]);
    expect(again.stats.droppedCorrupt).toBe(0);
  });

  it('a flipped byte in the newest segment loses exactly that record; the 16 intact ones after it are delivered', () => {
    const dir = dirOf();
    const s = Spool.open({ dir, maxBytes: 1 << 20 });
    s.append(lines(20));
    s.close();
    const seg = segments(dir)[0]!;
    flipByte(seg, frameOffset(seg, 3) + V2_HEADER + 2); // inside record 4's payload
    const { spool: again, corrupt } = openNoting(dir);
    const ids = again.read(0, 100).map((r) => r.id);
    expect(ids).toEqual([1, 2, 3, ...Array.from({ length: 16 }, (_, i) => 5 + i)]);
    expect(again.stats.droppedCorrupt).toBe(1);
    expect(again.stats.depth).toBe(19);
    // The window: between the intact neighbours (records 3 and 5).
    expect(corrupt).toEqual([[1, NOW + 2, NOW + 4]]);
    expect(again.stats.tornBytesCut).toBe(0);
  });

  it('a flipped byte in the oldest segment loses exactly that record, and the rest of the segment is delivered', () => {
    const dir = dirOf();
    const s = Spool.open({ dir, maxBytes: 1 << 20, segmentBytes: 64 * 1024 });
    s.append(lines(20, 'a'));
    // Fill the first segment past its size so the next append starts a second one.
    s.append([{ line: 'x'.repeat(70_000), timestampMs: NOW + 100 }]);
    s.append(lines(5, 'b', NOW + 200));
    s.close();
    const [oldest, newest] = segments(dir);
    expect(newest).toBeDefined();
    flipByte(oldest!, frameOffset(oldest!, 3) + 1); // record 4's CRC
    const { spool: again, corrupt } = openNoting(dir, { segmentBytes: 64 * 1024 });
    const got = again.read(0, 100);
    expect(got.map((r) => r.id)).toEqual([1, 2, 3, ...Array.from({ length: 22 }, (_, i) => 5 + i)]);
    expect(corrupt.map(([n]) => n)).toEqual([1]);
    expect(again.stats.droppedCorrupt).toBe(1);
  });

  it('a flipped length field loses exactly its frame: the reader resynchronises on the next one', () => {
    const dir = dirOf();
    const s = Spool.open({ dir, maxBytes: 1 << 20 });
    s.append(lines(10));
    s.close();
    const seg = segments(dir)[0]!;
    flipByte(seg, frameOffset(seg, 6) + 4); // record 7's length
    const { spool: again, corrupt } = openNoting(dir);
    expect(again.read(0, 100).map((r) => r.id)).toEqual([1, 2, 3, 4, 5, 6, 8, 9, 10]);
    expect(corrupt.map(([n]) => n)).toEqual([1]);
  });

  it('a damaged tail of an older segment counts exactly the records it held (the next segment says where they ended)', () => {
    const dir = dirOf();
    const s = Spool.open({ dir, maxBytes: 1 << 20, segmentBytes: 64 * 1024 });
    s.append([{ line: 'x'.repeat(70_000), timestampMs: NOW }]); // id 1 fills the first segment
    s.append(lines(3, 'b', NOW + 10)); // ids 2..4 start a second one
    s.append([{ line: 'y'.repeat(70_000), timestampMs: NOW + 20 }]); // id 5 fills it
    s.append(lines(1, 'c', NOW + 30)); // id 6 in a third
    s.close();
    const segs = segments(dir);
    expect(segs).toHaveLength(3);
    // Cut the middle segment inside its second frame: records 3, 4 and 5 are gone.
    truncateSync(segs[1]!, frameOffset(segs[1]!, 1) + 5);
    const { spool: again, corrupt } = openNoting(dir, { segmentBytes: 64 * 1024 });
    expect(again.read(0, 100).map((r) => r.id)).toEqual([1, 2, 6]);
    expect(corrupt).toEqual([[3, NOW + 10, NOW + 30]]);
    expect(again.stats.depth).toBe(3);
  });

  it('acknowledged records lost to damage are not counted: they were delivered', () => {
    const dir = dirOf();
    const s = Spool.open({ dir, maxBytes: 1 << 20 });
    s.append(lines(6));
    s.ack(3);
    s.close();
    const seg = segments(dir)[0]!;
    flipByte(seg, frameOffset(seg, 1) + V2_HEADER); // record 2: delivered already
    const { spool: again, corrupt } = openNoting(dir);
    expect(again.read(0, 10).map((r) => r.id)).toEqual([4, 5, 6]);
    expect(corrupt).toEqual([]);
  });

  it('a segment an older agent wrote (v1 frames, ids by position) is replayed after the upgrade; new records go to a v2 segment', () => {
    const dir = dirOf();
    const legacy = Buffer.concat(lines(3, 'old').map(encodeLegacyFrame));
    writeFileSync(join(dir, `${'7'.padStart(20, '0')}.seg`), legacy);
    writeFileSync(join(dir, 'ack'), '7\n');
    const s = Spool.open({ dir, maxBytes: 1 << 20 });
    expect(s.read(0, 10).map((r) => [r.id, r.line])).toEqual([
      [8, 'old1'],
      [9, 'old2'],
    ]);
    expect(s.append(lines(1, 'new'))).toEqual([10]);
    expect(segments(dir).map((p) => p.slice(dir.length + 1))).toEqual([
      `${'7'.padStart(20, '0')}.seg`,
      `${'10'.padStart(20, '0')}.seg2`,
    ]);
    s.ack(10);
    expect(s.stats.depth).toBe(0);
  });

  it('a failed append (ENOSPC) keeps nothing and throws SpoolWriteError; the next append goes on, ids never reused', () => {
    const dir = dirOf();
    const s = Spool.open({ dir, maxBytes: 1 << 20 });
    // The segment the first append opens is /dev/full: every write fails with ENOSPC.
    symlinkSync('/dev/full', join(dir, `${'1'.padStart(20, '0')}.seg2`));
    let thrown: unknown;
    try {
      s.append(lines(4));
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(SpoolWriteError);
    expect((thrown as SpoolWriteError).errno).toBe('ENOSPC');
    expect((thrown as SpoolWriteError).message).toContain(dir);
    expect(s.stats).toMatchObject({ depth: 0, appended: 0, writeFailures: 1 });
    expect(s.read(0, 10)).toEqual([]);
    // /dev/full cannot be cut back: that segment is sealed, the next append starts another.
    const ids = s.append(lines(2, 'n'));
    expect(ids[0]).toBeGreaterThan(0);
    expect(s.read(0, 10).map((r) => [r.id, r.line])).toEqual([
      [ids[0], 'n0'],
      [ids[1], 'n1'],
    ]);
    expect(s.stats.depth).toBe(2);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a missing ack file replays everything; an ack beyond the end starts after it', () => {
    const dir = dirOf();
    const s = Spool.open({ dir, maxBytes: 1 << 20 });
    s.append(lines(2));
    s.ack(1);
    s.close();
    rmSync(join(dir, 'ack'));
    expect(Spool.open({ dir, maxBytes: 1 << 20 }).read(0, 10)).toHaveLength(2);
    writeFileSync(join(dir, 'ack'), '50\n');
    const beyond = Spool.open({ dir, maxBytes: 1 << 20 });
    expect(beyond.read(0, 10)).toHaveLength(0);
    expect(beyond.append(lines(1))).toEqual([51]);
  });

  it('bounded by maxBytes: the oldest segments are dropped first and counted with their time range', () => {
    const dir = dirOf();
    const drops: [number, number, number][] = [];
    const s = Spool.open({
      dir,
      maxBytes: 4096,
      segmentBytes: 1024,
      onDrop: (n, from, to) => drops.push([n, from, to]),
    });
    for (let i = 0; i < 20; i++) s.append([{ line: 'x'.repeat(200), timestampMs: NOW + i }]);
    expect(s.stats.bytes).toBeLessThanOrEqual(4096);
    expect(s.stats.droppedFull).toBeGreaterThan(0);
    const kept = s.read(0, 100);
    expect(kept.length + s.stats.droppedFull).toBe(20);
    expect(s.stats.depth).toBe(kept.length);
    expect(kept.at(-1)!.id).toBe(20);
    expect(drops.reduce((n, [k]) => n + k, 0)).toBe(s.stats.droppedFull);
    expect(drops[0]![1]).toBe(NOW);
  });

  it('truncating the segment to zero loses nothing that was acknowledged', () => {
    const dir = dirOf();
    const s = Spool.open({ dir, maxBytes: 1 << 20 });
    s.append(lines(2));
    s.ack(2);
    s.close();
    for (const p of segments(dir)) truncateSync(p, 0);
    const again = Spool.open({ dir, maxBytes: 1 << 20 });
    expect(again.read(0, 10)).toEqual([]);
    expect(again.append(lines(1))).toEqual([3]);
  });

  it('a segment damaged while the agent runs: the loss is counted and depth never promises unreadable records', () => {
    const dir = dirOf();
    const { spool: s, corrupt } = openNoting(dir);
    s.append(lines(5));
    const seg = segments(dir)[0]!;
    flipByte(seg, frameOffset(seg, 2) + V2_HEADER + 1);
    expect(s.read(0, 10).map((r) => r.id)).toEqual([1, 2, 4, 5]);
    expect(corrupt.map(([n]) => n)).toEqual([1]);
    expect(s.stats.depth).toBe(4);
    s.ack(5);
    expect(s.stats.depth).toBe(0);
  });

  it('model: random appends, acks and restarts match an in-memory queue', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant('append' as const), n: fc.integer({ min: 1, max: 5 }) }),
            fc.record({ op: fc.constant('ack' as const), n: fc.integer({ min: 0, max: 6 }) }),
            fc.record({ op: fc.constant('restart' as const), n: fc.constant(0) }),
          ),
          { maxLength: 30 },
        ),
        (ops) => {
          const dir = dirOf();
          let s = Spool.open({ dir, maxBytes: 1 << 20, segmentBytes: 256 });
          const model: { id: number; line: string }[] = [];
          let next = 1;
          for (const { op, n } of ops) {
            if (op === 'append') {
              const ls = Array.from({ length: n }, (_, i) => ({
                line: `l${next + i}`,
                timestampMs: NOW,
              }));
              s.append(ls);
              for (let i = 0; i < n; i++) model.push({ id: next + i, line: `l${next + i}` });
              next += n;
            } else if (op === 'ack') {
              const upTo = model[Math.min(n, model.length) - 1]?.id;
              if (upTo !== undefined) {
                s.ack(upTo);
                while (model.length && model[0]!.id <= upTo) model.shift();
              }
            } else {
              s.close();
              s = Spool.open({ dir, maxBytes: 1 << 20, segmentBytes: 256 });
            }
            expect(s.read(0, 1000).map((r) => ({ id: r.id, line: r.line }))).toEqual(model);
            expect(s.stats.depth).toBe(model.length);
          }
          s.close();
          rmSync(dir, { recursive: true, force: true });
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('segment reader under arbitrary corruption (fast-check)', () => {
  const FIRST = 1_000;
  // Record lines as the agent writes them: printable text, no NUL (format/codec.ts).
  const recordArb = fc.record({
    line: fc.string({ minLength: 0, maxLength: 60, unit: 'grapheme' }),
    timestampMs: fc.integer({ min: 0, max: 2 ** 45 }),
  });
  type Damage =
    | { kind: 'overwrite'; at: number; bytes: number[] }
    | { kind: 'insert'; at: number; bytes: number[] }
    | { kind: 'delete'; at: number; length: number }
    | { kind: 'truncate'; at: number };
  const damageArb: fc.Arbitrary<Damage> = fc.oneof(
    fc.record({
      kind: fc.constant('overwrite' as const),
      at: fc.nat(),
      bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 12 }),
    }),
    fc.record({
      kind: fc.constant('insert' as const),
      at: fc.nat(),
      bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 40 }),
    }),
    fc.record({
      kind: fc.constant('delete' as const),
      at: fc.nat(),
      length: fc.integer({ min: 1, max: 30 }),
    }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  );

  /**
   * Applies the damage to the segment, tracking each frame's byte range as
   * bytes move; a frame any damage touched is "overlapped".
   */
  function damage(frames: Buffer[], damages: Damage[]) {
    let buf = Buffer.concat(frames);
    const spans: { start: number; end: number; hit: boolean }[] = [];
    let o = 0;
    for (const f of frames) {
      spans.push({ start: o, end: o + f.length, hit: false });
      o += f.length;
    }
    for (const d of damages) {
      if (buf.length === 0) break;
      const at = d.at % (buf.length + (d.kind === 'insert' ? 1 : 0));
      if (d.kind === 'overwrite') {
        const end = Math.min(buf.length, at + d.bytes.length);
        for (let i = at; i < end; i++) buf[i] = d.bytes[i - at]!;
        for (const s of spans) if (s.start < end && at < s.end) s.hit = true;
      } else if (d.kind === 'insert') {
        buf = Buffer.concat([buf.subarray(0, at), Buffer.from(d.bytes), buf.subarray(at)]);
        for (const s of spans) {
          if (at > s.start && at < s.end) s.hit = true;
          if (s.start >= at) {
            s.start += d.bytes.length;
            s.end += d.bytes.length;
          } else if (s.end > at) s.end += d.bytes.length;
        }
      } else if (d.kind === 'delete') {
        const end = Math.min(buf.length, at + d.length);
        buf = Buffer.concat([buf.subarray(0, at), buf.subarray(end)]);
        const n = end - at;
        for (const s of spans) {
          if (s.start < end && at < s.end) s.hit = true;
          if (s.start >= end) {
            s.start -= n;
            s.end -= n;
          }
        }
      } else {
        buf = buf.subarray(0, at);
        for (const s of spans) if (s.end > at) s.hit = true;
      }
    }
    return { buf, intact: spans.map((s) => !s.hit) };
  }

  it('never throws, never invents a record, and never loses an intact frame that no damage overlapped', () => {
    fc.assert(
      fc.property(
        fc.array(recordArb, { minLength: 1, maxLength: 25 }),
        fc.array(damageArb, { minLength: 0, maxLength: 4 }),
        (records, damages) => {
          const want: FramedRecord[] = records.map((r, i) => ({ ...r, id: FIRST + i }));
          const frames = want.map((r) => encodeFrame(r, r.id));
          const { buf, intact } = damage(frames, damages);
          const parsed = parseSegmentV2(buf, FIRST);
          const byId = new Map(parsed.records.map((r) => [r.id, r]));
          // No invented records: each one read is a record written, unchanged.
          for (const r of parsed.records) expect(r).toEqual(want[r.id - FIRST]);
          // Every intact frame is read.
          want.forEach((r, i) => {
            if (intact[i]) expect(byId.get(r.id)).toEqual(r);
          });
          // The ids missing between intact frames are exactly the records not read there.
          const gaps = new GapCounter(FIRST);
          for (const r of parsed.records) gaps.add(r);
          const lastRead = parsed.records.at(-1)?.id ?? FIRST - 1;
          const notRead = want.filter((r) => r.id <= lastRead && !byId.has(r.id)).length;
          expect(gaps.count).toBe(notRead);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('undamaged segments read back whole', () => {
    fc.assert(
      fc.property(fc.array(recordArb, { maxLength: 30 }), (records) => {
        const want = records.map((r, i) => ({ ...r, id: FIRST + i }));
        const buf = Buffer.concat(want.map((r) => encodeFrame(r, r.id)));
        const parsed = parseSegmentV2(buf, FIRST);
        expect(parsed.records).toEqual(want);
        expect(parsed.goodEnd).toBe(buf.length);
        expect(parsed.skippedBytes).toBe(0);
      }),
    );
  });
});
