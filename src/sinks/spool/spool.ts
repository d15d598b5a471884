/**
 * The disk spool: records are written here before they are sent, and
 * acknowledged only after CloudWatch accepted them, so an outage or a crash
 * loses nothing.
 *
 * Invariants
 * - Records get consecutive ids from 1, carried in each frame; the ack file
 *   holds the highest id delivered. Records with id > ack are replayed, in id
 *   order, after a restart: at-least-once, and a crash repeats at most what
 *   was in flight.
 * - append() returns only after the bytes are fsynced (one fsync per append:
 *   the agent appends once per flush interval, so this is rare). An append
 *   that fails (ENOSPC, EIO, a read-only remount) leaves the spool as it was:
 *   the segment is truncated back to its last good frame (if even that fails,
 *   the segment is sealed and the next append starts a new one), no id is
 *   consumed, and SpoolWriteError names the errno: the caller counts those
 *   records as lost.
 * - `stats.depth` counts the intact records waiting, so whenever it is above
 *   zero read() returns records: a sender can never wait for records that
 *   cannot be read.
 * - The spool never holds more than maxBytes: when an append would exceed it,
 *   the oldest segments are dropped first, and the dropped records counted.
 *
 * Format: see frames.ts (segment files `<first id, 20 digits>.seg2`, legacy
 * `.seg` still read). The ack file `ack` is text, replaced atomically (write,
 * fsync, rename); if it cannot be written (a full disk) the ack is kept in
 * memory and written at the next chance: a crash meanwhile repeats records,
 * never loses them.
 *
 * Recovery: damage inside a segment is skipped to the next intact frame
 * (frames.ts), so every intact record is delivered; the records lost are the
 * ids missing between intact frames, counted exactly (onCorrupt, with the
 * time between their intact neighbours). A damaged tail of the newest
 * segment cannot be told from a write torn by a crash (an append that never
 * returned, whose records were never acknowledged to the caller): it is cut
 * and logged with its size, not counted.
 */
import {
  closeSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
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
import { FlowtrailError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import type { EncodedRecord } from '../types.js';
import {
  encodeFrame,
  type FramedRecord,
  GapCounter,
  type ParsedSegment,
  parseSegment,
  type SegmentVersion,
} from './frames.js';

export interface SpoolOptions {
  dir: string;
  maxBytes: number;
  /** A new segment starts past this size (default 8 MiB). */
  segmentBytes?: number;
  logger?: Logger;
  /** Called when a full spool drops undelivered records: how many, and their time range (ms). */
  onDrop?: (count: number, fromMs: number, toMs: number) => void;
  /** Called when records were lost to damaged segment bytes: how many, and the time between their intact neighbours (ms). */
  onCorrupt?: (count: number, fromMs: number, toMs: number) => void;
}

export type SpooledRecord = FramedRecord;

export interface SpoolStats {
  /** Intact records waiting for acknowledgement. */
  depth: number;
  bytes: number;
  segments: number;
  appended: number;
  acked: number;
  /** Records dropped because the spool was full. */
  droppedFull: number;
  /** Records lost to damaged segment bytes (ids missing between intact frames). */
  droppedCorrupt: number;
  tornBytesCut: number;
  /** Appends that failed (nothing of them was kept). */
  writeFailures: number;
}

/** The spool directory cannot be created, read or written. */
export class SpoolError extends FlowtrailError {
  readonly errno: string;
  constructor(
    code: string,
    message: string,
    context: { path: string; errno: string },
    cause?: unknown,
  ) {
    super(code, message, context, { cause });
    this.errno = context.errno;
  }
}

/** An append that failed; nothing of it was kept. */
export class SpoolWriteError extends SpoolError {
  readonly records: number;
  constructor(path: string, errno: string, records: number, cause: unknown) {
    super(
      'ERR_SPOOL_WRITE',
      `spool: cannot write ${records} records to ${path} (${errno})`,
      { path, errno },
      cause,
    );
    this.records = records;
  }
}

export function errnoOf(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : 'EIO';
}

interface Segment {
  readonly firstId: number;
  readonly version: SegmentVersion;
  readonly path: string;
  /** Intact records in it. */
  count: number;
  /** Highest intact id in it (firstId - 1 when none). */
  lastId: number;
  /** Bytes in use: the file is never read past them. */
  bytes: number;
  /** A failed write could not be cut back: nothing more is appended to it. */
  sealed?: boolean;
}

const NAME = /^(\d{20})\.seg(2?)$/;
const segmentName = (firstId: number) => `${String(firstId).padStart(20, '0')}.seg2`;

export class Spool {
  private readonly segments: Segment[] = [];
  private ackedId = 0;
  private ackDirty = false;
  private nextId = 1;
  readonly stats: SpoolStats = {
    depth: 0,
    bytes: 0,
    segments: 0,
    appended: 0,
    acked: 0,
    droppedFull: 0,
    droppedCorrupt: 0,
    tornBytesCut: 0,
    writeFailures: 0,
  };

  private constructor(
    private readonly o: Required<Pick<SpoolOptions, 'dir' | 'maxBytes' | 'segmentBytes'>> &
      SpoolOptions,
  ) {}

  /** Opens (and recovers) the spool in `dir`; SpoolError names the path and errno when it cannot. */
  static open(options: SpoolOptions): Spool {
    // Room is made by dropping whole segments: keep several within maxBytes.
    const segmentBytes = Math.max(
      64 * 1024,
      Math.min(8 * 1024 * 1024, Math.floor(options.maxBytes / 8)),
    );
    const spool = new Spool({ segmentBytes, ...options });
    try {
      spool.recover();
    } catch (err) {
      if (err instanceof SpoolError) throw err;
      throw new SpoolError(
        'ERR_SPOOL_DIR',
        `spool.dir ${options.dir}: cannot recover the spool (${errnoOf(err)}: ${(err as Error).message})`,
        { path: options.dir, errno: errnoOf(err) },
        err,
      );
    }
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
    let gaps: GapCounter | undefined;
    names.forEach((name, index) => {
      const m = NAME.exec(name)!;
      const path = join(this.o.dir, name);
      const firstId = Number(m[1]);
      const version: SegmentVersion = m[2] ? 2 : 1;
      const buf = readFileSync(path);
      const parsed = parseSegment(buf, firstId, version);
      gaps ??= new GapCounter(Math.max(firstId, this.ackedId + 1));
      for (const r of parsed.records) gaps.add(r);
      const newest = index === names.length - 1;
      if (parsed.skippedBytes > 0) {
        this.o.logger?.error(
          { path, skippedBytes: parsed.skippedBytes },
          'spool: damaged bytes inside a segment skipped; the intact records after them are kept',
        );
      }
      let bytes = buf.length;
      if (parsed.goodEnd < buf.length) {
        if (newest) {
          truncateSync(path, parsed.goodEnd);
          this.stats.tornBytesCut += buf.length - parsed.goodEnd;
          bytes = parsed.goodEnd;
          this.o.logger?.warn(
            { path, cutBytes: buf.length - parsed.goodEnd },
            'spool: torn last write cut',
          );
        } else {
          this.o.logger?.error(
            { path, damagedBytes: buf.length - parsed.goodEnd },
            'spool: damaged segment tail; records missing from it are counted as lost',
          );
        }
      }
      const lastId = parsed.records.at(-1)?.id ?? firstId - 1;
      const seg: Segment = { firstId, version, path, count: parsed.records.length, lastId, bytes };
      if (seg.lastId <= this.ackedId && !newest) {
        rmSync(path, { force: true });
        return;
      }
      this.segments.push(seg);
      this.nextId = Math.max(this.nextId, seg.lastId + 1, firstId);
    });
    // Ids of older segments that never came: their frames were damaged.
    const newestFirst = this.segments.at(-1)?.firstId;
    if (gaps && newestFirst !== undefined) gaps.end(newestFirst - 1);
    if (gaps && gaps.count > 0) this.noteCorrupt(gaps.count, gaps.fromMs, gaps.toMs);
    // Ack beyond the end (e.g. segments lost): start after it.
    this.nextId = Math.max(this.nextId, this.ackedId + 1);
    // A newest segment already delivered in full is not reopened (nor a legacy one).
    const newest = this.segments.at(-1);
    if (newest && newest.lastId <= this.ackedId) {
      rmSync(newest.path, { force: true });
      this.segments.pop();
    }
    this.refreshStats();
    this.stats.depth = this.countBetween(this.ackedId, Number.POSITIVE_INFINITY);
    // A spool left larger than the bound (spool.maxBytes lowered): trim it now, counted.
    this.makeRoom(0);
  }

  private noteCorrupt(count: number, fromMs: number | undefined, toMs: number | undefined): void {
    this.stats.droppedCorrupt += count;
    const from = fromMs ?? toMs ?? Date.now();
    this.o.logger?.error(
      { lost: count, fromMs: from, toMs: toMs ?? from, dir: this.o.dir },
      'spool: records lost to damaged segment bytes',
    );
    this.o.onCorrupt?.(count, from, toMs ?? from);
  }

  private refreshStats(): void {
    let bytes = 0;
    for (const s of this.segments) bytes += s.bytes;
    this.stats.bytes = bytes;
    this.stats.segments = this.segments.length;
  }

  /** Intact records with ids in (fromId, toId]: whole segments by their count, the edges parsed. */
  private countBetween(fromId: number, toId: number): number {
    let n = 0;
    for (const s of this.segments) {
      if (s.lastId <= fromId || s.firstId > toId || s.count === 0) continue;
      if (s.firstId > fromId && s.lastId <= toId) n += s.count;
      else for (const r of this.parsedSegment(s).records) if (r.id > fromId && r.id <= toId) n++;
    }
    return n;
  }

  /**
   * Appends records durably; returns their ids. Throws SpoolWriteError when
   * the bytes could not be written and fsynced: then nothing was kept.
   */
  append(records: readonly EncodedRecord[]): number[] {
    if (records.length === 0) return [];
    const frames = records.map((r, i) => encodeFrame(r, this.nextId + i));
    const size = frames.reduce((n, f) => n + f.length, 0);
    this.makeRoom(size);
    // Opened per append (once per flush interval): no descriptor stays open
    // between appends, so the spool never holds a filesystem busy.
    const seg = this.currentSegment();
    let fd: number;
    try {
      fd = openSync(seg.path, 'a');
    } catch (err) {
      this.stats.writeFailures++;
      throw new SpoolWriteError(this.o.dir, errnoOf(err), records.length, err);
    }
    if (seg !== this.segments.at(-1)) this.segments.push(seg);
    const data = Buffer.concat(frames, size);
    try {
      this.cutStrayTail(fd, seg);
      let written = 0;
      while (written < data.length) written += writeSync(fd, data, written);
      fsyncSync(fd);
    } catch (err) {
      this.undoAppend(fd, seg, records.length, err);
      throw new SpoolWriteError(this.o.dir, errnoOf(err), records.length, err);
    } finally {
      try {
        closeSync(fd);
      } catch {}
    }
    const ids = records.map((_, i) => this.nextId + i);
    seg.count += records.length;
    seg.bytes += size;
    seg.lastId = ids.at(-1)!;
    this.nextId += records.length;
    this.stats.appended += records.length;
    this.stats.depth += records.length;
    if (this.ackDirty) this.writeAck(this.ackedId);
    this.refreshStats();
    return ids;
  }

  /**
   * Bytes after the last frame this spool wrote are not its own (a write
   * torn by someone else, or one this process could not cut back): frames
   * appended after them would be read as damage, so they go first.
   */
  private cutStrayTail(fd: number, seg: Segment): void {
    const size = fstatSync(fd).size;
    if (size === seg.bytes) return;
    this.o.logger?.warn(
      { path: seg.path, strayBytes: size - seg.bytes },
      'spool: bytes after the last good frame cut before appending',
    );
    this.stats.tornBytesCut += Math.max(0, size - seg.bytes);
    ftruncateSync(fd, seg.bytes);
  }

  /** The segment the next frames go to: the newest, or a new one (not yet listed) when it is full, sealed or legacy. */
  private currentSegment(): Segment {
    const last = this.segments.at(-1);
    if (last && !last.sealed && last.bytes < this.o.segmentBytes && last.version === 2) return last;
    return {
      firstId: this.nextId,
      version: 2,
      path: join(this.o.dir, segmentName(this.nextId)),
      count: 0,
      lastId: this.nextId - 1,
      bytes: 0,
    };
  }

  /**
   * After a failed write: cut the segment back to its last good frame. If
   * even that fails (a read-only remount), seal it: nothing more goes into
   * it, it is never read past its last good frame while running, and the
   * ids of the failed append are never reused (should the disk have kept
   * some of its frames, a restart delivers them: at-least-once).
   */
  private undoAppend(fd: number, seg: Segment, records: number, err: unknown): void {
    this.stats.writeFailures++;
    try {
      ftruncateSync(fd, seg.bytes);
      return;
    } catch (truncErr) {
      this.o.logger?.error(
        { path: seg.path, err: errnoOf(err), truncate: errnoOf(truncErr) },
        'spool: cannot cut a failed write back; sealing the segment (the next append starts a new one)',
      );
    }
    seg.sealed = true;
    this.nextId += records;
  }

  private segmentFileBytes(seg: Segment): number {
    try {
      return statSync(seg.path).size;
    } catch {
      return 0;
    }
  }

  private makeRoom(incoming: number): void {
    while (this.segments.length > 1 && this.stats.bytes + incoming > this.o.maxBytes) {
      const oldest = this.segments[0]!;
      const lost = this.unacked(oldest);
      this.stats.droppedFull += lost.length;
      this.stats.depth -= lost.length;
      if (lost.length > 0) this.reportDrop(lost);
      this.segments.shift();
      this.cache = this.cache.filter((c) => c.path !== oldest.path);
      rmSync(oldest.path, { force: true });
      if (oldest.lastId > this.ackedId) this.writeAck(oldest.lastId);
      this.o.logger?.error(
        { dropped: lost.length, setting: 'spool.maxBytes', maxBytes: this.o.maxBytes },
        'spool full: oldest undelivered records dropped',
      );
      this.refreshStats();
    }
  }

  private unacked(seg: Segment): FramedRecord[] {
    if (seg.lastId <= this.ackedId) return [];
    try {
      return this.parsedSegment(seg).records.filter((r) => r.id > this.ackedId);
    } catch {
      // Unreadable: the count is what recovery or the appends saw.
      return Array.from({ length: seg.count }, (_, i) => ({
        id: seg.lastId - i,
        line: '',
        timestampMs: Number.NaN,
      }));
    }
  }

  /** The count and time range of undelivered records a full spool drops. */
  private reportDrop(lost: readonly FramedRecord[]): void {
    let from = Number.POSITIVE_INFINITY;
    let to = Number.NEGATIVE_INFINITY;
    for (const r of lost) {
      if (r.timestampMs < from) from = r.timestampMs;
      if (r.timestampMs > to) to = r.timestampMs;
    }
    // Unreadable: the window is unknown, the count is still reported.
    if (!Number.isFinite(from)) from = to = Date.now();
    this.o.onDrop?.(lost.length, from, to);
  }

  /** Up to `limit` unacknowledged records after `afterId`, in id order. */
  read(afterId: number, limit: number): SpooledRecord[] {
    const from = Math.max(afterId, this.ackedId) + 1;
    const out: SpooledRecord[] = [];
    for (const seg of this.segments) {
      if (seg.lastId < from) continue;
      const records = this.parsedSegment(seg).records;
      for (let i = 0; i < records.length && out.length < limit; i++) {
        if (records[i]!.id >= from) out.push(records[i]!);
      }
      if (out.length >= limit) break;
    }
    this.settle();
    return out;
  }

  // The sender reads a segment batch by batch: parse it once, not once per
  // batch. Two entries: a batch that spans two segments (and its ack, which
  // counts in both) must not parse each of them again (measured: one entry
  // cost ~25 % more CPU per delivered record in bench:delivery).
  private cache: { path: string; bytes: number; parsed: ParsedSegment }[] = [];

  private parsedSegment(seg: Segment): ParsedSegment {
    const hit = this.cache.find((c) => c.path === seg.path && c.bytes === seg.bytes);
    if (hit) return hit.parsed;
    const buf = readFileSync(seg.path);
    const parsed = parseSegment(
      buf.subarray(0, Math.min(buf.length, seg.bytes)),
      seg.firstId,
      seg.version,
    );
    if (parsed.records.length < seg.count) this.lostAtRuntime(seg, parsed);
    this.cache = [{ path: seg.path, bytes: seg.bytes, parsed }, ...this.cache.slice(0, 1)];
    return parsed;
  }

  /**
   * A segment read back with fewer intact records than it held (damaged
   * while the agent ran): the missing ones are counted, and the books set to
   * what is there, so depth never promises records that cannot be read.
   */
  private lostAtRuntime(seg: Segment, parsed: ParsedSegment): void {
    const lost = seg.count - parsed.records.length;
    seg.count = parsed.records.length;
    seg.lastId = parsed.records.at(-1)?.id ?? seg.firstId - 1;
    let from: number | undefined;
    let to: number | undefined;
    for (const r of parsed.records) {
      from = from === undefined ? r.timestampMs : Math.min(from, r.timestampMs);
      to = to === undefined ? r.timestampMs : Math.max(to, r.timestampMs);
    }
    this.noteCorrupt(lost, from, to);
    this.depthStale = true;
  }

  /** Depth from the segments again, after a runtime loss changed their counts. */
  private settle(): void {
    if (!this.depthStale) return;
    this.depthStale = false;
    this.stats.depth = this.countBetween(this.ackedId, Number.POSITIVE_INFINITY);
  }

  private depthStale = false;

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
    const delivered = this.countBetween(this.ackedId, upTo);
    this.writeAck(upTo);
    this.stats.acked += delivered;
    this.stats.depth -= delivered;
    while (this.segments.length > 1) {
      const s = this.segments[0]!;
      if (s.lastId > this.ackedId) break;
      try {
        rmSync(s.path, { force: true });
      } catch (err) {
        this.o.logger?.warn(
          { path: s.path, err: errnoOf(err) },
          'spool: cannot remove a delivered segment',
        );
        break;
      }
      this.segments.shift();
    }
    this.refreshStats();
    this.settle();
  }

  /** Records the ack durably; if the file cannot be written, it is kept in memory and retried. */
  private writeAck(id: number): void {
    this.ackedId = id;
    const tmp = `${this.ackPath}.tmp`;
    try {
      writeFileSync(tmp, `${id}\n`);
      const fd = openSync(tmp, 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.ackPath);
      this.ackDirty = false;
    } catch (err) {
      if (!this.ackDirty) {
        this.o.logger?.warn(
          { path: this.ackPath, err: errnoOf(err) },
          'spool: cannot write the ack file; a restart before it is written repeats delivered records',
        );
      }
      this.ackDirty = true;
    }
  }

  close(): void {
    if (this.ackDirty) this.writeAck(this.ackedId);
  }

  /** Size on disk (for tests and doctor). */
  diskBytes(): number {
    return this.segments.reduce((n, s) => n + this.segmentFileBytes(s), 0);
  }
}
