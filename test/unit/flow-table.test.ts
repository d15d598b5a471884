import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ConntrackEvent } from '../../src/conntrack/types.js';
import type { Endpoint, EndpointLookup } from '../../src/endpoints/types.js';
import { AggregationKind } from '../../src/flows/aggregation.js';
import { FlowTable, type FlowTableOptions } from '../../src/flows/flow-table.js';
import { tupleHash } from '../../src/flows/tuple-counts.js';
import type { FlowRecord } from '../../src/format/record.js';
import type { NflogPacket } from '../../src/nflog/types.js';
import { roundTrip } from '../harness/baselines.js';
import { conntrackEvent, feedDump, feedEvents } from '../harness/conntrack-events.js';

/** A fake endpoint lookup: a table of owners per IP with validity from a time on. */
class FakeEndpoints implements EndpointLookup {
  owners = new Map<string, { fromMs: number; endpoint: Endpoint }[]>();
  add(ip: string, fromMs: number, e: Partial<Endpoint> & { name: string }) {
    const endpoint: Endpoint = {
      type: 'wep',
      namespace: 'default',
      aggregatedName: e.name,
      labels: {},
      local: true,
      ...e,
    };
    const list = this.owners.get(ip) ?? [];
    list.push({ fromMs, endpoint });
    this.owners.set(ip, list);
    return this;
  }
  lookup(ip: string, timeMs: number): Endpoint {
    const list = (this.owners.get(ip) ?? []).filter((o) => o.fromMs <= timeMs);
    return (
      list.at(-1)?.endpoint ?? {
        type: 'net',
        namespace: '-',
        name: 'pub',
        aggregatedName: 'pub',
        labels: {},
        local: false,
      }
    );
  }
}

const ev = conntrackEvent;
const dump = (e: ConntrackEvent): ConntrackEvent => ({ ...e, type: 'update', fromDump: true });

function table(endpoints: EndpointLookup, o: Partial<FlowTableOptions> = {}) {
  return new FlowTable({
    endpoints,
    aggregationKindForAllowed: AggregationKind.Full,
    aggregationKindForDenied: AggregationKind.Full,
    includeLabels: false,
    ingressGroup: 1,
    egressGroup: 2,
    ...o,
  });
}

const A = { src: '10.244.1.2', dst: '10.244.1.3', sport: 40000, dport: 80 };
const sum = (rs: FlowRecord[], k: keyof FlowRecord) => rs.reduce((n, r) => n + (r[k] as number), 0);

describe('flow table: allowed traffic from conntrack', () => {
  const eps = () =>
    new FakeEndpoints().add(A.src, 0, { name: 'client' }).add(A.dst, 0, { name: 'server' });

  it('a long-lived connection reports its delta every interval and the deltas sum to the kernel total', () => {
    const t = table(eps());
    feedEvents(t, [ev('new', A)], 1_000);
    feedDump(t, [dump(ev('update', A, [10, 1000, 8, 5000]))], 2_000);
    const r1 = t.flush(0, 2_000);
    feedDump(t, [dump(ev('update', A, [25, 2500, 20, 9000]))], 4_000);
    const r2 = t.flush(2_000, 4_000);
    feedEvents(t, [ev('destroy', A, [30, 2800, 24, 9900])], 5_000);
    feedDump(t, [], 6_000);
    const r3 = t.flush(4_000, 6_000);
    const src = [...r1, ...r2, ...r3].filter((r) => r.reporter === 'src');
    expect(src.map((r) => [r.packetsOut, r.bytesOut, r.packetsIn, r.bytesIn])).toEqual([
      [10, 1000, 8, 5000],
      [15, 1500, 12, 4000],
      [5, 300, 4, 900],
    ]);
    expect(src.map((r) => [r.numFlowsStarted, r.numFlowsCompleted])).toEqual([
      [1, 0],
      [0, 0],
      [0, 1],
    ]);
    expect(t.stats.tracked).toBe(0);
  });

  it('both ends local: two records with mirrored directions', () => {
    const t = table(eps());
    feedEvents(t, [ev('destroy', A, [3, 300, 2, 200])], 1_000);
    const rs = t.flush(0, 2_000);
    const src = rs.find((r) => r.reporter === 'src')!;
    const dst = rs.find((r) => r.reporter === 'dst')!;
    expect([src.packetsOut, src.bytesOut, src.packetsIn, src.bytesIn]).toEqual([3, 300, 2, 200]);
    expect([dst.packetsIn, dst.bytesIn, dst.packetsOut, dst.bytesOut]).toEqual([3, 300, 2, 200]);
  });

  it('service traffic (DNAT) is reported against the backend from the reply tuple', () => {
    const e = new FakeEndpoints()
      .add(A.src, 0, { name: 'client' })
      .add('10.244.9.9', 0, { name: 'backend-1' });
    const t = table(e);
    feedEvents(
      t,
      [ev('destroy', { ...A, dst: '10.96.0.10', replySrc: '10.244.9.9' }, [1, 60, 1, 60])],
      1_000,
    );
    const rs = t.flush(0, 2_000);
    expect(rs.map((r) => [r.reporter, r.dstIP, r.dstName])).toEqual([
      ['src', '10.244.9.9', 'backend-1'],
      ['dst', '10.244.9.9', 'backend-1'],
    ]);
  });

  it('connections with no local end are ignored and counted', () => {
    const e = new FakeEndpoints()
      .add(A.src, 0, { name: 'x', local: false })
      .add(A.dst, 0, { name: 'y', local: false });
    const t = table(e);
    feedEvents(t, [ev('destroy', A, [1, 1, 1, 1])], 1_000);
    expect(t.flush(0, 2_000)).toEqual([]);
    expect(t.stats.ignoredNonLocal).toBe(1);
  });

  it('an IP reused by another pod: earlier flows keep the old owner, later ones the new', () => {
    const e = new FakeEndpoints()
      .add(A.src, 0, { name: 'client' })
      .add(A.dst, 0, { name: 'old-pod', namespace: 'a' })
      .add(A.dst, 5_000, { name: 'new-pod', namespace: 'b' });
    const t = table(e);
    feedEvents(t, [ev('new', A, undefined, { id: 1 })], 1_000);
    feedEvents(t, [ev('destroy', A, [1, 1, 1, 1], { id: 1 })], 2_000);
    feedEvents(t, [ev('new', { ...A, sport: 40001, id: 2 }, undefined)], 6_000);
    feedEvents(t, [ev('destroy', { ...A, sport: 40001, id: 2 }, [1, 1, 1, 1])], 7_000);
    const rs = t.flush(0, 8_000).filter((r) => r.reporter === 'dst');
    expect(rs.map((r) => [r.srcPort, r.dstNamespace, r.dstName])).toEqual([
      [40000, 'a', 'old-pod'],
      [40001, 'b', 'new-pod'],
    ]);
  });

  it('a connection that vanished from dumps without a DESTROY completes with its last counters; a late DESTROY adds only the rest', () => {
    const t = table(eps());
    feedEvents(t, [ev('new', A)], 1_000);
    feedDump(t, [dump(ev('update', A, [5, 500, 5, 500]))], 2_000);
    t.flush(0, 2_000);
    feedDump(t, [], 4_000);
    t.flush(2_000, 4_000);
    feedDump(t, [], 6_000); // gone twice: ended unseen
    const r = t.flush(4_000, 6_000).filter((x) => x.reporter === 'src');
    expect(r.map((x) => x.numFlowsCompleted)).toEqual([1]);
    expect(t.stats.vanished).toBe(1);
    feedEvents(t, [ev('destroy', A, [7, 640, 6, 560])], 7_000);
    const late = t.flush(6_000, 8_000).filter((x) => x.reporter === 'src');
    expect(
      late.map((x) => [
        x.packetsOut,
        x.bytesOut,
        x.packetsIn,
        x.bytesIn,
        x.numFlowsStarted,
        x.numFlowsCompleted,
      ]),
    ).toEqual([[2, 140, 1, 60, 0, 0]]);
  });

  it('a DESTROY whose NEW was lost still reports its counters as started and completed', () => {
    const t = table(eps());
    feedEvents(t, [ev('destroy', A, [2, 120, 2, 120])], 1_000);
    const r = t.flush(0, 2_000).find((x) => x.reporter === 'src')!;
    expect([r.packetsOut, r.numFlowsStarted, r.numFlowsCompleted]).toEqual([2, 1, 1]);
  });

  it('connections found by the start-up dump are not counted as started', () => {
    const t = table(eps());
    feedDump(t, [dump(ev('update', A, [4, 400, 4, 400]))], 1_000);
    const r = t.flush(1_000, 2_000).find((x) => x.reporter === 'src')!;
    expect([r.packetsOut, r.numFlowsStarted]).toEqual([4, 0]);
  });

  it('restored baselines keep a restart from counting totals twice', () => {
    const before = table(eps());
    feedDump(before, [dump(ev('update', A, [10, 1000, 10, 1000]))], 1_000);
    before.flush(0, 1_000);
    const saved = roundTrip(before.exportBaselines());
    const after = table(eps());
    after.importBaselines(saved, 5_000);
    feedDump(after, [dump(ev('update', A, [12, 1100, 11, 1050]))], 5_000);
    const r = after.flush(5_000, 6_000).find((x) => x.reporter === 'src')!;
    expect([r.packetsOut, r.bytesOut, r.packetsIn, r.bytesIn]).toEqual([2, 100, 1, 50]);
  });

  it('sheds connections beyond maxFlows and counts them', () => {
    const t = table(eps(), { maxFlows: 2 });
    feedEvents(
      t,
      [1, 2, 3, 4].map((i) => ev('new', { ...A, sport: 40000 + i, id: i })),
      1_000,
    );
    expect(t.stats.tracked).toBe(2);
    expect(t.stats.shed).toBe(2);
  });

  it('property: for random interleavings of dumps and flushes, per-connection sums equal the final counters', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(50), fc.nat(5000), fc.nat(50), fc.nat(5000)), {
          minLength: 1,
          maxLength: 8,
        }),
        fc.boolean(),
        (steps, destroyAtEnd) => {
          const t = table(eps());
          feedEvents(t, [ev('new', A)], 0);
          const total = [0, 0, 0, 0] as [number, number, number, number];
          const out: FlowRecord[] = [];
          steps.forEach((s, i) => {
            for (let k = 0; k < 4; k++) total[k]! += s[k]!;
            feedDump(t, [dump(ev('update', A, [...total]))], (i + 1) * 1000);
            out.push(...t.flush(i * 1000, (i + 1) * 1000));
          });
          if (destroyAtEnd) feedEvents(t, [ev('destroy', A, [...total])], 99_000);
          out.push(...t.flush(90_000, 100_000));
          const src = out.filter((r) => r.reporter === 'src');
          expect([
            sum(src, 'packetsOut'),
            sum(src, 'bytesOut'),
            sum(src, 'packetsIn'),
            sum(src, 'bytesIn'),
          ]).toEqual(total);
          expect(sum(src, 'numFlowsStarted')).toBe(1);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('flow table: denied traffic and aggregation', () => {
  function deny(
    group: number,
    src: string,
    dst: string,
    sport: number,
    dport: number,
    bytes = 60,
  ): NflogPacket {
    return {
      group,
      prefix: 'DPI|default.default-deny',
      verdict: {
        action: 'deny',
        owner: 'policy',
        direction: 'ingress',
        ruleIndex: undefined,
        policyName: 'default.default-deny',
        prefix: 'DPI|default.default-deny',
      },
      family: 4,
      proto: 6,
      src,
      dst,
      sport,
      dport,
      bytes,
      timestampMs: undefined,
      indev: undefined,
      outdev: undefined,
      hwaddr: undefined,
    };
  }
  const e = () =>
    new FakeEndpoints()
      .add('10.244.1.2', 0, { name: 'client-1', local: true })
      .add('10.244.1.3', 0, {
        name: 'web-7d98456675-aaaaa',
        aggregatedName: 'web-7d98456675-*',
        labels: { app: 'web', v: '1' },
      })
      .add('10.244.1.4', 0, {
        name: 'web-7d98456675-bbbbb',
        aggregatedName: 'web-7d98456675-*',
        labels: { app: 'web', v: '2' },
      });

  /** A closed connection from client-1 (10.244.1.2) with n packets of 10 bytes each way. */
  const closed = (dst: string, sport: number, dport: number, id: number, n: number) =>
    ev('destroy', { src: '10.244.1.2', dst, sport, dport, id }, [n, 10 * n, n, 10 * n]);

  it('ingress group packets report dst, egress group packets report src; no packets, no record', () => {
    const t = table(e());
    t.onNflog(
      [
        deny(1, '10.244.1.2', '10.244.1.3', 1000, 80),
        deny(1, '10.244.1.2', '10.244.1.3', 1000, 80, 40),
      ],
      1_000,
    );
    t.onNflog([deny(2, '10.244.1.2', '203.0.113.9', 1001, 443)], 1_000);
    const rs = t.flush(0, 2_000);
    expect(rs.map((r) => [r.action, r.reporter, r.packetsIn, r.bytesIn, r.packetsOut])).toEqual([
      ['deny', 'dst', 2, 100, 0],
      ['deny', 'src', 0, 0, 1],
    ]);
    expect(t.takeDeniedPackets()).toBe(3);
    expect(t.flush(2_000, 4_000)).toEqual([]);
  });

  it('with includePolicies: deny records name the deny policy, allowed ones the allow policies NFLOG named for their 5-tuple that interval, else "-"', () => {
    const allow = (src: string, dst: string, sport: number, dport: number, policy: string) => {
      const p = deny(1, src, dst, sport, dport);
      const prefix = `API0|${policy}`;
      return {
        ...p,
        prefix,
        verdict: { ...p.verdict!, action: 'allow' as const, policyName: policy, prefix },
      };
    };
    const run = (includePolicies: boolean) => {
      const t = table(e(), {
        includePolicies,
        aggregationKindForAllowed: AggregationKind.PrefixName,
      });
      t.onNflog(
        [
          allow('10.244.1.2', '10.244.1.3', 1, 80, 'default.allow-web'),
          allow('10.244.1.2', '10.244.1.4', 2, 80, 'security.allow-all'),
          allow('10.244.1.2', '10.244.1.4', 2, 80, 'default.allow-web'),
          deny(1, '10.244.1.2', '10.244.1.3', 9, 6379),
        ],
        500,
      );
      feedEvents(
        t,
        [
          closed('10.244.1.3', 1, 80, 1, 1),
          closed('10.244.1.4', 2, 80, 2, 2),
          closed('10.244.1.3', 3, 443, 3, 3),
        ],
        1_000,
      );
      const first = t.flush(0, 2_000);
      // The next interval: the allow names were that interval's; this connection's NFLOG saw none.
      feedEvents(t, [closed('10.244.1.4', 4, 80, 4, 1)], 3_000);
      return [...first, ...t.flush(2_000, 4_000)];
    };
    const on = run(true);
    const view = (r: FlowRecord) =>
      [
        r.action,
        r.reporter,
        r.dstName,
        r.dstPort,
        r.endTime,
        r.srcNameAggr,
        r.dstNameAggr,
        r.policies,
      ].join(' ');
    expect(on.map(view).sort()).toEqual(
      [
        'allow dst web-7d98456675-* 80 2 client-1 web-7d98456675-* default.allow-web|security.allow-all',
        'allow src web-7d98456675-* 80 2 client-1 web-7d98456675-* default.allow-web|security.allow-all',
        'allow dst web-7d98456675-* 443 2 client-1 web-7d98456675-* -',
        'allow src web-7d98456675-* 443 2 client-1 web-7d98456675-* -',
        'deny dst web-7d98456675-aaaaa 6379 2 client-1 web-7d98456675-* default.default-deny',
        'allow dst web-7d98456675-* 80 4 client-1 web-7d98456675-* -',
        'allow src web-7d98456675-* 80 4 client-1 web-7d98456675-* -',
      ].sort(),
    );
    // Off: the same records, counts and all, without the three fields.
    const strip = ({ srcNameAggr: _a, dstNameAggr: _b, policies: _c, ...r }: FlowRecord) => r;
    expect(run(false)).toEqual(on.map(strip));
  });

  it('kind 2 merges the replicas of a deployment: numFlows = distinct 5-tuples, labels intersected', () => {
    const t = table(e(), {
      aggregationKindForAllowed: AggregationKind.PrefixName,
      includeLabels: true,
    });
    feedEvents(
      t,
      [
        closed('10.244.1.3', 1, 80, 1, 1),
        closed('10.244.1.4', 2, 80, 2, 2),
        closed('10.244.1.4', 3, 80, 3, 3),
      ],
      1_000,
    );
    const dst = t.flush(0, 2_000).filter((r) => r.reporter === 'dst');
    expect(dst).toHaveLength(1);
    expect(dst[0]).toMatchObject({
      dstName: 'web-7d98456675-*',
      srcIP: '-',
      dstIP: '-',
      srcPort: '-',
      dstPort: 80,
      numFlows: 3,
      numFlowsStarted: 3,
      numFlowsCompleted: 3,
      packetsIn: 6,
      bytesIn: 60,
      dstLabels: '[app=web]',
    });
  });

  it('kind 1 drops only the source port', () => {
    const t = table(e(), { aggregationKindForAllowed: AggregationKind.NoSourcePort });
    feedEvents(
      t,
      [
        ev(
          'destroy',
          { src: '10.244.1.2', dst: '10.244.1.3', sport: 1, dport: 80, id: 1 },
          [1, 10, 1, 10],
        ),
        ev(
          'destroy',
          { src: '10.244.1.2', dst: '10.244.1.3', sport: 2, dport: 80, id: 2 },
          [1, 10, 1, 10],
        ),
      ],
      1_000,
    );
    const src = t.flush(0, 2_000).filter((r) => r.reporter === 'src');
    expect(src.map((r) => [r.srcIP, r.srcPort, r.dstName, r.numFlows])).toEqual([
      ['10.244.1.2', '-', 'web-7d98456675-aaaaa', 2],
    ]);
  });

  it('numFlows stays exact when two 5-tuples share a hash (they take the exact set path)', () => {
    // Found by search: these two 5-tuples give the same 30-bit tupleHash.
    const a = { src: '10.244.1.10', sport: 2379 };
    const b = { src: '10.244.1.11', sport: 2133 };
    const dst = '10.244.2.20';
    expect(tupleHash(6, a.src, dst, a.sport, 80)).toBe(tupleHash(6, b.src, dst, b.sport, 80));
    const eps = new FakeEndpoints()
      .add(a.src, 0, { name: 'client-1', aggregatedName: 'client-*' })
      .add(b.src, 0, { name: 'client-2', aggregatedName: 'client-*' })
      .add(dst, 0, { name: 'web-1', aggregatedName: 'web-*' });
    const t = table(eps, { aggregationKindForAllowed: AggregationKind.PrefixName });
    feedEvents(
      t,
      [
        ev('new', { src: a.src, dst, sport: a.sport, dport: 80, id: 1 }),
        ev('new', { src: b.src, dst, sport: b.sport, dport: 80, id: 2 }),
        // The same 5-tuple as id 1 under another conntrack id (a reused id slot).
        ev('new', { src: a.src, dst, sport: a.sport, dport: 80, id: 3 }),
      ],
      1_000,
    );
    const r = t.flush(0, 2_000).filter((x) => x.reporter === 'src');
    expect(r.map((x) => [x.srcName, x.numFlows, x.numFlowsStarted])).toEqual([['client-*', 2, 3]]);
  });

  it('ICMP records carry "-" for both ports', () => {
    const t = table(e());
    feedEvents(
      t,
      [
        ev(
          'destroy',
          { src: '10.244.1.2', dst: '10.244.1.3', sport: 0, dport: 0, proto: 1 },
          [3, 252, 3, 252],
        ),
      ],
      1_000,
    );
    const r = t.flush(0, 2_000)[0]!;
    expect([r.proto, r.srcPort, r.dstPort]).toEqual([1, '-', '-']);
  });
});

describe('endpoint answers kept per connection', () => {
  it('are refreshed when the cache changes (labels, IP reuse, prune)', async () => {
    const { EndpointCache } = await import('../../src/endpoints/cache.js');
    const { FlowTable, AggregationKind } = await import('../../src/flows/index.js');
    const cache = new EndpointCache({ nodeName: 'n', graceMs: 1_000 });
    const pod = (name: string, ns: string, labels: Record<string, string>) => ({
      namespace: ns,
      name,
      ips: ['10.244.0.5'],
      nodeName: 'n',
      labels,
    });
    cache.upsertPod(pod('web-0', 'shop', { v: '1' }), 0);
    cache.upsertPod(
      { namespace: 'db', name: 'db-0', ips: ['10.244.0.6'], nodeName: 'n', labels: {} },
      0,
    );
    cache.markSynced();
    const t = new FlowTable({
      endpoints: cache,
      aggregationKindForAllowed: AggregationKind.Full,
      aggregationKindForDenied: AggregationKind.Full,
      includeLabels: true,
      ingressGroup: 1,
      egressGroup: 2,
    });
    const o = {
      family: 4 as const,
      proto: 6,
      src: '10.244.0.5',
      dst: '10.244.0.6',
      sport: 40_000,
      dport: 5432,
    };
    const dump = (c: number) => ({
      type: 'update' as const,
      fromDump: true,
      orig: o,
      reply: { ...o, src: o.dst, dst: o.src, sport: 5432, dport: 40_000 },
      id: 1,
      zone: 0,
      mark: 0,
      status: 0,
      tcpState: 3,
      countersOrig: { packets: c, bytes: c * 100 },
      countersReply: { packets: c, bytes: c * 100 },
      startNs: undefined,
      stopNs: undefined,
      startMs: 10,
      stopMs: undefined,
    });
    const srcOf = (rs: { reporter: string; srcLabels: string; srcName: string }[]) =>
      rs.filter((r) => r.reporter === 'src').map((r) => `${r.srcName} ${r.srcLabels}`);
    feedDump(t, [], 5);
    feedDump(t, [dump(1)], 100);
    expect(srcOf(t.flush(0, 1_000))).toEqual(['web-0 [v=1]']);
    cache.upsertPod(pod('web-0', 'shop', { v: '2' }), 1_500);
    feedDump(t, [dump(2)], 1_900);
    expect(srcOf(t.flush(1_000, 2_000))).toEqual(['web-0 [v=2]']);
    // Its IP given to another pod later: the connection keeps the owner of its start.
    cache.deletePod({ namespace: 'shop', name: 'web-0' }, 2_500);
    cache.upsertPod(pod('job-1', 'batch', {}), 2_600);
    feedDump(t, [dump(3)], 2_900);
    expect(srcOf(t.flush(2_000, 3_000))).toEqual(['web-0 [v=2]']);
    // After the grace period the old owner is pruned: the cached answer is dropped
    // with it, and the cache now answers with the owner it still knows.
    cache.prune(10_000);
    feedDump(t, [dump(4)], 3_900);
    expect(srcOf(t.flush(3_000, 4_000))).toEqual(['job-1 -']);
  });
});
