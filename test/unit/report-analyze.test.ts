/**
 * The report's pure core on generated aggregated records: every answer's
 * sums of numFlows, packets and bytes are exact against a plain recount, no
 * record is counted in two rows of one answer, and the HTML page carries
 * the same numbers in its SVG charts without any script or external
 * resource.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeRecord, encodeRecord } from '../../src/format/codec.js';
import type { FlowRecord } from '../../src/format/record.js';
import {
  bucketFor,
  crossNamespaceIngress,
  deniedFlows,
  deniedOverTime,
  egressToInternet,
  namespaceTalkers,
  type PairRow,
  topTalkers,
  totals,
} from '../../src/report/analyze.js';
import { renderHtml } from '../../src/report/html.js';

const T0 = 1_767_225_600; // 2026-01-01T00:00:00Z
const ns = fc.constantFrom('prod', 'dev', 'stars', 'kube-system');
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
const recordArb: fc.Arbitrary<FlowRecord> = fc
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

function sums(rows: readonly PairRow[]) {
  return rows.reduce(
    (a, r) => ({
      records: a.records + r.records,
      flows: a.flows + r.flows,
      packets: a.packets + r.packets,
      bytes: a.bytes + r.bytes,
    }),
    { records: 0, flows: 0, packets: 0, bytes: 0 },
  );
}

function recount(records: readonly FlowRecord[], keep: (r: FlowRecord) => boolean) {
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

const records = fc.array(recordArb, { maxLength: 300 });

describe('report analysis (pure)', () => {
  it('denied flows sum exactly the deny records, whatever the aggregation kind', () => {
    fc.assert(
      fc.property(records, (rs) => {
        expect(sums(deniedFlows(rs))).toEqual(recount(rs, (r) => r.action === 'deny'));
      }),
    );
  });

  it('egress to the internet counts src-reported records to net/pub only', () => {
    fc.assert(
      fc.property(records, (rs) => {
        const rows = egressToInternet(rs);
        expect(sums(rows)).toEqual(
          recount(rs, (r) => r.reporter === 'src' && r.dstType === 'net' && r.dstName === 'pub'),
        );
        for (const row of rows) expect(row.dst.startsWith('net/pub')).toBe(true);
      }),
    );
  });

  it('cross-namespace ingress into a namespace excludes that namespace as source', () => {
    fc.assert(
      fc.property(records, ns, (rs, target) => {
        const rows = crossNamespaceIngress(rs, target);
        expect(sums(rows)).toEqual(
          recount(
            rs,
            (r) =>
              r.reporter === 'dst' &&
              r.action === 'allow' &&
              r.dstNamespace === target &&
              r.srcNamespace !== target,
          ),
        );
        for (const row of rows) expect(row.src.startsWith(`${target}/`)).toBe(false);
      }),
    );
  });

  it('namespace talkers count each record once, from the side of the namespace', () => {
    fc.assert(
      fc.property(records, ns, (rs, target) => {
        expect(sums(namespaceTalkers(rs, target))).toEqual(
          recount(
            rs,
            (r) =>
              (r.reporter === 'src' && r.srcNamespace === target) ||
              (r.reporter === 'dst' && r.dstNamespace === target && r.srcNamespace !== target),
          ),
        );
      }),
    );
  });

  it('top talkers are the largest allowed pairs by bytes, in order, at most the limit', () => {
    fc.assert(
      fc.property(records, fc.integer({ min: 1, max: 12 }), (rs, limit) => {
        const top = topTalkers(rs, limit);
        expect(top.length).toBeLessThanOrEqual(limit);
        for (let i = 1; i < top.length; i++)
          expect(top[i - 1]!.bytes).toBeGreaterThanOrEqual(top[i]!.bytes);
        const all = topTalkers(rs, Number.MAX_SAFE_INTEGER);
        expect(top).toEqual(all.slice(0, limit));
      }),
    );
  });

  it('denied packets over time add up to the denied total, one bucket per step without gaps', () => {
    fc.assert(
      fc.property(records, fc.constantFrom(300, 900, 3600), (rs, bucket) => {
        const series = deniedOverTime(rs, bucket);
        expect(series.reduce((a, p) => a + p.packets, 0)).toBe(totals(rs).deniedPackets);
        expect(series.reduce((a, p) => a + p.records, 0)).toBe(totals(rs).denyRecords);
        for (let i = 1; i < series.length; i++)
          expect(series[i]!.t - series[i - 1]!.t).toBe(bucket);
      }),
    );
  });

  it('picks round buckets giving at most 60 of them', () => {
    expect(bucketFor(0)).toBe(60);
    expect(bucketFor(3600)).toBe(60);
    expect(bucketFor(86_400)).toBe(1800);
    expect(bucketFor(7 * 86_400)).toBe(3 * 3600);
  });

  it('sums a known pair exactly (two kind-2 records of one replica set)', () => {
    const base = fc.sample(recordArb, { numRuns: 1, seed: 7 })[0]!;
    const a: FlowRecord = {
      ...base,
      srcType: 'wep',
      srcNamespace: 'dev',
      srcName: 'client-*',
      dstType: 'wep',
      dstNamespace: 'prod',
      dstName: 'api-*',
      srcIP: '-',
      dstIP: '-',
      srcPort: '-',
      dstPort: 443,
      proto: 6,
      reporter: 'dst',
      action: 'deny',
      numFlows: 3,
      packetsIn: 7,
      packetsOut: 0,
      bytesIn: 420,
      bytesOut: 0,
    };
    const b: FlowRecord = { ...a, numFlows: 2, packetsIn: 5, bytesIn: 300 };
    expect(deniedFlows([a, b])).toEqual([
      {
        src: 'dev/client-*',
        dst: 'prod/api-*',
        dstPort: '443',
        proto: 6,
        records: 2,
        flows: 5,
        packets: 12,
        bytes: 720,
        policies: [],
      },
    ]);
  });
});

/** The policy names a 27-field record may carry ('|'-joined), '-' for none. */
const policiesArb = fc.oneof(
  fc.constant('-'),
  fc
    .uniqueArray(fc.constantFrom('default.deny', 'prod.allow-api', 'dev.egress'), {
      minLength: 1,
      maxLength: 3,
    })
    .map((p) => p.join('|')),
);

describe('report answers from either record variant', () => {
  const answers = (rs: readonly FlowRecord[]) => [
    deniedFlows(rs),
    egressToInternet(rs),
    crossNamespaceIngress(rs, 'prod'),
    namespaceTalkers(rs, 'dev'),
    topTalkers(rs, Number.MAX_SAFE_INTEGER),
  ];

  it('the same flows give the same answers through the codec, in 24 or 27 fields; 27 adds the policies, united per row', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(recordArb, policiesArb), { maxLength: 120 }), (drawn) => {
        const with27 = drawn.map(([r, policies]) => ({
          ...r,
          srcNameAggr: r.srcName,
          dstNameAggr: r.dstName,
          policies,
        }));
        const read = (variant: 24 | 27) =>
          with27.map((r) => decodeRecord(encodeRecord(r, { variant })));
        const from24 = answers(read(24));
        const from27 = answers(read(27));
        const strip = (rows: PairRow[][]) =>
          rows.map((a) => a.map(({ policies: _, ...rest }) => rest));
        expect(strip(from27)).toEqual(strip(from24));
        for (const rows of from24) for (const row of rows) expect(row.policies).toEqual([]);
        // Each denied row names exactly the policies of its records, sorted.
        const pair = (row: PairRow) => `${row.src}|${row.dst}|${row.dstPort}|${row.proto}`;
        for (const row of from27[0]!) {
          const names = new Set(
            with27
              .filter((r) => deniedFlows([r]).some((one) => pair(one) === pair(row)))
              .flatMap((r) => (r.policies === '-' ? [] : r.policies.split('|'))),
          );
          expect(row.policies).toEqual([...names].sort());
        }
      }),
    );
  });
});

describe('report HTML page', () => {
  const rs = fc.sample(records, { numRuns: 1, seed: 42 })[0]!.concat([
    // A hostile name must come out as text, never markup.
    {
      ...fc.sample(recordArb, { numRuns: 1, seed: 3 })[0]!,
      action: 'allow',
      reporter: 'src',
      srcType: 'wep',
      srcNamespace: 'prod',
      srcName: '<script>alert(1)</script>',
      bytesIn: 1,
      bytesOut: 2 ** 41,
    },
  ]);
  const t = totals(rs);
  const bucket = bucketFor((t.lastTime ?? 0) - (t.firstTime ?? 0));
  const html = renderHtml({
    title: 'flowtrail report',
    source: 'test',
    generatedAt: new Date(T0 * 1000),
    totals: t,
    badLines: 2,
    answers: [['Which flows did policy deny, and between whom?', deniedFlows(rs)]],
    deniedSeries: deniedOverTime(rs, bucket),
    bucketSeconds: bucket,
    topTalkers: topTalkers(rs),
  });

  it('is self-contained: inline style, no script, no external resource', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain('<style>');
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<link|@import|url\(/i);
    // The only URLs are SVG namespace declarations.
    const urls = html.match(/https?:\/\/[^"'\s)]+/g) ?? [];
    expect(new Set(urls)).toEqual(new Set(['http://www.w3.org/2000/svg']));
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
  });

  it('the denied chart bars carry exactly the denied packets, and the talkers chart the top talkers bytes', () => {
    const denied = html.match(/<svg[^>]*id="denied-over-time"[\s\S]*?<\/svg>/)?.[0] ?? '';
    const packets = [...denied.matchAll(/data-packets="(\d+)"/g)].reduce(
      (a, m) => a + Number(m[1]),
      0,
    );
    expect(packets).toBe(t.deniedPackets);
    const talkers = html.match(/<svg[^>]*id="top-talkers"[\s\S]*?<\/svg>/)?.[0] ?? '';
    const bytes = [...talkers.matchAll(/data-bytes="(\d+)"/g)].map((m) => Number(m[1]));
    expect(bytes).toEqual(topTalkers(rs).map((r) => r.bytes));
  });

  it('adds a policies column only when rows name policies (27-field records), escaped', () => {
    expect(html).not.toContain('<th>policies</th>');
    const deny = { ...fc.sample(recordArb, { numRuns: 1, seed: 5 })[0]!, action: 'deny' as const };
    const named = [...rs, deny].map((r) => ({
      ...r,
      policies: r.action === 'deny' ? 'default.<deny>' : '-',
    }));
    const page = renderHtml({
      title: 'flowtrail report',
      source: 'test',
      generatedAt: new Date(T0 * 1000),
      totals: totals(named),
      badLines: 0,
      answers: [['Which flows did policy deny, and between whom?', deniedFlows(named)]],
      deniedSeries: [],
      bucketSeconds: bucket,
      topTalkers: [],
    });
    expect(page).toContain('<th>policies</th>');
    expect(page).toContain('<td>default.&lt;deny&gt;</td>');
  });

  it('is well-formed enough to nest: every svg, table and section tag is closed', () => {
    for (const tag of ['svg', 'table', 'tr', 'h2', 'title', 'text']) {
      const open = (html.match(new RegExp(`<${tag}[\\s>]`, 'g')) ?? []).length;
      const close = (html.match(new RegExp(`</${tag}>`, 'g')) ?? []).length;
      expect(close, tag).toBe(open);
    }
  });
});
