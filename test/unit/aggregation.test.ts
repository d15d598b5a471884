import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Endpoint } from '../../src/endpoints/types.js';
import {
  type AggregationKind,
  Aggregator,
  type Contribution,
  EndpointIds,
} from '../../src/flows/aggregation.js';
import type { FlowRecord } from '../../src/format/record.js';

// Replicas share an aggregated name; two objects of one pod stand for a
// re-listed pod (same identity, another object); net endpoints are shared.
const pod = (ns: string, name: string, aggr: string, app: string): Endpoint => ({
  type: 'wep',
  namespace: ns,
  name,
  aggregatedName: aggr,
  labels: { app, pod: name },
  local: true,
});
const ENDPOINTS: Endpoint[] = [
  pod('prod', 'web-5d9f8-aaaaa', 'web-5d9f8-*', 'web'),
  pod('prod', 'web-5d9f8-bbbbb', 'web-5d9f8-*', 'web'),
  pod('prod', 'web-5d9f8-aaaaa', 'web-5d9f8-*', 'web'),
  pod('dev', 'web-5d9f8-aaaaa', 'web-5d9f8-*', 'web'),
  pod('prod', 'db-0', 'db-*', 'db'),
  { type: 'net', namespace: '-', name: 'pub', aggregatedName: 'pub', labels: {}, local: false },
  {
    type: 'hep',
    namespace: '-',
    name: 'node-1',
    aggregatedName: 'node-1',
    labels: {},
    local: true,
  },
];
const IPS = ['10.244.1.2', '10.244.1.3', '8.8.8.8'];

/** A connection's fixed fields (its memo is only valid for them). */
const connArb = fc.record({
  srcIP: fc.constantFrom(...IPS),
  dstIP: fc.constantFrom(...IPS),
  proto: fc.constantFrom(1, 6, 17),
  srcPort: fc.constantFrom(40_000, 40_001),
  dstPort: fc.constantFrom(53, 80, 65_535),
  action: fc.constantFrom('allow' as const, 'deny' as const),
  /** Its owners, as the flow table keeps them while the endpoint cache does not change. */
  src: fc.nat(ENDPOINTS.length - 1),
  dst: fc.nat(ENDPOINTS.length - 1),
});
type ConnSpec = typeof connArb extends fc.Arbitrary<infer T> ? T : never;

const contributionArb = fc.record({
  // Usually the connection's owners; sometimes others (the cache changed: the memo is stale).
  src: fc.option(fc.nat(ENDPOINTS.length - 1), { freq: 4 }),
  dst: fc.option(fc.nat(ENDPOINTS.length - 1), { freq: 4 }),
  reporter: fc.constantFrom('src' as const, 'dst' as const),
  started: fc.boolean(),
  completed: fc.boolean(),
  packetsIn: fc.nat(1000),
  packetsOut: fc.nat(1000),
  bytesIn: fc.nat(100_000),
  bytesOut: fc.nat(100_000),
  /** Which connection (memo) it belongs to: a connection contributes in several flushes. */
  conn: fc.nat(5),
});
type Spec = typeof contributionArb extends fc.Arbitrary<infer T> ? T : never;

/**
 * What the flow table keeps per connection: the memo of its buckets, per
 * reporter side, and the endpoints they were made for.
 */
interface Memo {
  src: Endpoint | undefined;
  dst: Endpoint | undefined;
  /** Two cells per reporter side: src at 0, dst at 2. */
  cells: Int32Array;
}
const emptyMemo = (): Memo => ({ src: undefined, dst: undefined, cells: new Int32Array(4) });

/** Adds `c` as the flow table does: with its connection's memo while its endpoints are the same. */
function addAs(agg: Aggregator, c: Contribution, m: Memo): void {
  if (m.src !== c.src || m.dst !== c.dst) {
    m.src = c.src;
    m.dst = c.dst;
    m.cells.fill(0);
  }
  agg.add(c, m.cells, c.reporter === 'src' ? 0 : 2);
}

function contribution(s: Spec, conns: ConnSpec[]): Contribution {
  const k = conns[s.conn % conns.length]!;
  const ports = k.proto !== 1;
  // ICMP has no ports: its connections between two addresses share the 5-tuple.
  const tuple = (x: ConnSpec) =>
    [x.proto, x.srcIP, x.dstIP, ...(x.proto === 1 ? [] : [x.srcPort, x.dstPort])].join();
  return {
    src: ENDPOINTS[s.src ?? k.src]!,
    dst: ENDPOINTS[s.dst ?? k.dst]!,
    srcIP: k.srcIP,
    dstIP: k.dstIP,
    proto: k.proto,
    srcPort: ports ? k.srcPort : undefined,
    dstPort: ports ? k.dstPort : undefined,
    reporter: s.reporter,
    action: k.action,
    started: s.started,
    completed: s.completed,
    packetsIn: s.packetsIn,
    packetsOut: s.packetsOut,
    bytesIn: s.bytesIn,
    bytesOut: s.bytesOut,
    // As the flow table says it: unshared when no other connection has the 5-tuple.
    tupleShared: conns.filter((x) => tuple(x) === tuple(k)).length > 1,
  };
}

/** The definition, written plainly: group by the kind's key fields, sum, count distinct 5-tuples. */
function reference(
  cs: readonly Contribution[],
  kind: AggregationKind,
  includePolicies: boolean,
): FlowRecord[] {
  const groups = new Map<
    string,
    { r: FlowRecord; tuples: Set<string>; labels: [object, object] }
  >();
  for (const c of cs) {
    const name = (e: Endpoint) => (kind === 2 ? e.aggregatedName : e.name);
    const r: FlowRecord = {
      startTime: 0,
      endTime: 60,
      srcType: c.src.type,
      srcNamespace: c.src.namespace,
      srcName: name(c.src),
      srcLabels: '-',
      dstType: c.dst.type,
      dstNamespace: c.dst.namespace,
      dstName: name(c.dst),
      dstLabels: '-',
      srcIP: kind === 2 ? '-' : c.srcIP,
      dstIP: kind === 2 ? '-' : c.dstIP,
      proto: c.proto,
      srcPort: kind === 0 && c.srcPort !== undefined ? c.srcPort : '-',
      dstPort: c.dstPort ?? '-',
      numFlows: 0,
      numFlowsStarted: 0,
      numFlowsCompleted: 0,
      reporter: c.reporter,
      packetsIn: 0,
      packetsOut: 0,
      bytesIn: 0,
      bytesOut: 0,
      action: c.action,
    };
    const key = JSON.stringify(r);
    if (includePolicies) {
      r.srcNameAggr = c.src.aggregatedName;
      r.dstNameAggr = c.dst.aggregatedName;
      r.policies = '-';
    }
    const g = groups.get(key) ?? { r, tuples: new Set<string>(), labels: [{}, {}] };
    groups.set(key, g);
    g.tuples.add(JSON.stringify([c.proto, c.srcIP, c.dstIP, c.srcPort, c.dstPort]));
    g.r.numFlows = g.tuples.size;
    g.r.numFlowsStarted += c.started ? 1 : 0;
    g.r.numFlowsCompleted += c.completed ? 1 : 0;
    g.r.packetsIn += c.packetsIn;
    g.r.packetsOut += c.packetsOut;
    g.r.bytesIn += c.bytesIn;
    g.r.bytesOut += c.bytesOut;
  }
  return [...groups.values()].map((g) => g.r);
}

/** One connection and one contribution of it, for the example tests. */
const ONE_CONN: ConnSpec = {
  srcIP: '10.244.1.2',
  dstIP: '10.244.1.3',
  proto: 6,
  srcPort: 40_000,
  dstPort: 80,
  action: 'allow',
  src: 0,
  dst: 4,
};
const ONE_SPEC: Spec = {
  src: null,
  dst: null,
  reporter: 'src',
  started: true,
  completed: false,
  packetsIn: 1,
  packetsOut: 2,
  bytesIn: 3,
  bytesOut: 4,
  conn: 0,
};

/** One aggregator across the flushes, as the flow table keeps it; each flush checked against the definition. */
function run(
  conns: ConnSpec[],
  flushes: Spec[][],
  kind: AggregationKind,
  maxEndpointIds?: number,
  includePolicies = false,
): { got: FlowRecord[]; want: FlowRecord[] }[] {
  const memos: Memo[] = Array.from({ length: 6 }, emptyMemo);
  const agg = new Aggregator({ kind, includeLabels: false, includePolicies, maxEndpointIds });
  return flushes.map((specs) => {
    // As the flow table: a connection contributes at most once per reporter side in a flush.
    const once = [
      ...new Map(specs.map((s) => [`${s.conn % conns.length}${s.reporter}`, s])).values(),
    ];
    const cs = once.map((s) => contribution(s, conns));
    agg.begin({ startTime: 0, endTime: 60 });
    for (const [k, c] of cs.entries()) addAs(agg, c, memos[once[k]!.conn % conns.length]!);
    const got = agg.records();
    // Buckets not used in a flush are let go: the index holds this flush's only.
    expect(agg.size).toBe(got.length);
    return { got, want: reference(cs, kind, includePolicies) };
  });
}

const flushesArb = fc.array(fc.array(contributionArb, { maxLength: 40 }), {
  minLength: 1,
  maxLength: 4,
});

describe('Aggregator against its definition', () => {
  for (const kind of [0, 1, 2] as const) {
    it(`kind ${kind}: each flush gives the records of grouping by the key fields (buckets and memos kept across flushes)`, () => {
      fc.assert(
        fc.property(
          fc.array(connArb, { minLength: 1, maxLength: 6 }),
          flushesArb,
          (conns, flushes) => {
            for (const { got, want } of run(conns, flushes, kind)) expect(got).toEqual(want);
          },
        ),
        { numRuns: 300 },
      );
    });
  }

  it('kind 2: endpoint ids started over between flushes give the same records', () => {
    fc.assert(
      fc.property(
        fc.array(connArb, { minLength: 1, maxLength: 6 }),
        flushesArb,
        (conns, flushes) => {
          // Two identities at most: nearly every flush starts over.
          for (const { got, want } of run(conns, flushes, 2, 2, true)) expect(got).toEqual(want);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a record handed out is never changed by a later flush', () => {
    const memo = emptyMemo();
    const conns = [ONE_CONN];
    const spec = ONE_SPEC;
    const agg = new Aggregator({ kind: 2, includeLabels: false, includePolicies: false });
    agg.begin({ startTime: 0, endTime: 60 });
    addAs(agg, contribution(spec, conns), memo);
    const [first] = agg.records();
    const copy = structuredClone(first);
    agg.begin({ startTime: 60, endTime: 120 });
    addAs(agg, contribution({ ...spec, packetsOut: 50 }, conns), memo);
    const [second] = agg.records();
    expect(first).toEqual(copy);
    expect(second).toMatchObject({ startTime: 60, packetsOut: 50, numFlowsStarted: 1 });
    expect(second).not.toBe(first);
  });

  it('a memo whose bucket was dropped and given to another key is not trusted', () => {
    for (const kind of [0, 2] as const) {
      const agg = new Aggregator({ kind, includeLabels: false, includePolicies: false });
      const at = { startTime: 0, endTime: 60 };
      const [a, b, c] = [0, 4, 5].map((dst) => contribution(ONE_SPEC, [{ ...ONE_CONN, dst }]));
      const memoA = new Int32Array(2);
      agg.begin(at);
      agg.add(a!, memoA);
      agg.records();
      agg.begin(at);
      agg.add(b!); // a's bucket is not used: dropped by records()
      agg.records();
      agg.begin(at);
      agg.add(c!); // a new key: it gets a's old bucket number
      agg.add(a!, memoA);
      expect(agg.records().map((r) => [r.dstName, r.numFlows, r.packetsOut])).toEqual([
        [c!.dst[kind === 2 ? 'aggregatedName' : 'name'], 1, 2],
        [a!.dst[kind === 2 ? 'aggregatedName' : 'name'], 1, 2],
      ]);
    }
  });

  it('EndpointIds: one id per (type, namespace, aggregated name), whatever the object', () => {
    const ids = new EndpointIds();
    const [a, b, aAgain, otherNs, db] = ENDPOINTS;
    expect(ids.aggregateId(a!)).toBe(ids.aggregateId(b!));
    expect(ids.aggregateId(a!)).toBe(ids.aggregateId(aAgain!));
    expect(ids.aggregateId(a!)).not.toBe(ids.aggregateId(otherNs!));
    expect(ids.aggregateId(a!)).not.toBe(ids.aggregateId(db!));
  });
});
