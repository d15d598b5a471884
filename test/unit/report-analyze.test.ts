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
  egressToInternet,
  namespaceTalkers,
  type PairRow,
  topTalkers,
  totals,
} from '../../src/report/analyze.js';
import { renderHtml } from '../../src/report/html.js';
import { ns, recordArb, recount, T0 } from '../helpers/record-arb.js';

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
    bucketSeconds: bucket,
    topTalkers: topTalkers(rs),
    records: rs,
  });

  it('is self-contained: inline style and script, no external resource', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain('<style>');
    // One script, inline.
    expect(html.match(/<script/gi)).toEqual(['<script']);
    expect(html).toContain('<script>(function pageScript()');
    expect(html).not.toMatch(/<link|@import|<img|<iframe|\ssrc=|href="(?!#)/i);
    // url() only for the map's own arrow markers, by fragment.
    for (const u of html.match(/url\([^)]*\)/g) ?? [])
      expect(['url(#arrow-allow)', 'url(#arrow-deny)']).toContain(u);
    // The only URLs are SVG namespace declarations.
    const urls = html.match(/https?:\/\/[^"'\s)]+/g) ?? [];
    expect(new Set(urls)).toEqual(new Set(['http://www.w3.org/2000/svg']));
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
  });

  it('the denied chart bars carry exactly the denied packets, and the talkers bars the top talkers bytes', () => {
    const denied = html.match(/<svg[^>]*id="denied-over-time"[\s\S]*?<\/svg>/)?.[0] ?? '';
    const packets = [...denied.matchAll(/data-packets="(\d+)"/g)].reduce(
      (a, m) => a + Number(m[1]),
      0,
    );
    expect(packets).toBe(t.deniedPackets);
    const talkers = html.match(/<div class="bars" id="top-talkers"[\s\S]*?\n<\/div>/)?.[0] ?? '';
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
      bucketSeconds: bucket,
      topTalkers: [],
      records: named,
    });
    expect(page).toContain('<th>policies</th>');
    expect(page).toContain('<td>default.&lt;deny&gt;</td>');
  });

  it('is well-formed enough to nest: every svg, table and section tag is closed', () => {
    for (const tag of ['svg', 'table', 'tr', 'h2', 'title', 'text', 'g', 'script', 'form', 'ul']) {
      const open = (html.match(new RegExp(`<${tag}[\\s>]`, 'g')) ?? []).length;
      const close = (html.match(new RegExp(`</${tag}>`, 'g')) ?? []).length;
      expect(close, tag).toBe(open);
    }
  });
});
