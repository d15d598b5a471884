/**
 * The disk spool: records are written here before they are sent, and
 * acknowledged only after CloudWatch accepted them, so an outage or a crash
 * loses nothing.
 *
 * Invariants
 * - Records get consecutive ids from 1; the ack file holds the highest id
 *   delivered. Records with id > ack are replayed, in id order, after a
 *   restart: at-least-once, and a crash repeats at most what was in flight.
 * - append() resolves only after the bytes are fsynced (one fsync per
 *   append: the agent appends once per flush interval, so this is rare).
 * - The spool never holds more than maxBytes: when an append would exceed it,
 *   the oldest segments are dropped first, and the dropped records counted.
 *
 * Format: segment files `<first id, 20 digits>.seg`, each a sequence of
 * frames `u32le length | u32le crc32(payload) | payload`, payload =
 * `<timestampMs> <record line>` in UTF-8. The ack file `ack` is text, replaced
 * atomically (write, fsync, rename).
 *
 * Recovery: a frame whose length runs past the end of the file, or whose CRC
 * does not match, ends its segment there. In the newest segment that is a torn
 * last write: the file is cut back to the last good frame. In an older one it
 * is corruption: the rest of that segment is counted as lost and logged.
 */
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Logger } from '../../util/log.js';
import type { EncodedRecord } from '../types.js';

export interface SpoolOptions {
  dir: string;
  maxBytes: number;
  /** A new segment starts past this size (default 8 MiB). */
  segmentBytes?: number;
  logger?: Logger;
  /** Called when a full spool drops undelivered records: how many, and their time range (ms). */
  onDrop?: (count: number, fromMs: number, toMs: number) => void;
}

export interface SpooledRecord extends EncodedRecord {
  readonly id: number;
}

export interface SpoolStats {
  /** Records waiting for acknowledgement. */
  depth: number;
  bytes: number;
  segments: number;
  appended: number;
  acked: number;
  /** Records dropped because the spool was full. */
  droppedFull: number;
  /** Records lost to corruption found at recovery (estimated from frames skipped). */
  droppedCorrupt: number;
  tornBytesCut: number;
}

interface Segment {
  readonly firstId: number;
  count: number;
  bytes: number;
  readonly path: string;
}

const HEADER = 8;
const NAME = /^(\d{20})\.seg$/;

function encodeFrame(r: EncodedRecord): Buffer {
  const payload = Buffer.from(`${r.timestampMs} ${r.line}`, 'utf8');
  const frame = Buffer.allocUnsafe(HEADER + payload.length);
  frame.writeUInt32LE(payload.length, 0);
  frame.writeUInt32LE(crc32(payload), 4);
  payload.copy(frame, HEADER);
  return frame;
}

interface Parsed {
  records: EncodedRecord[];
  goodBytes: number;
  /** True when the data ended with a bad or partial frame. */
  damaged: boolean;
}

function parseFrames(buf: Buffer): Parsed {
  const records: EncodedRecord[] = [];
  let o = 0;
  while (buf.length - o >= HEADER) {
    const len = buf.readUInt32LE(o);
    if (len > buf.length - o - HEADER) return { records, goodBytes: o, damaged: true };
    const payload = buf.subarray(o + HEADER, o + HEADER + len);
    if (crc32(payload) !== buf.readUInt32LE(o + 4)) return { records, goodBytes: o, damaged: true };
    const text = payload.toString('utf8');
    const sp = text.indexOf(' ');
    const ts = Number(text.slice(0, sp));
    if (sp <= 0 || !Number.isFinite(ts)) return { records, goodBytes: o, damaged: true };
    records.push({ timestampMs: ts, line: text.slice(sp + 1) });
    o += HEADER + len;
  }
  return { records, goodBytes: o, damaged: o !== buf.length };
}

export class Spool {
  private readonly segments: Segment[] = [];
  private ackedId = 0;
  private nextId = 1;
  private fd: number | undefined;
  readonly stats: SpoolStats = {
    depth: 0,
    bytes: 0,
    segments: 0,
    appended: 0,
    acked: 0,
    droppedFull: 0,
    droppedCorrupt: 0,
    tornBytesCut: 0,
  };

  private constructor(
    private readonly o: Required<Omit<SpoolOptions, 'logger' | 'onDrop'>> &
      Pick<SpoolOptions, 'logger' | 'onDrop'>,
  ) {}

  static open(options: SpoolOptions): Spool {
    // Room is made by dropping whole segments: keep several within maxBytes.
    const segmentBytes = Math.max(
      64 * 1024,
      Math.min(8 * 1024 * 1024, Math.floor(options.maxBytes / 8)),
    );
    const spool = new Spool({ segmentBytes, ...options });
    spool.recover();
    return spool;
  }

  private get ackPath(): string {
    return join(this.o.dir, 'ack');
  }

  private recover(): void {
    mkdirSync(this.o.dir, { recursive: true });
    try {
      const text = readFileSync(this.ackPath, 'utf8').trim();
      if (/^\d+$/.test(text)) this.ackedId = Number(text);
      else
        this.o.logger?.warn(
          { dir: this.o.dir },
          'spool ack file unreadable; replaying every spooled record',
        );
    } catch {
      // No ack file: nothing delivered yet.
    }
    const names = readdirSync(this.o.dir)
      .filter((n) => NAME.test(n))
      .sort();
    names.forEach((name, index) => {
      const path = join(this.o.dir, name);
      const firstId = Number(NAME.exec(name)![1]);
      const buf = readFileSync(path);
      const parsed = parseFrames(buf);
      const last = index === names.length - 1;
      if (parsed.damaged) {
        if (last) {
          truncateSync(path, parsed.goodBytes);
          this.stats.tornBytesCut += buf.length - parsed.goodBytes;
          this.o.logger?.warn(
            { path, cutBytes: buf.length - parsed.goodBytes },
            'spool: torn last write cut',
          );
        } else {
          // Unknown how many records the damaged tail held: count at least one.
          this.stats.droppedCorrupt++;
          this.o.logger?.error(
            { path, goodBytes: parsed.goodBytes },
            'spool: corrupt segment; records after the damage are lost',
          );
        }
      }
      const seg: Segment = { firstId, count: parsed.records.length, bytes: parsed.goodBytes, path };
      if (seg.firstId + seg.count - 1 <= this.ackedId) {
        rmSync(path, { force: true });
        return;
      }
      this.segments.push(seg);
      this.nextId = Math.max(this.nextId, seg.firstId + seg.count);
    });
    // Ack beyond the end (e.g. segments lost): start after it.
    this.nextId = Math.max(this.nextId, this.ackedId + 1);
    this.refreshStats();
    // A spool left larger than the bound (spool.maxBytes lowered): trim it now, counted.
    this.makeRoom(0);
  }

  private refreshStats(): void {
    let bytes = 0;
    for (const s of this.segments) bytes += s.bytes;
    this.stats.bytes = bytes;
    this.stats.segments = this.segments.length;
    this.stats.depth = Math.max(0, this.nextId - 1 - this.ackedId);
  }

  /** Appends records durably; returns their ids. */
  append(records: readonly EncodedRecord[]): number[] {
    if (records.length === 0) return [];
    const frames = records.map(encodeFrame);
    const size = frames.reduce((n, f) => n + f.length, 0);
    this.makeRoom(size);
    let seg = this.segments.at(-1);
    if (!seg || seg.bytes >= this.o.segmentBytes || this.fd === undefined) {
      if (this.fd !== undefined) closeSync(this.fd);
      if (!seg || seg.bytes >= this.o.segmentBytes) {
        seg = {
          firstId: this.nextId,
          count: 0,
          bytes: 0,
          path: join(this.o.dir, `${String(this.nextId).padStart(20, '0')}.seg`),
        };
        this.segments.push(seg);
      }
      this.fd = openSync(seg.path, 'a');
    }
    const data = Buffer.concat(frames, size);
    let written = 0;
    while (written < data.length) written += writeSync(this.fd, data, written);
    fsyncSync(this.fd);
    const ids = records.map((_, i) => this.nextId + i);
    seg.count += records.length;
    seg.bytes += size;
    this.nextId += records.length;
    this.stats.appended += records.length;
    this.refreshStats();
    return ids;
  }

  private makeRoom(incoming: number): void {
    while (this.segments.length > 1 && this.stats.bytes + incoming > this.o.maxBytes) {
      const oldest = this.segments.shift()!;
      const lastId = oldest.firstId + oldest.count - 1;
      const lost = Math.max(0, lastId - Math.max(this.ackedId, oldest.firstId - 1));
      this.stats.droppedFull += lost;
      if (lost > 0 && this.o.onDrop) this.reportDrop(oldest, lost);
      rmSync(oldest.path, { force: true });
      if (lastId > this.ackedId) this.writeAck(lastId);
      this.o.logger?.error(
        { dropped: lost, setting: 'spool.maxBytes', maxBytes: this.o.maxBytes },
        'spool full: oldest undelivered records dropped',
      );
      this.refreshStats();
    }
  }

  /** The time range of the `lost` newest records of a segment about to be removed. */
  private reportDrop(seg: Segment, lost: number): void {
    let from = Number.POSITIVE_INFINITY;
    let to = Number.NEGATIVE_INFINITY;
    try {
      const records = this.parsedSegment(seg).records;
      for (let i = Math.max(0, records.length - lost); i < records.length; i++) {
        const t = records[i]!.timestampMs;
        if (t < from) from = t;
        if (t > to) to = t;
      }
    } catch {
      // Unreadable: the window is unknown, the count is still reported.
    }
    if (!Number.isFinite(from)) from = to = Date.now();
    this.o.onDrop?.(lost, from, to);
  }

  /** Up to `limit` unacknowledged records after `afterId`, in id order. */
  read(afterId: number, limit: number): SpooledRecord[] {
    const from = Math.max(afterId, this.ackedId) + 1;
    const out: SpooledRecord[] = [];
    for (const seg of this.segments) {
      if (seg.firstId + seg.count <= from) continue;
      const parsed = this.parsedSegment(seg);
      for (let i = 0; i < parsed.records.length && out.length < limit; i++) {
        const id = seg.firstId + i;
        if (id >= from) out.push({ ...parsed.records[i]!, id });
      }
      if (out.length >= limit) break;
    }
    return out;
  }

  // The sender reads a segment batch by batch: parse it once, not once per batch.
  private cache: { path: string; bytes: number; parsed: Parsed } | undefined;

  private parsedSegment(seg: Segment): Parsed {
    if (this.cache?.path === seg.path && this.cache.bytes === seg.bytes) return this.cache.parsed;
    const parsed = parseFrames(readFileSync(seg.path).subarray(0, seg.bytes));
    this.cache = { path: seg.path, bytes: seg.bytes, parsed };
    return parsed;
  }

  get acked(): number {
    return this.ackedId;
  }

  get lastId(): number {
    return this.nextId - 1;
  }

  /** Marks every record up to `id` delivered and removes fully delivered segments. */
  ack(id: number): void {
    if (id <= this.ackedId) return;
    const upTo = Math.min(id, this.nextId - 1);
    this.stats.acked += upTo - this.ackedId;
    this.writeAck(upTo);
    while (this.segments.length > 0) {
      const s = this.segments[0]!;
      const isCurrent = this.segments.length === 1;
      if (s.firstId + s.count - 1 > this.ackedId || isCurrent) break;
      rmSync(s.path, { force: true });
      this.segments.shift();
    }
    this.refreshStats();
  }

  private writeAck(id: number): void {
    const tmp = `${this.ackPath}.tmp`;
    writeFileSync(tmp, `${id}\n`);
    const fd = openSync(tmp, 'r');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, this.ackPath);
    this.ackedId = id;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  /** Size on disk (for tests and doctor). */
  diskBytes(): number {
    return this.segments.reduce((n, s) => n + statSync(s.path).size, 0);
  }
}
