import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AgentCore, type CapturePort, type FlowTablePort } from '../../src/agent/core.js';
import { FlushClock } from '../../src/agent/flush-clock.js';
import type { ConntrackEvent } from '../../src/conntrack/types.js';
import type { FlowRecord } from '../../src/format/record.js';
import type { EncodedRecord, Sink } from '../../src/sinks/types.js';
import { silentLogger } from '../../src/util/log.js';

function record(startTime: number, endTime: number, packets: number): FlowRecord {
  return {
    startTime,
    endTime,
    srcType: 'wep',
    srcNamespace: 'a',
    srcName: 'p',
    srcLabels: '-',
    dstType: 'wep',
    dstNamespace: 'b',
    dstName: 'q',
    dstLabels: '-',
    srcIP: '-',
    dstIP: '-',
    proto: 6,
    srcPort: '-',
    dstPort: 80,
    numFlows: 1,
    numFlowsStarted: 1,
    numFlowsCompleted: 0,
    reporter: 'src',
    packetsIn: packets,
    packetsOut: packets,
    bytesIn: 0,
    bytesOut: 0,
    action: 'allow',
  };
}

/** A flow table that records what it was given and reports one record per flush. */
class FakeTable implements FlowTablePort {
  /** Entries of each completed dump. */
  dumps: number[] = [];
  flushes: [number, number][] = [];
  private entries = 0;
  onConntrackEvent() {}
  onNflog() {}
  beginDump() {
    this.entries = 0;
  }
  onDumpEvent() {
    this.entries++;
  }
  endDump() {
    this.dumps.push(this.entries);
  }
  flush(startMs: number, endMs: number) {
    this.flushes.push([startMs, endMs]);
    return [record(startMs / 1000, endMs / 1000, this.flushes.length)];
  }
}

/** The kernel's table: two connections at start-up, one afterwards. */
class FakeCapture implements CapturePort {
  closed = false;
  dumpFails = false;
  private started = false;
  async start() {}
  async dumpInto(onEvent: (ev: ConntrackEvent) => void) {
    const n = this.started ? 1 : 2;
    this.started = true;
    if (this.dumpFails) throw new Error('ENOBUFS');
    for (let i = 0; i < n; i++) onEvent({} as ConntrackEvent);
    return n;
  }
  async close() {
    this.closed = true;
  }
}

class MemorySink implements Sink {
  readonly name = 'memory';
  lines: EncodedRecord[] = [];
  closed = false;
  fail = false;
  async start() {}
  async write(lines: readonly EncodedRecord[]) {
    if (this.fail) throw new Error('disk full');
    this.lines.push(...lines);
  }
  async close() {
    this.closed = true;
  }
  health() {
    return { healthy: true };
  }
}

describe('flush clock', () => {
  it('makes contiguous whole-second intervals and cuts the last one short', () => {
    const clock = new FlushClock(1_000_500, 10_000);
    expect(clock.delayUntilDue(1_000_500)).toBe(9_500);
    expect(clock.close(1_010_020)).toEqual({ startMs: 1_000_000, endMs: 1_010_000 });
    expect(clock.close(1_013_999)).toEqual({ startMs: 1_010_000, endMs: 1_013_000 });
    // A close before the start never goes backwards.
    expect(clock.close(1_012_000)).toEqual({ startMs: 1_013_000, endMs: 1_013_000 });
  });
});

describe('agent core', () => {
  let now = 0;
  beforeEach(() => {
    vi.useFakeTimers();
    now = 1_700_000_000_000;
    vi.setSystemTime(now);
  });
  afterEach(() => vi.useRealTimers());

  function make(sinks: MemorySink[]) {
    const table = new FakeTable();
    const capture = new FakeCapture();
    const core = new AgentCore({
      table,
      capture,
      sinks,
      encode: (r) => `${r.startTime} ${r.endTime} ${r.packetsIn}`,
      flushIntervalMs: 10_000,
      now: () => Date.now(),
      logger: silentLogger(),
    });
    return { table, capture, core };
  }

  it('seeds the table from the start-up dump and flushes every interval with a fresh dump', async () => {
    const sink = new MemorySink();
    const { table, core } = make([sink]);
    await core.start();
    expect(table.dumps).toEqual([2]);
    await vi.advanceTimersByTimeAsync(10_000);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(table.dumps).toEqual([2, 1, 1]);
    expect(table.flushes).toEqual([
      [now, now + 10_000],
      [now + 10_000, now + 20_000],
    ]);
    expect(sink.lines.map((l) => l.line)).toEqual([
      `${now / 1000} ${now / 1000 + 10} 1`,
      `${now / 1000 + 10} ${now / 1000 + 20} 2`,
    ]);
    // CloudWatch files each event under its record's endTime.
    expect(sink.lines[0]?.timestampMs).toBe(now + 10_000);
  });

  it('flushes the partial interval on stop, then closes capture and sinks', async () => {
    const sink = new MemorySink();
    const { table, capture, core } = make([sink]);
    await core.start();
    await vi.advanceTimersByTimeAsync(4_200);
    await core.stop();
    expect(table.flushes).toEqual([[now, now + 4_000]]);
    expect(capture.closed).toBe(true);
    expect(sink.closed).toBe(true);
    await core.stop(); // idempotent
    expect(table.flushes).toHaveLength(1);
  });

  it('a failing sink does not keep records from the others', async () => {
    const bad = new MemorySink();
    bad.fail = true;
    const good = new MemorySink();
    const { core } = make([bad, good]);
    await core.start();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(good.lines).toHaveLength(1);
    expect(core.stats.flushErrors).toBe(1);
  });

  it('commits an interval (saves baselines) only when every sink took its records, and says which failed', async () => {
    const flaky = new MemorySink();
    const good = new MemorySink();
    const committed: number[] = [];
    const outcomes: string[][] = [];
    const core = new AgentCore({
      table: new FakeTable(),
      capture: new FakeCapture(),
      sinks: [flaky, good],
      encode: (r) => String(r.endTime),
      flushIntervalMs: 10_000,
      now: () => Date.now(),
      logger: silentLogger(),
      onCommitted: (interval) => committed.push(interval.endMs),
      onFlushed: (_interval, _records, outcome) => {
        outcomes.push([...outcome.failedSinks]);
      },
    });
    await core.start();
    await vi.advanceTimersByTimeAsync(10_000);
    flaky.fail = true; // the spool's disk is full for one flush
    await vi.advanceTimersByTimeAsync(10_000);
    flaky.fail = false;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(committed).toEqual([now + 10_000, now + 30_000]);
    expect(outcomes).toEqual([[], ['memory'], []]);
  });

  it('ends a dump only when it completed; resync dumps never run inside another dump', async () => {
    const log: string[] = [];
    const table: FlowTablePort = {
      onConntrackEvent() {},
      onNflog() {},
      beginDump: () => log.push('begin'),
      onDumpEvent: () => log.push('entry'),
      endDump: () => log.push('end'),
      flush: () => [],
    };
    let fail = false;
    let overrun = (): void => {};
    const capture: CapturePort = {
      start: async (handlers) => {
        overrun = handlers.overrun;
      },
      dumpInto: async (onEvent) => {
        onEvent({} as ConntrackEvent);
        await new Promise((r) => setTimeout(r, 100));
        onEvent({} as ConntrackEvent);
        if (fail) throw new Error('EINTR');
        return 2;
      },
      close: async () => {},
    };
    const core = new AgentCore({
      table,
      capture,
      sinks: [new MemorySink()],
      encode: () => '',
      flushIntervalMs: 10_000,
      now: () => Date.now(),
      logger: silentLogger(),
    });
    const started = core.start();
    await vi.advanceTimersByTimeAsync(100);
    await started;
    expect(log).toEqual(['begin', 'entry', 'entry', 'end']);
    log.length = 0;
    await vi.advanceTimersByTimeAsync(9_950);
    // Overruns while the flush dump runs: one resync after it, not inside it.
    overrun();
    overrun();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(log).toEqual([
      ...['begin', 'entry', 'entry', 'end'],
      ...['begin', 'entry', 'entry', 'end'],
    ]);
    expect(core.stats.resyncs).toBe(1);
    fail = true;
    log.length = 0;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(log).toEqual(['begin', 'entry', 'entry']);
    await vi.advanceTimersByTimeAsync(100);
    const stopped = core.stop();
    await vi.advanceTimersByTimeAsync(200);
    await stopped;
  });

  it('resumes where the last run reported: the first interval begins at the restored end', async () => {
    const sink = new MemorySink();
    const table = new FakeTable();
    const core = new AgentCore({
      table,
      capture: new FakeCapture(),
      sinks: [sink],
      encode: (r) => `${r.startTime} ${r.endTime}`,
      flushIntervalMs: 10_000,
      now: () => Date.now(),
      logger: silentLogger(),
      resumeFromMs: now - 42_000,
    });
    await core.start();
    await vi.advanceTimersByTimeAsync(1);
    // Due at once: the interval since the last report is already long.
    expect(table.flushes[0]).toEqual([now - 42_000, now]);
    await core.stop();
  });

  it('a failed dump still closes the interval (open connections report next time)', async () => {
    const sink = new MemorySink();
    const { table, capture, core } = make([sink]);
    await core.start();
    capture.dumpFails = true;
    await vi.advanceTimersByTimeAsync(10_000);
    // Not applied: an incomplete dump must not end the connections it did not list.
    expect(table.dumps).toEqual([2]);
    expect(sink.lines).toHaveLength(1);
  });
});
