/**
 * Spool segment bytes: encoding one frame, and reading a segment back with
 * resynchronisation (pure: buffers in, records out, never throws).
 *
 * Frame (v2, files `<first id>.seg2`):
 *   u32le crc32(bytes 4..end of frame) | u32le payload length |
 *   u32le id low | u32le id high | payload
 * payload = `<timestampMs> <record line>` in UTF-8. The CRC covers the
 * length and the id, so a flipped bit anywhere in a frame fails it.
 *
 * Legacy frame (v1, files `<first id>.seg`, written before the id was in
 * the frame): u32le length | u32le crc32(payload) | payload; a record's id is
 * the segment's first id plus its position. Still read, never written.
 *
 * A bad frame does not end a v2 segment: the reader moves on byte by byte
 * until a frame checks out again (its length fits, its id is above the last
 * one read, its CRC matches), so every intact frame after damage is read,
 * and the records lost are exactly the ids missing between intact frames.
 * Records are UTF-8 text without NUL bytes (see format/codec.ts), so a frame
 * header cannot hide inside a payload; a false match inside garbage needs a
 * CRC-32 collision. In a v1 segment ids are positions, so reading stops at
 * the first bad frame (the ids after it are unknowable).
 */
import { crc32 } from 'node:zlib';
import type { EncodedRecord } from '../types.js';

export const V2_HEADER = 16;
export const V1_HEADER = 8;
const TWO_32 = 2 ** 32;
/** Ids are safe integers: the high word stays below 2^21. */
const MAX_ID_HIGH = 2 ** 21;

export type SegmentVersion = 1 | 2;

export interface FramedRecord extends EncodedRecord {
  readonly id: number;
}

export interface ParsedSegment {
  /** Intact records, ids increasing. */
  records: FramedRecord[];
  /** End offset of the last intact frame: everything after it is damage or a torn write. */
  goodEnd: number;
  /** Bytes skipped before goodEnd (damage between intact frames). */
  skippedBytes: number;
}

export function encodeFrame(r: EncodedRecord, id: number): Buffer {
  const payload = Buffer.from(`${r.timestampMs} ${r.line}`, 'utf8');
  const frame = Buffer.allocUnsafe(V2_HEADER + payload.length);
  frame.writeUInt32LE(payload.length, 4);
  frame.writeUInt32LE(id % TWO_32, 8);
  frame.writeUInt32LE(Math.floor(id / TWO_32), 12);
  payload.copy(frame, V2_HEADER);
  frame.writeUInt32LE(crc32(frame.subarray(4)), 0);
  return frame;
}

/** The v1 frame (tests: segments an older agent left behind). */
export function encodeLegacyFrame(r: EncodedRecord): Buffer {
  const payload = Buffer.from(`${r.timestampMs} ${r.line}`, 'utf8');
  const frame = Buffer.allocUnsafe(V1_HEADER + payload.length);
  frame.writeUInt32LE(payload.length, 0);
  frame.writeUInt32LE(crc32(payload), 4);
  payload.copy(frame, V1_HEADER);
  return frame;
}

function decodePayload(payload: Buffer): EncodedRecord | undefined {
  const text = payload.toString('utf8');
  const sp = text.indexOf(' ');
  if (sp <= 0) return undefined;
  const ts = Number(text.slice(0, sp));
  if (!Number.isFinite(ts)) return undefined;
  return { timestampMs: ts, line: text.slice(sp + 1) };
}

/** The v2 frame at `o` if it checks out, with an id above `afterId`. */
function frameAt(
  buf: Buffer,
  o: number,
  afterId: number,
): { record: FramedRecord; end: number } | undefined {
  if (buf.length - o < V2_HEADER) return undefined;
  const len = buf.readUInt32LE(o + 4);
  if (len > buf.length - o - V2_HEADER) return undefined;
  const high = buf.readUInt32LE(o + 12);
  if (high >= MAX_ID_HIGH) return undefined;
  const id = high * TWO_32 + buf.readUInt32LE(o + 8);
  if (id <= afterId) return undefined;
  const end = o + V2_HEADER + len;
  if (crc32(buf.subarray(o + 4, end)) !== buf.readUInt32LE(o)) return undefined;
  const decoded = decodePayload(buf.subarray(o + V2_HEADER, end));
  return decoded ? { record: { ...decoded, id }, end } : undefined;
}

/** Reads a v2 segment whose first id is `firstId`, resynchronising past damage. */
export function parseSegmentV2(buf: Buffer, firstId: number): ParsedSegment {
  const records: FramedRecord[] = [];
  let lastId = firstId - 1;
  let o = 0;
  let goodEnd = 0;
  let skippedBytes = 0;
  while (buf.length - o >= V2_HEADER) {
    const f = frameAt(buf, o, lastId);
    if (f) {
      skippedBytes += o - goodEnd;
      records.push(f.record);
      lastId = f.record.id;
      o = f.end;
      goodEnd = o;
    } else {
      o++;
    }
  }
  return { records, goodEnd, skippedBytes };
}

/** Reads a legacy v1 segment: ids by position, up to the first bad frame. */
export function parseSegmentV1(buf: Buffer, firstId: number): ParsedSegment {
  const records: FramedRecord[] = [];
  let o = 0;
  while (buf.length - o >= V1_HEADER) {
    const len = buf.readUInt32LE(o);
    if (len > buf.length - o - V1_HEADER) break;
    const payload = buf.subarray(o + V1_HEADER, o + V1_HEADER + len);
    if (crc32(payload) !== buf.readUInt32LE(o + 4)) break;
    const decoded = decodePayload(payload);
    if (!decoded) break;
    records.push({ ...decoded, id: firstId + records.length });
    o += V1_HEADER + len;
  }
  return { records, goodEnd: o, skippedBytes: 0 };
}

export function parseSegment(buf: Buffer, firstId: number, version: SegmentVersion): ParsedSegment {
  return version === 2 ? parseSegmentV2(buf, firstId) : parseSegmentV1(buf, firstId);
}

/**
 * Counts the ids missing from a run of intact records (fed in id order,
 * segment after segment), above `fromId`, with the time span around the gaps
 * (the neighbouring intact records' timestamps): the records corruption lost.
 */
export class GapCounter {
  count = 0;
  fromMs: number | undefined;
  toMs: number | undefined;
  private prevTs: number | undefined;

  constructor(private expected: number) {}

  private note(gap: number, before: number | undefined, after: number | undefined): void {
    if (gap <= 0) return;
    this.count += gap;
    const lo = before ?? after;
    const hi = after ?? before;
    if (lo !== undefined) this.fromMs = this.fromMs === undefined ? lo : Math.min(this.fromMs, lo);
    if (hi !== undefined) this.toMs = this.toMs === undefined ? hi : Math.max(this.toMs, hi);
  }

  add(r: FramedRecord): void {
    if (r.id >= this.expected) {
      this.note(r.id - this.expected, this.prevTs, r.timestampMs);
      this.expected = r.id + 1;
    }
    this.prevTs = r.timestampMs;
  }

  /** Ids up to `lastId` that never came are missing too. */
  end(lastId: number): void {
    this.note(lastId - this.expected + 1, this.prevTs, undefined);
    this.expected = Math.max(this.expected, lastId + 1);
  }
}
