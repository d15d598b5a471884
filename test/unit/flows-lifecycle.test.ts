import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ConntrackEvent, ConntrackEventType } from '../../src/conntrack/types.js';
import type { Endpoint, EndpointLookup } from '../../src/endpoints/types.js';
import {
  type Counters,
  decideFlush,
  endedPhase,
  newFlushStep,
  Phase,
} from '../../src/flows/connection-state.js';
import { AggregationKind, type BaselineSnapshot, FlowTable } from '../../src/flows/index.js';
import type { FlowRecord } from '../../src/format/record.js';
import { keyed, roundTrip } from '../harness/baselines.js';
import { conntrackEvent, feedDump, feedEvents } from '../harness/conntrack-events.js';

/** Every 10.244.x.y address is a local pod named after its address. */
class FakeLocalPods implements EndpointLookup {
  lookup(ip: string): Endpoint {
    const local = ip.startsWith('10.244.');
    return {
      type: local ? 'wep' : 'net',
      namespace: local ? 'default' : '-',
      name: local ? `pod-${ip}` : 'pub',
      aggregatedName: local ? 'pod-*' : 'pub',
      labels: {},
      local,
    };
  }
}

type Four = [number, number, number, number];

/** A connection 10.244.1.2:sport → 10.244.1.3:80, its id from the port. */
const ev = (
  type: ConntrackEventType,
  sport: number,
  counters?: Four,
  extra: Partial<ConntrackEvent> = {},
): ConntrackEvent =>
  conntrackEvent(
    type,
    { src: '10.244.1.2', dst: '10.244.1.3', sport, dport: 80, id: sport * 7 },
    counters,
    extra,
  );
const dumpOf = (sport: number, c: Four, extra: Partial<ConntrackEvent> = {}): ConntrackEvent => ({
  ...ev('update', sport, c, extra),
  fromDump: true,
});

function table(): FlowTable {
  return new FlowTable({
    endpoints: new FakeLocalPods(),
    aggregationKindForAllowed: AggregationKind.Full,
    aggregationKindForDenied: AggregationKind.NoSourcePort,
    includeLabels: false,
    ingressGroup: 1,
    egressGroup: 2,
  });
}

const srcView = (rs: FlowRecord[], sport: number) =>
  rs.filter((r) => r.reporter === 'src' && r.srcPort === sport);

describe('connection state: the flush decision per phase', () => {
  const c = { po: 5, bo: 500, pr: 4, br: 400 };
  const zero = { po: 0, bo: 0, pr: 0, br: 0 };
  /** The decision for a connection in `phase` begun at `startMs`, as the store makes it. */
  const flush = (
    phase: Phase,
    startMs: number,
    current: Counters,
    reported: Counters,
    intervalStartMs: number,
  ) => {
    const step = newFlushStep();
    step.delta.po = current.po - reported.po;
    step.delta.bo = current.bo - reported.bo;
    step.delta.pr = current.pr - reported.pr;
    step.delta.br = current.br - reported.br;
    return decideFlush(step, phase, startMs, intervalStartMs);
  };

  it('a starting connection reports its start once and becomes open', () => {
    const s = flush(Phase.Starting, 1_000, c, zero, 0);
    expect([s.started, s.completed, s.report, s.stays]).toEqual([true, false, true, true]);
    expect(s.delta).toEqual(c);
  });

  it('a connection that started before the interval is not counted as started', () => {
    const s = flush(Phase.Starting, 1_000, zero, zero, 2_000);
    expect([s.started, s.report, s.stays]).toEqual([false, false, true]);
  });

  it('an idle open connection produces no report and stays open', () => {
    const s = flush(Phase.Open, 0, c, c, 2_000);
    expect([s.report, s.stays]).toEqual([false, true]);
  });

  it('an ended connection is reported as completed even without traffic, then leaves', () => {
    const s = flush(endedPhase(Phase.Open), 0, c, c, 2_000);
    expect([s.started, s.completed, s.report, s.stays]).toEqual([false, true, true, false]);
  });

  it('a connection that started and ended in the interval counts both', () => {
    const s = flush(endedPhase(Phase.Starting), 2_500, c, zero, 2_000);
    expect([s.started, s.completed]).toEqual([true, true]);
  });

  it('ending twice keeps the first end; remainders and tombstones do not end', () => {
    for (const open of [Phase.Starting, Phase.Open]) {
      const once = endedPhase(open);
      expect(endedPhase(once)).toBe(once);
    }
    for (const p of [Phase.Remainder, Phase.Tomb, Phase.TombGone]) expect(endedPhase(p)).toBe(p);
  });

  it('a late remainder reports only new traffic and is neither started nor completed', () => {
    const s = flush(Phase.Remainder, 0, c, { ...c, po: 3 }, 0);
    expect([s.delta.po, s.started, s.completed, s.report, s.stays]).toEqual([
      2,
      false,
      false,
      true,
      false,
    ]);
  });
});

describe('flow table: connection lifecycle edges', () => {
  it('TIME_WAIT in a dump completes the connection; its later DESTROY adds nothing', () => {
    const t = table();
    feedEvents(t, [ev('new', 40000)], 500);
    feedDump(t, [dumpOf(40000, [6, 600, 5, 900], { tcpState: 7 })], 1_000);
    const r1 = srcView(t.flush(0, 1_000), 40000);
    expect(r1.map((r) => [r.packetsOut, r.numFlowsStarted, r.numFlowsCompleted])).toEqual([
      [6, 1, 1],
    ]);
    feedEvents(t, [ev('destroy', 40000, [6, 600, 5, 900])], 1_500);
    expect(t.flush(1_000, 2_000)).toEqual([]);
    expect(t.stats.tracked).toBe(0);
  });

  it('a DESTROY whose start timestamp is older than the interval is completed but not started', () => {
    const t = table();
    feedEvents(
      t,
      [
        ev('destroy', 40000, [1, 60, 1, 60], {
          startNs: 500_000_000n,
          stopNs: 5_500_000_000n,
          startMs: 500,
          stopMs: 5_500,
        }),
      ],
      5_600,
    );
    const r = srcView(t.flush(5_000, 6_000), 40000);
    expect(r.map((x) => [x.numFlowsStarted, x.numFlowsCompleted, x.packetsOut])).toEqual([
      [0, 1, 1],
    ]);
  });

  it('record times are the interval bounds in Unix seconds', () => {
    const t = table();
    feedEvents(t, [ev('destroy', 40000, [1, 60, 1, 60])], 1_700_000_000_500);
    const [r] = t.flush(1_700_000_000_000, 1_700_000_300_000);
    expect([r?.startTime, r?.endTime]).toEqual([1_700_000_000, 1_700_000_300]);
  });

  it('shedding at maxFlows is counted and a shed connection reports nothing', () => {
    const t = new FlowTable({
      endpoints: new FakeLocalPods(),
      aggregationKindForAllowed: AggregationKind.Full,
      aggregationKindForDenied: AggregationKind.Full,
      includeLabels: false,
      ingressGroup: 1,
      egressGroup: 2,
      maxFlows: 1,
    });
    feedEvents(t, [ev('new', 1), ev('new', 2), ev('destroy', 3, [1, 1, 1, 1])], 100);
    expect([t.stats.tracked, t.stats.shed]).toEqual([1, 2]);
    const rs = t.flush(0, 1_000);
    expect(rs.map((r) => r.srcPort)).toEqual([1, 1]);
  });

  it('two connections sharing a CTA_ID (a hash) stay apart, and leave the table separately', () => {
    const t = table();
    feedEvents(t, [ev('new', 1, undefined, { id: 42 }), ev('new', 2, undefined, { id: 42 })], 100);
    feedEvents(t, [ev('destroy', 1, [1, 10, 1, 10], { id: 42 })], 200);
    const r1 = t.flush(0, 1_000).filter((r) => r.reporter === 'src');
    expect(r1.map((r) => [r.srcPort, r.numFlowsCompleted, r.packetsOut])).toEqual([
      [1, 1, 1],
      [2, 0, 0],
    ]);
    expect(t.stats.tracked).toBe(1);
    feedEvents(t, [ev('destroy', 2, [3, 30, 3, 30], { id: 42 })], 1_200);
    const r2 = t.flush(1_000, 2_000).filter((r) => r.reporter === 'src');
    expect(r2.map((r) => [r.srcPort, r.numFlowsCompleted, r.packetsOut])).toEqual([[2, 1, 3]]);
    expect(t.stats.tracked).toBe(0);
  });

  it('two connections with the same 5-tuple (different CTA_ID) count as one flow', () => {
    const t = table();
    feedEvents(t, [ev('new', 1, undefined, { id: 1 }), ev('new', 1, undefined, { id: 2 })], 100);
    feedDump(t, [dumpOf(1, [1, 10, 1, 10], { id: 1 }), dumpOf(1, [2, 20, 2, 20], { id: 2 })], 900);
    const [r] = t.flush(0, 1_000).filter((x) => x.reporter === 'src');
    expect([r?.numFlows, r?.numFlowsStarted, r?.packetsOut]).toEqual([1, 2, 3]);
  });

  it('a connection two dumps in a row no longer list has vanished', () => {
    const t = table();
    feedEvents(t, [ev('new', 1), ev('new', 2), ev('new', 3)], 100);
    feedDump(t, [dumpOf(1, [1, 1, 1, 1]), dumpOf(2, [2, 2, 2, 2]), dumpOf(3, [3, 3, 3, 3])], 900);
    feedDump(t, [dumpOf(1, [4, 4, 4, 4]), dumpOf(3, [5, 5, 5, 5])], 1_900);
    feedDump(t, [dumpOf(1, [4, 4, 4, 4]), dumpOf(3, [5, 5, 5, 5])], 2_900);
    expect(t.stats.vanished).toBe(1);
  });

  it('the baseline snapshot survives JSON and covers open connections', () => {
    const t = table();
    feedEvents(t, [ev('new', 1), ev('new', 2)], 100);
    feedDump(t, [dumpOf(1, [1, 2, 3, 4]), dumpOf(2, [5, 6, 7, 8])], 900);
    t.flush(0, 1_000);
    const snap: BaselineSnapshot = roundTrip(t.exportBaselines());
    expect(Object.values(keyed(snap).connections).sort()).toEqual([
      [1, 2, 3, 4],
      [5, 6, 7, 8],
    ]);
  });
});

/** A kernel model: connections with growing counters, some events lost, restarts. */
type Op =
  | { op: 'new'; lost: boolean }
  | { op: 'traffic'; conn: number; d: Four }
  | { op: 'destroy'; conn: number; lost: boolean }
  | { op: 'cycle'; restart: boolean };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('new' as const), lost: fc.boolean() }),
  fc.record({
    op: fc.constant('traffic' as const),
    conn: fc.nat(9),
    d: fc.tuple(fc.nat(20), fc.nat(3000), fc.nat(20), fc.nat(3000)),
  }),
  fc.record({ op: fc.constant('destroy' as const), conn: fc.nat(9), lost: fc.boolean() }),
  fc.record({ op: fc.constant('cycle' as const), restart: fc.boolean() }),
);

interface KConn {
  sport: number;
  c: Four;
  alive: boolean;
  newLost: boolean;
  destroyLost: boolean;
  /** Counters at the last dump that listed it: what a lost DESTROY leaves us. */
  lastDumped: Four;
  everDumped: boolean;
}

describe('flow table: exact sums under loss and restarts', () => {
  it('property: per connection, the reported packets and bytes sum to what the kernel told us, across lost events and restarts', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), (ops) => {
        let t = table();
        let now = 0;
        let intervalStart = 0;
        let dumped = false;
        let restarts = 0;
        const conns: KConn[] = [];
        const out: FlowRecord[] = [];
        const cycle = (restart: boolean) => {
          now += 1_000;
          const live = conns.filter((k) => k.alive);
          for (const k of live) {
            k.lastDumped = [...k.c];
            k.everDumped = true;
          }
          feedDump(
            t,
            live.map((k) => dumpOf(k.sport, [...k.c])),
            now,
          );
          dumped = true;
          out.push(...t.flush(intervalStart, now));
          intervalStart = now;
          if (restart) {
            restarts++;
            const snap = roundTrip(t.exportBaselines());
            t = table();
            t.importBaselines(snap, now);
            now += 10;
            feedDump(
              t,
              live.map((k) => dumpOf(k.sport, [...k.c])),
              now,
            );
          }
        };
        // The agent's start-up dump (empty kernel).
        feedDump(t, [], now);
        for (const o of ops) {
          now += 10;
          if (o.op === 'new') {
            const k: KConn = {
              sport: 1000 + conns.length,
              c: [0, 0, 0, 0],
              alive: true,
              newLost: o.lost,
              destroyLost: false,
              lastDumped: [0, 0, 0, 0],
              everDumped: false,
            };
            conns.push(k);
            if (!o.lost) feedEvents(t, [ev('new', k.sport)], now);
          } else if (o.op === 'traffic') {
            const k = conns[o.conn];
            if (k?.alive) for (let i = 0; i < 4; i++) k.c[i]! += o.d[i]!;
          } else if (o.op === 'destroy') {
            const k = conns[o.conn];
            if (k?.alive) {
              k.alive = false;
              k.destroyLost = o.lost;
              if (!o.lost) feedEvents(t, [ev('destroy', k.sport, [...k.c])], now);
            }
          } else cycle(o.restart);
        }
        for (let i = 0; i < 3; i++) cycle(false);
        expect(dumped).toBe(true);
        for (const k of conns) {
          const rs = srcView(out, k.sport);
          const got: Four = [
            rs.reduce((n, r) => n + r.packetsOut, 0),
            rs.reduce((n, r) => n + r.bytesOut, 0),
            rs.reduce((n, r) => n + r.packetsIn, 0),
            rs.reduce((n, r) => n + r.bytesIn, 0),
          ];
          const expected: Four = k.destroyLost ? (k.everDumped ? k.lastDumped : [0, 0, 0, 0]) : k.c;
          expect(got).toEqual(expected);
          expect(rs.reduce((n, r) => n + r.numFlowsStarted, 0)).toBeLessThanOrEqual(1);
          const completed = rs.reduce((n, r) => n + r.numFlowsCompleted, 0);
          expect(completed).toBeLessThanOrEqual(1);
          // Without a restart in between, every ended connection the table saw is completed once
          // (a lost DESTROY by vanishing from dumps); an open one never.
          const seen = !k.newLost || k.everDumped || !k.destroyLost;
          if (k.alive) expect(completed).toBe(0);
          else if (restarts === 0 && seen) expect(completed).toBe(1);
        }
      }),
      { numRuns: 400 },
    );
  });
});

describe('restart while a completed connection lingers in TIME_WAIT', () => {
  it('is not reported again after the restart, whichever way it completed', () => {
    for (const via of ['dump', 'destroy-lost-then-dump', 'new-lost'] as const) {
      const t = table();
      feedDump(t, [], 0);
      if (via !== 'new-lost') feedEvents(t, [ev('new', 7)], 10);
      // Closed: the flush dump sees it in TIME_WAIT with its final counters.
      feedDump(t, [dumpOf(7, [5, 270, 3, 164], { tcpState: 7 })], 900);
      const first = t.flush(0, 1_000);
      expect(first.filter((r) => r.srcPort === 7)).toHaveLength(2);
      const snap = roundTrip(t.exportBaselines());
      const t2 = table();
      t2.importBaselines(snap, 1_000);
      // The restarted agent's start-up dump still lists it (TIME_WAIT outlives the restart).
      feedDump(t2, [dumpOf(7, [5, 270, 3, 164], { tcpState: 7 })], 1_500);
      const again = t2.flush(1_000, 2_000).filter((r) => r.srcPort === 7);
      expect({ via, again }).toEqual({ via, again: [] });
      feedEvents(t2, [ev('destroy', 7, [5, 270, 3, 164])], 2_100);
      expect({ via, late: t2.flush(2_000, 3_000).filter((r) => r.srcPort === 7) }).toEqual({
        via,
        late: [],
      });
    }
  });
});

describe('a NEW read after a dump already completed its connection', () => {
  it('is stale and ignored; a NEW with another start time on the same key is a new connection', () => {
    const t = table();
    feedDump(t, [], 0);
    const start = { startNs: 500_000_000n, startMs: 500 };
    // The connection lived and closed inside the interval; the flush dump sees TIME_WAIT.
    feedDump(t, [dumpOf(9, [5, 270, 3, 164], { tcpState: 7, ...start })], 900);
    expect(t.flush(0, 1_000).filter((r) => r.srcPort === 9)).toHaveLength(2);
    // Its NEW, queued on the event socket, is read only now.
    feedEvents(t, [ev('new', 9, undefined, start)], 1_010);
    feedDump(t, [dumpOf(9, [5, 270, 3, 164], { tcpState: 7, ...start })], 1_900);
    expect(t.flush(1_000, 2_000).filter((r) => r.srcPort === 9)).toEqual([]);
    expect(t.stats.staleNews).toBe(1);
    // Same key, later start: a new connection, counted.
    feedEvents(t, [ev('new', 9, undefined, { startNs: 2_500_000_000n, startMs: 2_500 })], 2_500);
    feedDump(t, [dumpOf(9, [1, 60, 1, 60], { startNs: 2_500_000_000n, startMs: 2_500 })], 2_900);
    const next = t.flush(2_000, 3_000).filter((r) => r.srcPort === 9 && r.reporter === 'src');
    expect(next.map((r) => [r.numFlowsStarted, r.packetsOut, r.bytesOut])).toEqual([[1, 1, 60]]);
  });
});

describe('a completed connection that leaves the kernel without a DESTROY', () => {
  it('is counted once as destroysMissed (a lost DESTROY), and not when its DESTROY came', () => {
    const t = table();
    feedDump(t, [], 0);
    feedEvents(t, [ev('new', 11), ev('new', 12)], 10);
    feedDump(
      t,
      [dumpOf(11, [1, 60, 1, 60], { tcpState: 7 }), dumpOf(12, [1, 60, 1, 60], { tcpState: 7 })],
      900,
    );
    t.flush(0, 1_000);
    feedEvents(t, [ev('destroy', 12, [1, 60, 1, 60])], 1_100); // 11's DESTROY is lost
    feedDump(t, [], 1_900);
    feedDump(t, [], 2_900);
    expect(t.stats.destroysMissed).toBe(1);
    expect(t.flush(1_000, 3_000).filter((r) => r.srcPort === 11 || r.srcPort === 12)).toEqual([]);
  });
});

describe('destroysMissed counts only DESTROYs that never came', () => {
  it('a connection completed by its DESTROY is not counted when it leaves the dumps', () => {
    const t = table();
    feedDump(t, [], 0);
    feedEvents(t, [ev('new', 21)], 10);
    feedEvents(t, [ev('destroy', 21, [2, 120, 2, 120])], 20);
    t.flush(0, 1_000);
    feedDump(t, [], 1_900);
    feedDump(t, [], 2_900);
    expect(t.stats.destroysMissed).toBe(0);
  });
});

describe('the start-up dump and lost NEWs', () => {
  it('counts as found-in-dump only the unknown connections begun after the event socket opened', () => {
    const t = table();
    t.markListening(1_000);
    feedDump(
      t,
      [
        dumpOf(31, [1, 60, 1, 60], { startMs: 500 }), // older than the listener: not a lost NEW
        dumpOf(32, [1, 60, 1, 60], { startMs: 1_200 }), // begun while we listened: its NEW was lost
        dumpOf(33, [1, 60, 1, 60]), // no timestamp: cannot tell
      ],
      1_500,
    );
    expect(t.stats.foundInDump).toBe(1);
  });
});

describe('completed connections are remembered for a bounded time', () => {
  const closed = (t: FlowTable, sport: number, atMs: number) => {
    feedEvents(t, [ev('new', sport)], atMs - 100);
    feedDump(t, [dumpOf(sport, [5, 270, 3, 164], { tcpState: 7 })], atMs);
  };
  const completedKeys = (t: FlowTable) => Object.keys(keyed(t.exportBaselines()).completed);

  it('restarts do not extend the memory of a completed connection (its expiry is saved)', () => {
    let t = table();
    feedDump(t, [], 0);
    closed(t, 21, 900);
    t.flush(0, 1_000);
    // Kill and restart every few minutes while the kernel keeps listing it (TIME_WAIT).
    let now = 1_000;
    for (let restart = 0; restart < 3; restart++) {
      expect(completedKeys(t)).toHaveLength(1);
      const snap = roundTrip(t.exportBaselines());
      now += 4 * 60_000;
      t = table();
      t.importBaselines(snap, now);
      feedDump(t, [dumpOf(21, [5, 270, 3, 164], { tcpState: 7 })], now);
      expect(t.flush(now - 1_000, now)).toEqual([]);
    }
    // 12 minutes after completion: past the 10 minutes, forgotten although restarts kept coming.
    expect(completedKeys(t)).toEqual([]);
  });

  it('is forgotten a minute after the kernel stopped listing it, and not saved meanwhile', () => {
    const t = table();
    feedDump(t, [], 0);
    closed(t, 22, 900);
    t.flush(0, 1_000);
    expect(completedKeys(t)).toHaveLength(1);
    // Gone from the kernel: not saved (nothing can bring it back after a restart).
    feedDump(t, [], 1_900);
    t.flush(1_000, 2_000);
    expect(completedKeys(t)).toEqual([]);
    // Its DESTROY, read late but within the minute, still adds only the remainder (none).
    feedEvents(t, [ev('destroy', 22, [5, 270, 3, 164])], 30_000);
    expect(t.flush(2_000, 31_000)).toEqual([]);
    expect(t.stats.lateDestroys).toBe(1);
  });
});

describe('completed connections survive a restart whatever their protocol and family', () => {
  it('ICMP (no ports) and IPv6 keys are read back and still match their dump entries', () => {
    const icmp = (type: ConntrackEventType, fromDump: boolean, c?: Four): ConntrackEvent => {
      const o = {
        family: 4 as const,
        proto: 1,
        src: '10.244.1.2',
        dst: '10.244.1.3',
        sport: 0,
        dport: 0,
        icmpType: 8,
        icmpCode: 0,
        icmpId: 77,
      };
      return {
        ...ev(type, 0, c),
        fromDump,
        orig: o,
        reply: { ...o, src: o.dst, dst: o.src, icmpType: 0 },
        id: 4242,
      };
    };
    const v6 = (type: ConntrackEventType, fromDump: boolean, c?: Four): ConntrackEvent => {
      const o = {
        family: 6 as const,
        proto: 6,
        src: 'fd00::2',
        dst: 'fd00::3',
        sport: 5555,
        dport: 80,
      };
      return {
        ...ev(type, 0, c, { tcpState: fromDump ? 7 : undefined }),
        fromDump,
        orig: o,
        reply: { ...o, src: o.dst, dst: o.src, sport: 80, dport: 5555 },
        id: 4343,
      };
    };
    const all = (c?: Four) => [icmp('update', true, c), v6('update', true, c)];
    const t = new FlowTable({
      endpoints: {
        lookup: (ip: string) => ({
          type: 'wep',
          namespace: 'default',
          name: `pod-${ip}`,
          aggregatedName: 'pod-*',
          labels: {},
          local: true,
        }),
      },
      aggregationKindForAllowed: AggregationKind.Full,
      aggregationKindForDenied: AggregationKind.NoSourcePort,
      includeLabels: false,
      ingressGroup: 1,
      egressGroup: 2,
    });
    feedDump(t, [], 0);
    feedEvents(t, [icmp('new', false), v6('new', false)], 10);
    // ICMP has no TIME_WAIT: open (ended only by its DESTROY); IPv6 TCP completed in TIME_WAIT.
    feedDump(t, all([5, 270, 3, 164]), 900);
    expect(t.flush(0, 1_000)).toHaveLength(4);
    const snap = roundTrip(t.exportBaselines());
    expect(Object.keys(keyed(snap).connections)).toEqual(['4242|0|1|10.244.1.2|10.244.1.3|8|77']);
    expect(Object.keys(keyed(snap).completed)).toEqual(['4343|0|6|fd00::2|fd00::3|5555|80']);
    const t2 = table();
    t2.importBaselines(snap, 1_000);
    // Still listed by the kernel after the restart: known, not counted again.
    feedDump(t2, all([5, 270, 3, 164]), 1_500);
    expect(t2.flush(1_000, 2_000)).toEqual([]);
    expect(t2.stats.tracked).toBe(1);
    const again = roundTrip(t2.exportBaselines());
    expect(keyed(again)).toEqual(keyed(snap));
  });
});

describe('a 5-tuple the kernel reuses under the same conntrack id (same slab slot)', () => {
  // NEW events carry no start time; DESTROYs and dumps do (nf_conntrack_timestamp).
  const t1 = { startNs: 100_000_000n, startMs: 100 };
  const t2 = { startNs: 60_000_000_000n, startMs: 60_000 };
  const srcRecords = (rs: FlowRecord[]) =>
    rs
      .filter((r) => r.srcPort === 31 && r.reporter === 'src')
      .map((r) => [r.numFlowsStarted, r.numFlowsCompleted, r.packetsOut, r.bytesOut]);

  it('a second connection is counted in full, its NEW read long after the first completed', () => {
    const t = table();
    feedDump(t, [], 0);
    feedEvents(t, [ev('new', 31)], 100);
    feedDump(t, [dumpOf(31, [5, 270, 3, 164], { tcpState: 7, ...t1 })], 900);
    expect(srcRecords(t.flush(0, 1_000))).toEqual([[1, 1, 5, 270]]);
    feedEvents(t, [ev('destroy', 31, [5, 270, 3, 164], t1)], 15_000);
    feedDump(t, [], 15_900);
    expect(srcRecords(t.flush(1_000, 16_000))).toEqual([]);
    // 44 s later the same slot holds the same 5-tuple again: same id, same key.
    feedEvents(t, [ev('new', 31)], 60_000);
    feedDump(t, [dumpOf(31, [7, 400, 4, 200], { tcpState: 7, ...t2 })], 60_900);
    expect(srcRecords(t.flush(16_000, 61_000))).toEqual([[1, 1, 7, 400]]);
    feedEvents(t, [ev('destroy', 31, [7, 400, 4, 200], t2)], 75_000);
    feedDump(t, [], 75_900);
    expect(srcRecords(t.flush(61_000, 76_000))).toEqual([]);
    expect(t.stats.staleNews).toBe(0);
  });

  it('a second DESTROY on the key (its NEW lost) is another connection, counted from its totals', () => {
    const t = table();
    feedDump(t, [], 0);
    feedEvents(t, [ev('new', 31)], 100);
    feedEvents(t, [ev('destroy', 31, [5, 270, 3, 164], t1)], 500);
    feedDump(t, [], 900);
    expect(srcRecords(t.flush(0, 1_000))).toEqual([[1, 1, 5, 270]]);
    feedEvents(t, [ev('destroy', 31, [2, 120, 1, 60], t2)], 60_500);
    feedDump(t, [], 60_900);
    // Started (its kernel start falls in the interval) and completed, with its own totals.
    expect(srcRecords(t.flush(1_000, 61_000))).toEqual([[1, 1, 2, 120]]);
    expect(t.stats.unknownDestroys).toBe(1);
  });

  it('a dump entry with another start time than the completed connection is a new one', () => {
    const t = table();
    feedDump(t, [], 0);
    feedEvents(t, [ev('new', 31)], 100);
    feedDump(t, [dumpOf(31, [5, 270, 3, 164], { tcpState: 7, ...t1 })], 900);
    t.flush(0, 1_000);
    // Its NEW lost, the second connection shows up first in a dump, with its own start.
    feedDump(t, [dumpOf(31, [3, 180, 2, 100], { ...t2 })], 60_900);
    expect(srcRecords(t.flush(1_000, 61_000))).toEqual([[1, 0, 3, 180]]);
    expect(t.stats.foundInDump).toBe(1);
  });
});

describe('completed connections restored after a restart, in the overrun arithmetic', () => {
  const completedBefore = () => {
    const t = table();
    feedDump(t, [], 0);
    feedEvents(t, [ev('new', 41), ev('new', 42)], 10);
    feedDump(
      t,
      [
        dumpOf(41, [5, 270, 3, 164], { tcpState: 7 }),
        dumpOf(42, [5, 270, 3, 164], { tcpState: 7 }),
      ],
      900,
    );
    t.flush(0, 1_000);
    const after = table();
    after.importBaselines(roundTrip(t.exportBaselines()), 1_000);
    return after;
  };

  it('one still listed at the start-up dump whose DESTROY never comes is a missed DESTROY', () => {
    const t = completedBefore();
    // 41 still in TIME_WAIT at the restart; 42 left the table while no agent ran.
    feedDump(t, [dumpOf(41, [5, 270, 3, 164], { tcpState: 7 })], 1_500);
    feedDump(t, [], 2_500);
    expect(t.stats.destroysMissed).toBe(1);
  });

  it('one whose DESTROY comes is not', () => {
    const t = completedBefore();
    feedDump(t, [dumpOf(41, [5, 270, 3, 164], { tcpState: 7 })], 1_500);
    feedEvents(t, [ev('destroy', 41, [5, 270, 3, 164])], 2_000);
    feedDump(t, [], 2_500);
    expect(t.stats.destroysMissed).toBe(0);
    expect(t.flush(1_000, 3_000)).toEqual([]);
  });
});
