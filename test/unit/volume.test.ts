import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { OVERFLOW_NAME, VolumeControl } from '../../src/flows/volume.js';
import { decodeRecord, encodeRecord } from '../../src/format/codec.js';
import type { FlowRecord } from '../../src/format/record.js';

function rec(over: Partial<FlowRecord>): FlowRecord {
  return {
    startTime: 100,
    endTime: 400,
    srcType: 'wep',
    srcNamespace: 'a',
    srcName: 'x-1',
    srcLabels: '-',
    dstType: 'wep',
    dstNamespace: 'b',
    dstName: 'y-1',
    dstLabels: '-',
    srcIP: '10.0.0.1',
    dstIP: '10.0.0.2',
    proto: 6,
    srcPort: 1234,
    dstPort: 80,
    numFlows: 1,
    numFlowsStarted: 1,
    numFlowsCompleted: 1,
    reporter: 'src',
    packetsIn: 1,
    packetsOut: 1,
    bytesIn: 60,
    bytesOut: 60,
    action: 'allow',
    ...over,
  };
}

const none = { includeNamespaces: [], excludeNamespaces: [], maxRecordsPerFlush: 0 };

describe('VolumeControl: namespaces', () => {
  it('filters on the reporting endpoint namespace, with * wildcards, and counts what it dropped', () => {
    const v = new VolumeControl({ ...none, excludeNamespaces: ['kube-*', 'monitoring'] });
    const records = [
      rec({ reporter: 'src', srcNamespace: 'kube-system' }), // dropped
      rec({ reporter: 'dst', srcNamespace: 'kube-system', dstNamespace: 'prod' }), // kept: prod reported it
      rec({ reporter: 'dst', dstNamespace: 'monitoring' }), // dropped
      rec({ reporter: 'src', srcNamespace: 'kube-public' }), // kube-* matches
    ];
    expect(v.apply(records)).toEqual([records[1]]);
    expect(v.stats.filteredByNamespace).toBe(3);
    expect(v.apply([rec({ srcNamespace: 'kubernetes-dashboard' })])).toHaveLength(1);
  });

  it('include keeps only the listed namespaces; exclude wins over include', () => {
    const v = new VolumeControl({
      ...none,
      includeNamespaces: ['prod', 'pay*'],
      excludeNamespaces: ['payments-dev'],
    });
    const ns = ['prod', 'payments', 'payments-dev', 'dev'].map((n) => rec({ srcNamespace: n }));
    expect(v.apply(ns).map((r) => r.srcNamespace)).toEqual(['prod', 'payments']);
  });

  it('is a no-op (same array) when nothing is configured', () => {
    const v = new VolumeControl(none);
    const r = [rec({})];
    expect(v.active).toBe(false);
    expect(v.apply(r)).toBe(r);
  });
});

const arbRecord = fc
  .record({
    action: fc.constantFrom('allow' as const, 'deny' as const),
    reporter: fc.constantFrom('src' as const, 'dst' as const),
    packetsIn: fc.nat(1_000),
    packetsOut: fc.nat(1_000),
    bytesIn: fc.nat(1_000_000),
    bytesOut: fc.nat(1_000_000),
    numFlows: fc.integer({ min: 1, max: 50 }),
  })
  .map((o) => rec({ ...o, numFlowsStarted: o.numFlows, numFlowsCompleted: 0 }));

function totals(records: readonly FlowRecord[]) {
  const t = new Map<string, number[]>();
  for (const r of records) {
    const k = `${r.action} ${r.reporter}`;
    const v = t.get(k) ?? [0, 0, 0, 0, 0, 0];
    t.set(k, [
      v[0]! + r.packetsIn,
      v[1]! + r.packetsOut,
      v[2]! + r.bytesIn,
      v[3]! + r.bytesOut,
      v[4]! + r.numFlows,
      v[5]! + r.numFlowsStarted,
    ]);
  }
  return t;
}

describe('VolumeControl: maxRecordsPerFlush', () => {
  it('folds the rest into one overflow record per action and reporter; totals stay exact', () => {
    fc.assert(
      fc.property(
        fc.array(arbRecord, { maxLength: 200 }),
        fc.integer({ min: 1, max: 50 }),
        (records, cap) => {
          const v = new VolumeControl({ ...none, maxRecordsPerFlush: cap });
          const out = v.apply(records);
          expect(totals(out)).toEqual(totals(records));
          const overflow = out.filter((r) => r.srcName === OVERFLOW_NAME);
          if (records.length <= cap) {
            expect(out).toEqual(records);
          } else {
            expect(out.length - overflow.length).toBe(cap);
            expect(v.stats.folded).toBe(records.length - cap);
            expect(new Set(overflow.map((r) => `${r.action} ${r.reporter}`)).size).toBe(
              overflow.length,
            );
            // Denied records are kept before any allowed one is.
            const keptAllowed = out.some(
              (r) => r.action === 'allow' && r.srcName !== OVERFLOW_NAME,
            );
            const foldedDeny = overflow.some((r) => r.action === 'deny');
            expect(keptAllowed && foldedDeny).toBe(false);
          }
          // Overflow records are valid 24-field records.
          for (const r of overflow) expect(decodeRecord(encodeRecord(r))).toEqual(r);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('config: volume keys', () => {
  it('reads namespace lists from YAML-free env (comma-separated) and rejects bad names', () => {
    const { config } = loadConfig({
      env: {
        FLOWTRAIL_CLUSTER_NAME: 'c',
        FLOWTRAIL_NODE_NAME: 'n',
        FLOWTRAIL_FLOW_LOGS_EXCLUDE_NAMESPACES: 'kube-system, kube-*',
        FLOWTRAIL_FLOW_LOGS_MAX_RECORDS_PER_FLUSH: '5000',
      },
    });
    expect(config.flowLogs.excludeNamespaces).toEqual(['kube-system', 'kube-*']);
    expect(config.flowLogs.includeNamespaces).toEqual([]);
    expect(config.flowLogs.maxRecordsPerFlush).toBe(5000);
    expect(() =>
      loadConfig({
        env: {
          FLOWTRAIL_CLUSTER_NAME: 'c',
          FLOWTRAIL_NODE_NAME: 'n',
          FLOWTRAIL_FLOW_LOGS_INCLUDE_NAMESPACES: 'Prod_1',
        },
      }),
    ).toThrow(/flowLogs\.includeNamespaces\.0: expected a namespace name/);
  });
});
