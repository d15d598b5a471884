/**
 * Generated flow records for the report's property tests: every endpoint
 * type, aggregation kinds 0-2, byte counts far above 2^32, both reporters
 * and actions; and a plain recount to check sums against.
 */
import fc from 'fast-check';
import type { FlowRecord } from '../../src/format/record.js';

export const T0 = 1_767_225_600; // 2026-01-01T00:00:00Z
export const ns = fc.constantFrom('prod', 'dev', 'stars', 'kube-system');
const endpoint = fc.oneof(
  fc.record({
    type: fc.constant('wep' as const),
    ns,
    name: fc.constantFrom('api-*', 'web-*', 'db-0'),
  }),
  fc.record({
    type: fc.constant('net' as const),
    ns: fc.constant('-'),
    name: fc.constantFrom('pub', 'pvt', 'aws'),
  }),
  fc.record({
    type: fc.constant('hep' as const),
    ns: fc.constant('-'),
    name: fc.constantFrom('node-1', 'node-2'),
  }),
);
const big = fc.integer({ min: 0, max: 2 ** 40 }); // byte counts far above 2^32, still exact in a double
export const recordArb: fc.Arbitrary<FlowRecord> = fc
  .record({
    src: endpoint,
    dst: endpoint,
    slot: fc.integer({ min: 0, max: 287 }),
    kind: fc.constantFrom(0, 1, 2),
    proto: fc.constantFrom(6, 17, 1),
    dstPort: fc.constantFrom(53, 80, 443, 5432),
    numFlows: fc.integer({ min: 1, max: 1_000 }),
    reporter: fc.constantFrom('src' as const, 'dst' as const),
    packetsIn: fc.integer({ min: 0, max: 2 ** 32 }),
    packetsOut: fc.integer({ min: 0, max: 2 ** 32 }),
    bytesIn: big,
    bytesOut: big,
    action: fc.constantFrom('allow' as const, 'deny' as const),
  })
  .map((g) => ({
    startTime: T0 + g.slot * 300,
    endTime: T0 + g.slot * 300 + 300,
    srcType: g.src.type,
    srcNamespace: g.src.ns,
    srcName: g.src.name,
    srcLabels: '-',
    dstType: g.dst.type,
    dstNamespace: g.dst.ns,
    dstName: g.dst.name,
    dstLabels: '-',
    // kind 0 keeps IPs and the source port; 1 drops the source port; 2 also the IPs.
    srcIP: g.kind === 2 ? '-' : '10.0.0.1',
    dstIP: g.kind === 2 ? '-' : g.dst.type === 'net' ? '203.0.113.7' : '10.0.0.2',
    proto: g.proto,
    srcPort: g.kind === 0 ? 40_000 : '-',
    dstPort: g.proto === 1 ? '-' : g.dstPort,
    numFlows: g.numFlows,
    numFlowsStarted: g.numFlows,
    numFlowsCompleted: 0,
    reporter: g.reporter,
    packetsIn: g.packetsIn,
    packetsOut: g.packetsOut,
    bytesIn: g.bytesIn,
    bytesOut: g.bytesOut,
    action: g.action,
  }));

/** Records of the 27-field variant too: some name the policies that decided ('|'-joined). */
export const recordWithPoliciesArb: fc.Arbitrary<FlowRecord> = fc
  .tuple(recordArb, fc.option(fc.constantFrom('default.deny', 'a.x|b.y'), { nil: undefined }))
  .map(([r, policies]) => (policies === undefined ? r : { ...r, policies }));

/** Records, numFlows, packets and bytes of the records `keep` selects. */
export function recount(records: readonly FlowRecord[], keep: (r: FlowRecord) => boolean) {
  let flows = 0;
  let packets = 0;
  let bytes = 0;
  let n = 0;
  for (const r of records) {
    if (!keep(r)) continue;
    n++;
    flows += r.numFlows;
    packets += r.packetsIn + r.packetsOut;
    bytes += r.bytesIn + r.bytesOut;
  }
  return { records: n, flows, packets, bytes };
}
