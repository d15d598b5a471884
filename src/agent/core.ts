/**
 * The agent's loop, independent of where events come from and where records
 * go: capture feeds the flow table as batches arrive; on every flush interval
 * the agent takes a conntrack dump (the current counters of open
 * connections), closes the interval, encodes the records and hands them to
 * every sink. On stop it flushes the partial interval, so a rolling restart
 * loses no counts.
 *
 * Concrete parts (netlink listeners, the flow table, sinks) are passed in
 * through the narrow interfaces below, which keeps this file testable without
 * root and free of I/O of its own.
 */
import type { ConntrackEvent } from '../conntrack/types.js';
import type { FlowRecord } from '../format/record.js';
import type { NflogPacket } from '../nflog/types.js';
import type { EncodedRecord, Sink } from '../sinks/types.js';
import type { Logger } from '../util/log.js';
import { FlushClock, type FlushInterval } from './flush-clock.js';

export interface FlowTablePort {
  /** One conntrack event; the table keeps nothing of `ev` (it may be a reused decoder view). */
  onConntrackEvent(ev: ConntrackEvent, nowMs: number): void;
  onNflog(packets: readonly NflogPacket[], nowMs: number): void;
  /** A dump, fed entry by entry: begin, every entry, then end (only when it completed). */
  beginDump(): void;
  onDumpEvent(ev: ConntrackEvent, nowMs: number): void;
  endDump(nowMs: number): void;
  flush(startMs: number, endMs: number): readonly FlowRecord[];
}

export interface CapturePort {
  /** Starts delivering events and packets; the agent core takes the start-up dump next. */
  start(handlers: {
    /**
     * Each conntrack event as it is decoded. `ev` is valid only during the
     * call (the decoder reuses it for the next event, see
     * ConntrackEventView): read it, or keep a copy.
     */
    conntrackEvent(ev: ConntrackEvent): void;
    nflog(packets: readonly NflogPacket[]): void;
    /** The conntrack event socket overran (ENOBUFS): events were lost, the core resyncs. */
    overrun(): void;
  }): Promise<void>;
  /**
   * A conntrack dump streamed entry by entry (reused views); resolves with
   * the count. Every event queued before a dump batch was generated is
   * delivered before that batch, so no entry is younger than an event not
   * yet read (the flow table relies on it to place reopened 5-tuples).
   */
  dumpInto(onEvent: (ev: ConntrackEvent) => void): Promise<number>;
  close(): Promise<void>;
}

export interface AgentCoreOptions {
  table: FlowTablePort;
  capture: CapturePort;
  sinks: readonly Sink[];
  encode(record: FlowRecord): string;
  flushIntervalMs: number;
  now(): number;
  logger: Logger;
  /**
   * Called after a flush whose records every sink took, before onFlushed:
   * the one point where the flow table's baselines may be saved. After a
   * flush some sink did not take (a full spool disk), it is not called, so
   * saved baselines never move past records that were not kept, and a
   * restart reports those deltas again.
   */
  onCommitted?(interval: FlushInterval): void;
  /** Called after each flush with what was written and which sinks failed to take it. */
  onFlushed?(
    interval: FlushInterval,
    records: readonly FlowRecord[],
    outcome: FlushOutcome,
  ): void | Promise<void>;
  /** Denied NFLOG packets are counted for the DeniedPackets metric as they arrive. */
  onPackets?(packets: readonly NflogPacket[]): void;
  /**
   * Where the first interval begins (ms): the end of the last interval a
   * previous run reported (restored baselines), so that intervals stay
   * contiguous across a restart and what happened in between is reported
   * in the first one. Default: the start.
   */
  resumeFromMs?: number;
}

export interface FlushOutcome {
  /** Names of the sinks whose write rejected (their records were not kept). */
  readonly failedSinks: readonly string[];
}

export interface AgentStats {
  flushes: number;
  /** Dumps taken after an overrun of the event socket (besides the one before each flush). */
  resyncs: number;
  /** When a conntrack dump last succeeded (the capture liveness signal). */
  lastDumpOkMs: number | undefined;
  recordsWritten: number;
  flushErrors: number;
  lastFlushMs: number | undefined;
}

export class AgentCore {
  private clock: FlushClock | undefined;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  /** The dump running or last run: dumps are taken one at a time. */
  private dumps: Promise<unknown> = Promise.resolve();
  private resyncQueued = false;
  private stopped = false;
  readonly stats: AgentStats = {
    flushes: 0,
    resyncs: 0,
    lastDumpOkMs: undefined,
    recordsWritten: 0,
    flushErrors: 0,
    lastFlushMs: undefined,
  };

  constructor(private readonly o: AgentCoreOptions) {}

  async start(): Promise<void> {
    for (const sink of this.o.sinks) await sink.start();
    const { table, now } = this.o;
    await this.o.capture.start({
      conntrackEvent: (ev) => table.onConntrackEvent(ev, now()),
      nflog: (packets) => {
        table.onNflog(packets, now());
        this.o.onPackets?.(packets);
      },
      overrun: () => this.resync(),
    });
    // Connections that existed before the listener never emit NEW: seed them.
    const connections = await this.exclusive(() => this.dumpIntoTable());
    const startMs = now();
    const resume = this.o.resumeFromMs;
    this.clock = new FlushClock(
      resume !== undefined && resume <= startMs ? resume : startMs,
      this.o.flushIntervalMs,
    );
    this.o.logger.info(
      {
        connections,
        flushIntervalMs: this.o.flushIntervalMs,
        sinks: this.o.sinks.map((s) => s.name),
      },
      'agent started',
    );
    this.schedule();
  }

  /**
   * A dump after the event socket overran (events were lost): open
   * connections it missed are found, and those that ended unseen are ended.
   * One dump at a time; an overrun during one asks for another after it.
   * Before the start-up dump there is nothing to do: that dump covers it.
   */
  private resync(): void {
    if (this.stopped || !this.clock) return;
    if (this.resyncQueued) return;
    this.resyncQueued = true;
    void this.exclusive(async () => {
      this.resyncQueued = false;
      if (this.stopped) return;
      try {
        await this.dumpIntoTable();
        this.stats.resyncs++;
      } catch (err) {
        this.o.logger.warn({ err }, 'resync dump failed; the next flush dumps again');
      }
    });
  }

  /** Runs `task` after every dump before it: dumps never interleave in the table. */
  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.dumps.then(task);
    this.dumps = run.catch(() => {});
    return run;
  }

  private schedule(): void {
    if (this.stopped || !this.clock) return;
    this.timer = setTimeout(() => {
      this.flushing = this.flushOnce().finally(() => this.schedule());
    }, this.clock.delayUntilDue(this.o.now()));
  }

  /** One flush: dump, close the interval, encode, write to every sink. */
  async flushOnce(): Promise<void> {
    if (!this.clock) return;
    const { table, now, logger } = this.o;
    await this.exclusive(() =>
      this.dumpIntoTable().catch((err: unknown) =>
        logger.warn(
          { err },
          'conntrack dump before flush failed; open connections report next interval',
        ),
      ),
    );
    const dumpAt = now();
    const interval = this.clock.close(dumpAt);
    const records = table.flush(interval.startMs, interval.endMs);
    const lines: EncodedRecord[] = records.map((r) => ({
      line: this.o.encode(r),
      timestampMs: r.endTime * 1000,
    }));
    const results = await Promise.allSettled(this.o.sinks.map((s) => s.write(lines)));
    this.stats.flushes++;
    this.stats.lastFlushMs = dumpAt;
    this.stats.recordsWritten += records.length;
    const failedSinks: string[] = [];
    results.forEach((r, i) => {
      if (r.status === 'rejected') {
        this.stats.flushErrors++;
        failedSinks.push(this.o.sinks[i]?.name ?? String(i));
        logger.error({ err: r.reason, sink: this.o.sinks[i]?.name }, 'sink write failed');
      }
    });
    logger.debug(
      { startMs: interval.startMs, endMs: interval.endMs, records: records.length },
      'flushed interval',
    );
    if (failedSinks.length === 0) this.o.onCommitted?.(interval);
    else
      logger.warn(
        { sinks: failedSinks },
        'interval not committed: a sink did not take its records',
      );
    await this.o.onFlushed?.(interval, records, { failedSinks });
  }

  /**
   * One dump streamed into the table; resolves with its entry count. A
   * failed dump is not ended: an incomplete listing says nothing about which
   * connections ended, and open connections report at the next flush instead.
   */
  private async dumpIntoTable(): Promise<number> {
    const { table, capture, now } = this.o;
    table.beginDump();
    const at = now();
    const n = await capture.dumpInto((ev) => table.onDumpEvent(ev, at));
    this.stats.lastDumpOkMs = now();
    table.endDump(now());
    return n;
  }

  /** Final flush of the partial interval, then close capture and sinks. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.flushing;
    await this.flushOnce();
    await this.o.capture.close();
    for (const sink of this.o.sinks) await sink.close();
    this.o.logger.info({ ...this.stats }, 'agent stopped');
  }
}
