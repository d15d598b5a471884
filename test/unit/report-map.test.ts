/**
 * The report page's pure parts: units a reader sees (binary byte units,
 * protocol names), workload names from pod names, the graph and the
 * namespace matrix (exact sums, each flow once), the ring layout (every
 * node its own slot, deterministic), denied packets by cause (policy for
 * 27-field records, namespace for 24-field ones) and the what-if diff file
 * (its documented shape accepted, anything else refused naming the field).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { FlowRecord } from '../../src/format/record.js';
import { deniesByCause, OTHER_SERIES } from '../../src/report/denies.js';
import { parseWhatIfDiff, readWhatIfDiff } from '../../src/report/diff.js';
import { buildGraph, countedOnce, namespaceMatrix, workloadOf } from '../../src/report/graph.js';
import { whatIfKeys } from '../../src/report/map-svg.js';
import { ringLayout } from '../../src/report/ring-layout.js';
import { formatBytes, formatShortCount, protoName, protoNumber } from '../../src/report/units.js';
import { recordWithPoliciesArb, recount, T0 } from '../helpers/record-arb.js';
import { starsRecords, syntheticCluster } from '../helpers/report-records.js';

describe('units a reader sees', () => {
  it('bytes in binary units, one decimal below 100', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1024)).toBe('1.0 KiB');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(94_000)).toBe('91.8 KiB');
    expect(formatBytes(950_000)).toBe('928 KiB');
    // Just under 1 MiB rounds up into MiB, never "1024 KiB".
    expect(formatBytes(1024 * 1024 - 100)).toBe('1.0 MiB');
    expect(formatBytes(5 * 1024 ** 3)).toBe('5.0 GiB');
    expect(formatBytes(2 ** 41)).toBe('2.0 TiB');
    expect(() => formatBytes(-1)).toThrow(/bytes must be a finite count ≥ 0, got -1/);
  });

  it('a shown byte count is within 0.5% (or one unit step of rounding) of the true one', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 52 }), (n) => {
        const m = /^(\d+(?:\.\d)?) (B|KiB|MiB|GiB|TiB|PiB)$/.exec(formatBytes(n));
        expect(m).not.toBeNull();
        const scale = 1024 ** ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'].indexOf(m![2]!);
        const shown = Number(m![1]) * scale;
        const step = (m![1]!.includes('.') ? 0.05 : 0.5) * scale;
        expect(Math.abs(shown - n)).toBeLessThanOrEqual(step + 1e-9 * n);
        expect(Number(m![1])).toBeLessThan(1024);
      }),
    );
  });

  it('protocols by name, both ways; unknown numbers stay numbers', () => {
    expect([1, 6, 17, 58, 132].map(protoName)).toEqual(['ICMP', 'TCP', 'UDP', 'ICMPv6', 'SCTP']);
    expect(protoName(253)).toBe('proto 253');
    expect(protoNumber('tcp')).toBe(6);
    expect(protoNumber('SCTP')).toBe(132);
    expect(protoNumber('17')).toBe(17);
    expect(protoNumber('256')).toBeUndefined();
    expect(protoNumber('QUIC')).toBeUndefined();
  });

  it('short axis counts', () => {
    expect([0, 999, 1000, 1250, 34_000, 1_500_000].map(formatShortCount)).toEqual([
      '0',
      '999',
      '1k',
      '1.3k',
      '34k',
      '1.5M',
    ]);
  });
});

describe('workload names', () => {
  it('drops replica suffixes and pod-template-hashes, keeps names that have none', () => {
    expect(workloadOf('frontend-5d9b7c8f4-h2x8k')).toBe('frontend');
    expect(workloadOf('frontend-5d9b7c8f4-*')).toBe('frontend');
    expect(workloadOf('frontend-5d9b7c8f4-h2x8k', 'frontend-5d9b7c8f4-*')).toBe('frontend');
    expect(workloadOf('management-ui-5b7c9d8f6-t6n2c')).toBe('management-ui');
    expect(workloadOf('db-0')).toBe('db');
    expect(workloadOf('db-*')).toBe('db');
    expect(workloadOf('fluentd-x7k2p')).toBe('fluentd');
    expect(workloadOf('fluentd-x7k2p', 'fluentd-*')).toBe('fluentd');
    // Words are never taken for generated suffixes (those have no vowels).
    expect(workloadOf('payments-backend')).toBe('payments-backend');
    expect(workloadOf('api-server')).toBe('api-server');
    expect(workloadOf('coredns')).toBe('coredns');
  });
});

const records = fc.array(recordWithPoliciesArb, { maxLength: 200 });

describe('the flow graph and the namespace matrix', () => {
  it('edges sum exactly the records counted once: every deny, allows from one reporter', () => {
    fc.assert(
      fc.property(records, (rs) => {
        const g = buildGraph(rs);
        for (const action of ['allow', 'deny'] as const) {
          const edges = g.edges.filter((e) => e.action === action);
          const sum = (k: 'records' | 'flows' | 'packets' | 'bytes') =>
            edges.reduce((n, e) => n + e[k], 0);
          expect({
            records: sum('records'),
            flows: sum('flows'),
            packets: sum('packets'),
            bytes: sum('bytes'),
          }).toEqual(recount(rs, (r) => r.action === action && countedOnce(r)));
          // Ports add up to their edge.
          for (const e of edges) expect(e.ports.reduce((n, p) => n + p.flows, 0)).toBe(e.flows);
        }
        // An allowed record reported by the pod's own side is the one counted.
        expect(recount(rs, (r) => r.action === 'allow' && countedOnce(r))).toEqual(
          recount(
            rs,
            (r) => r.action === 'allow' && r.reporter === (r.srcType === 'wep' ? 'src' : 'dst'),
          ),
        );
        // Every node is in exactly one group, and every edge's ends are nodes.
        const grouped = g.groups.flatMap((x) => x.nodes.map((n) => n.id));
        expect(new Set(grouped).size).toBe(grouped.length);
        expect(new Set(grouped)).toEqual(new Set(g.nodes.keys()));
        for (const e of g.edges) expect(g.nodes.has(e.src) && g.nodes.has(e.dst)).toBe(true);
        // The matrix holds the same totals as the edges.
        const m = namespaceMatrix(g);
        const cells = m.cells.flat();
        expect(cells.reduce((n, c) => n + c.allowBytes, 0)).toBe(
          g.edges.filter((e) => e.action === 'allow').reduce((n, e) => n + e.bytes, 0),
        );
        expect(cells.reduce((n, c) => n + c.denyFlows, 0)).toBe(
          g.edges.filter((e) => e.action === 'deny').reduce((n, e) => n + e.flows, 0),
        );
      }),
    );
  });

  it('folds pods into workloads and orders groups: namespaces by name, then hosts, then outside', () => {
    const g = buildGraph(starsRecords(T0));
    expect(g.groups.map((x) => x.name)).toEqual(['client', 'management-ui', 'stars', '(external)']);
    expect(g.groups.find((x) => x.name === 'stars')!.nodes.map((n) => n.id)).toEqual([
      'wep:stars/backend',
      'wep:stars/frontend',
    ]);
    const big = buildGraph(syntheticCluster(200).records);
    expect(big.groups.at(-2)!.name).toBe('(hosts)');
    expect(big.groups.at(-1)!.name).toBe('(external)');
  });

  it('is the same graph whatever the order of the records', () => {
    fc.assert(
      fc.property(records, fc.integer(), (rs, seed) => {
        const shuffled = fc.sample(fc.shuffledSubarray(rs, { minLength: rs.length }), {
          numRuns: 1,
          seed,
        })[0]!;
        const a = buildGraph(rs);
        const b = buildGraph(shuffled);
        expect(b.groups).toEqual(a.groups);
        expect(b.edges.map((e) => [e.src, e.dst, e.action, e.flows, e.bytes])).toEqual(
          a.edges.map((e) => [e.src, e.dst, e.action, e.flows, e.bytes]),
        );
      }),
      { numRuns: 50 },
    );
  });
});

describe('the ring layout', () => {
  it('gives every node its own slot, at least one slot apart, the same every time', () => {
    const g = buildGraph(syntheticCluster(200).records);
    const input = g.groups.map((x) => ({ name: x.name, nodes: x.nodes }));
    const ring = ringLayout(input);
    expect(ringLayout(input)).toEqual(ring);
    const placed = [...ring.nodes.values()].sort((a, b) => a.angle - b.angle);
    expect(placed).toHaveLength(g.nodes.size);
    const gap = Math.min(...placed.slice(1).map((p, i) => p.angle - placed[i]!.angle));
    // One slot of ring length between neighbours: room for one line of label text.
    expect(gap * ring.radius).toBeGreaterThanOrEqual(ring.options.slot - 0.01);
    expect(placed.at(-1)!.angle).toBeLessThan(2 * Math.PI);
    // Groups are contiguous arcs in the order given, their nodes inside them.
    for (const [i, grp] of ring.groups.entries()) {
      expect(grp.name).toBe(input[i]!.name);
      for (const n of input[i]!.nodes) {
        const a = ring.nodes.get(n.id)!.angle;
        expect(a > grp.start && a < grp.end).toBe(true);
      }
    }
    // Labels on the left half are turned to read left to right.
    for (const p of placed) expect(p.labelAnchor).toBe(p.angle < Math.PI ? 'start' : 'end');
  });

  it('cuts long labels with an ellipsis', () => {
    const ring = ringLayout([{ name: 'a', nodes: [{ id: 'x', label: 'y'.repeat(50) }] }]);
    expect(ring.nodes.get('x')!.label).toBe(`${'y'.repeat(31)}…`);
  });
});

describe('denied packets by cause', () => {
  it('sums to the denied packets in every bucket, one series per cause, at most maxSeries', () => {
    fc.assert(
      fc.property(
        records,
        fc.constantFrom(60, 300),
        fc.integer({ min: 2, max: 8 }),
        (rs, b, max) => {
          const d = deniesByCause(rs, b, max);
          const denies = rs.filter((r) => r.action === 'deny');
          const total = denies.reduce((n, r) => n + r.packetsIn + r.packetsOut, 0);
          expect(d.series.reduce((n, s) => n + s.total, 0)).toBe(total);
          expect(d.series.length).toBeLessThanOrEqual(max);
          for (const s of d.series) expect(s.packets.reduce((n, p) => n + p, 0)).toBe(s.total);
          for (let i = 1; i < d.buckets.length; i++)
            expect(d.buckets[i]! - d.buckets[i - 1]!).toBe(b);
          const withPolicy = denies.filter((r) => r.policies !== undefined).length;
          expect(d.split).toBe(
            denies.length === 0
              ? 'none'
              : withPolicy === denies.length
                ? 'policy'
                : withPolicy === 0
                  ? 'namespace'
                  : 'mixed',
          );
          if (d.series.some((s) => s.key === OTHER_SERIES)) expect(d.series).toHaveLength(max);
        },
      ),
    );
  });

  it('names policies for 27-field records and namespaces for 24-field ones', () => {
    const with27 = deniesByCause(starsRecords(T0), 60);
    expect(with27.split).toBe('policy');
    expect(with27.series.map((s) => s.key)).toEqual(['policy default.default-deny']);
    const with24 = deniesByCause(starsRecords(T0, 6, false), 60);
    expect(with24.split).toBe('namespace');
    // Every stars deny is decided on the stars side (ingress at frontend/backend, egress of frontend).
    expect(with24.series.map((s) => s.key)).toEqual(['namespace stars']);
    const two: FlowRecord = { ...starsRecords(T0)[0]!, policies: 'a.one|b.two' };
    expect(deniesByCause([two], 60).series.map((s) => s.key)).toEqual(['policy a.one + b.two']);
  });
});

describe('the what-if diff file', () => {
  const flow = {
    srcNamespace: 'client',
    srcWorkload: 'client',
    dstNamespace: 'stars',
    dstWorkload: 'frontend-5d9b7c8f4-*',
    port: 80,
    proto: 'TCP',
    count: 3,
  };

  it('accepts the documented shape (extra fields ignored) and keys it like the map', () => {
    const d = parseWhatIfDiff({
      newlyDenied: [{ ...flow, writer: 'netpol' }],
      newlyAllowed: [{ ...flow, dstNamespace: '-', dstWorkload: 'pub', port: null, proto: 1 }],
      version: 1,
    });
    expect(d.newlyDenied[0]).toEqual(flow);
    const keys = whatIfKeys(d);
    expect([...keys.denied]).toEqual(['wep:client/client\nwep:stars/frontend']);
    expect([...keys.allowed]).toEqual(['wep:client/client\nnet:pub']);
  });

  it('refuses anything else, naming the field, the expectation and the value', () => {
    const bad = (v: unknown) => () => parseWhatIfDiff(v, 'd.json');
    expect(bad({ newlyDenied: [] })).toThrow(
      'd.json: newlyAllowed: expected a list of flows, missing',
    );
    expect(bad({ newlyDenied: [{ ...flow, port: 70000 }], newlyAllowed: [] })).toThrow(
      'd.json: newlyDenied[0].port: expected a port 0-65535 or null, got 70000',
    );
    expect(bad({ newlyDenied: [], newlyAllowed: [{ ...flow, proto: 'QUIC' }] })).toThrow(
      'newlyAllowed[0].proto: expected an IANA protocol number 0-255 or a name (TCP, UDP, ICMP, SCTP…), got "QUIC"',
    );
    expect(bad({ newlyDenied: [{ ...flow, proto: 300 }], newlyAllowed: [] })).toThrow(
      'newlyDenied[0].proto: expected an IANA protocol number 0-255 or a name (TCP, UDP, ICMP, SCTP…), got 300',
    );
    expect(bad({ newlyDenied: [{ ...flow, proto: 300 }], newlyAllowed: [] })).toThrow(
      'newlyDenied[0].proto: expected an IANA protocol number 0-255 or a name (TCP, UDP, ICMP, SCTP…), got 300',
    );
    expect(bad({ newlyDenied: [{ ...flow, count: -1 }], newlyAllowed: [] })).toThrow(
      'newlyDenied[0].count: expected a count ≥ 0, got -1',
    );
    expect(bad({ newlyDenied: [{ ...flow, srcWorkload: '' }], newlyAllowed: [] })).toThrow(
      'newlyDenied[0].srcWorkload: expected a name, got ""',
    );
  });

  it('reads a file, and says which when it is missing or not JSON', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ft-diff-'));
    writeFileSync(join(dir, 'ok.json'), JSON.stringify({ newlyDenied: [flow], newlyAllowed: [] }));
    writeFileSync(join(dir, 'bad.json'), '{"newlyDenied": [');
    expect(readWhatIfDiff(join(dir, 'ok.json')).newlyDenied).toHaveLength(1);
    expect(() => readWhatIfDiff(join(dir, 'bad.json'))).toThrow(
      `${join(dir, 'bad.json')}: not JSON`,
    );
    expect(() => readWhatIfDiff(join(dir, 'none.json'))).toThrow(
      `cannot read ${join(dir, 'none.json')} (ENOENT)`,
    );
  });
});
