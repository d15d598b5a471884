import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CounterDelta,
  encodeLossEvent,
  hiddenConnections,
  LOSS_KINDS,
  LossLedger,
} from '../../src/loss/ledger.js';
import { LossWatch } from '../../src/loss/watch.js';

describe('LossLedger', () => {
  it('keeps totals per kind and hands out each entry once', () => {
    const l = new LossLedger();
    const w = { windowStartMs: 1_000, windowEndMs: 2_000, notedAtMs: 2_001 };
    l.note({ kind: 'SpoolFull', count: 5, ...w });
    l.note({ kind: 'SpoolFull', count: 0, ...w }); // nothing lost: not an entry
    l.note({ kind: 'Rejected', count: 2, ...w });
    expect(l.total('SpoolFull')).toBe(5);
    expect(l.total('Rejected')).toBe(2);
    expect(l.take().map((e) => [e.kind, e.count])).toEqual([
      ['SpoolFull', 5],
      ['Rejected', 2],
    ]);
    expect(l.take()).toEqual([]);
    expect(l.total('SpoolFull')).toBe(5);
  });

  it('encodes an events-stream line with both ISO and ms windows, no spaces', () => {
    const line = encodeLossEvent(
      { kind: 'NflogOverrun', count: 3, windowStartMs: 0, windowEndMs: 60_000, notedAtMs: 60_001 },
      { clusterName: 'prod', nodeName: 'ip-10-0-0-1' },
    );
    expect(line).not.toContain(' ');
    expect(JSON.parse(line)).toEqual({
      event: 'loss',
      cluster: 'prod',
      node: 'ip-10-0-0-1',
      kind: 'NflogOverrun',
      count: 3,
      windowStart: '1970-01-01T00:00:00.000Z',
      windowEnd: '1970-01-01T00:01:00.000Z',
      windowStartMs: 0,
      windowEndMs: 60_000,
    });
  });

  it('CounterDelta reports growth only, and can start from the current value', () => {
    let v = 7;
    const fromZero = new CounterDelta(() => v);
    const fromNow = new CounterDelta(() => v, false);
    expect(fromZero.take()).toBe(7);
    expect(fromNow.take()).toBe(0);
    v = 10;
    expect(fromZero.take()).toBe(3);
    expect(fromNow.take()).toBe(3);
    v = 4; // a reset counter never reports a negative loss
    expect(fromZero.take()).toBe(0);
  });
});

describe('hiddenConnections', () => {
  it('is exact when each dropped message is accounted for', () => {
    fc.assert(
      fc.property(
        fc.nat(1_000),
        fc.nat(1_000),
        fc.nat(1_000),
        fc.nat(1_000),
        fc.nat(1_000),
        (found, unknown, vanished, missed, hidden) => {
          const droppedMessages = found + unknown + vanished + missed + 2 * hidden;
          expect(
            hiddenConnections({
              droppedMessages,
              foundInDump: found,
              unknownDestroys: unknown,
              vanished,
              destroysMissed: missed,
            }),
          ).toBe(hidden);
        },
      ),
    );
  });

  it('is zero without drops and never negative', () => {
    expect(
      hiddenConnections({
        droppedMessages: 0,
        foundInDump: 9,
        unknownDestroys: 1,
        vanished: 2,
        destroysMissed: 0,
      }),
    ).toBe(0);
    expect(
      hiddenConnections({
        droppedMessages: 3,
        foundInDump: 9,
        unknownDestroys: 0,
        vanished: 0,
        destroysMissed: 0,
      }),
    ).toBe(0);
  });
});

describe('LossWatch', () => {
  it('notes per-interval deltas of each counter with the interval as the window', () => {
    const c = {
      conntrackDrops: 0,
      nflogDrops: 0,
      flowsShed: 0,
      foundInDump: 0,
      unknownDestroys: 0,
      vanished: 0,
      destroysMissed: 0,
      spoolCorrupt: 1,
      inconsistent: 0,
    };
    const ledger = new LossLedger();
    const watch = new LossWatch(ledger, {
      conntrackDrops: () => c.conntrackDrops,
      nflogDrops: () => c.nflogDrops,
      flowsShed: () => c.flowsShed,
      foundInDump: () => c.foundInDump,
      unknownDestroys: () => c.unknownDestroys,
      vanished: () => c.vanished,
      destroysMissed: () => c.destroysMissed,
      spoolCorrupt: () => c.spoolCorrupt,
      inconsistent: () => c.inconsistent,
    });
    c.conntrackDrops = 10; // 4 recovered by dump, 2 from DESTROYs: 4 messages = 2 hidden
    c.foundInDump = 3; // … one of the 4 only by the dump of the next interval
    c.unknownDestroys = 2;
    c.nflogDrops = 3;
    watch.onInterval(0, 1_000, 1_001);
    const first = ledger.take();
    expect(Object.fromEntries(first.map((e) => [e.kind, e.count]))).toEqual({
      ConntrackOverrun: 10,
      NflogOverrun: 3,
      SpoolCorrupt: 1,
    });
    for (const e of first) expect([e.windowStartMs, e.windowEndMs]).toEqual([0, 1_000]);
    c.flowsShed = 5;
    c.foundInDump = 4;
    c.inconsistent = 2;
    watch.onInterval(1_000, 2_000, 2_001);
    // Hidden connections are settled one interval late, with the window they happened in.
    expect(ledger.take().map((e) => [e.kind, e.count, e.windowStartMs])).toEqual([
      ['HiddenConnections', 2, 0],
      ['FlowsShed', 5, 1_000],
      ['Inconsistent', 2, 1_000],
    ]);
    watch.onInterval(2_000, 3_000, 3_001);
    expect(ledger.take()).toEqual([]);
    expect(LOSS_KINDS.map((k) => ledger.total(k))).toEqual([10, 2, 3, 5, 0, 1, 0, 2]);
  });
});
