/**
 * The denied-packets metric filters `flowtrail setup` creates, applied to
 * records the encoder writes, in both variants (24 and 27 fields). moto
 * stores metric filters but never applies them, so this file carries an
 * evaluator of CloudWatch's space-delimited filter pattern syntax, as the
 * CloudWatch Logs user guide ("Filter pattern syntax", space-delimited log
 * events) describes it:
 *   [a, b, c = "x", d != "y*", e > 5, f <= 10, , ...]
 * - fields are split on spaces; text between "" or [] is one field, without
 *   the delimiters (the guide's example extracts `GET /index.html HTTP/1.0`
 *   and `10/Oct/2000:13:25:15 -0700`);
 * - a term is a name, optionally with a condition (=, != with a string that
 *   may use * as a wildcard, or a number; <, <=, >, >= with a number), or
 *   empty (an unnamed field); `...` stands for any number of fields;
 * - without `...`, the last term takes the rest of the event: the guide's
 *   `[w1=ERROR, w2]` matches `ERROR 09/25/2014 12:00:02 Failed to process
 *   request`, and it says to add the blank `w2` after `w1=ERROR` (alone,
 *   w1 would be the whole line). An event with fewer fields does not match.
 * The guide says nothing more about surplus fields, so the filters are also
 * checked under the stricter reading (a pattern without `...` matches only
 * events with exactly its number of fields): they count the same under both.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeRecord } from '../../src/format/codec.js';
import type { FlowRecord, RecordVariant } from '../../src/format/record.js';
import { recordFields } from '../../src/format/record.js';
import { totals } from '../../src/report/analyze.js';
import { denyPattern, desiredResources } from '../../src/setup/plan.js';

type Cond = { op: '=' | '!=' | '<' | '<=' | '>' | '>='; value: string; quoted: boolean };
type Term = { name?: string; cond?: Cond } | { ellipsis: true };
/** How surplus fields are treated by a pattern without `...` (see the header). */
type Surplus = 'last-takes-rest' | 'exact-count';

function parsePattern(pattern: string): Term[] {
  const m = /^\[(.*)\]$/.exec(pattern.trim());
  if (!m) throw new Error(`not a space-delimited pattern: ${pattern}`);
  return m[1]!.split(',').map((raw): Term => {
    const t = raw.trim();
    if (t === '...') return { ellipsis: true };
    if (t === '') return {};
    const c = /^(\w+)(?:\s*(=|!=|<=|>=|<|>)\s*(?:"([^"]*)"|([-\w.*]+)))?$/.exec(t);
    if (!c) throw new Error(`bad term ${JSON.stringify(t)}`);
    if (!c[2]) return { name: c[1]! };
    const quoted = c[3] !== undefined;
    const value = c[3] ?? c[4]!;
    if (!['=', '!='].includes(c[2]) && (quoted || Number.isNaN(Number(value))))
      throw new Error(`${c[2]} needs a number: ${t}`);
    return { name: c[1]!, cond: { op: c[2] as Cond['op'], value, quoted } };
  });
}

/**
 * Splits an event into fields: "quoted" and [bracketed] text is one field
 * without its delimiters. With `limit`, the limit-th field is the rest of
 * the event as written.
 */
function splitFields(message: string, limit?: number): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < message.length) {
    while (message[i] === ' ') i++;
    if (i >= message.length) break;
    if (limit !== undefined && out.length === limit - 1) {
      out.push(message.slice(i).trim());
      break;
    }
    const close = message[i] === '"' ? '"' : message[i] === '[' ? ']' : undefined;
    const end = close ? message.indexOf(close, i + 1) : -1;
    if (close && end >= 0) {
      out.push(message.slice(i + 1, end));
      i = end + 1;
    } else if (close) {
      out.push(message.slice(i + 1));
      break;
    } else {
      const space = message.indexOf(' ', i);
      const stop = space < 0 ? message.length : space;
      out.push(message.slice(i, stop));
      i = stop;
    }
  }
  return out;
}

function holds(field: string, c: Cond): boolean {
  if (c.op === '=' || c.op === '!=') {
    const isNum = !c.quoted && !c.value.includes('*') && !Number.isNaN(Number(c.value));
    const eq = isNum
      ? Number(field) === Number(c.value)
      : new RegExp(
          `^${c.value
            .split('*')
            .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
            .join('.*')}$`,
          's',
        ).test(field);
    return c.op === '=' ? eq : !eq;
  }
  const a = Number(field);
  const b = Number(c.value);
  if (Number.isNaN(a)) return false;
  return c.op === '<' ? a < b : c.op === '<=' ? a <= b : c.op === '>' ? a > b : a >= b;
}

/** The named fields of a matching event, or undefined. */
function match(
  terms: readonly Term[],
  message: string,
  surplus: Surplus = 'last-takes-rest',
): Record<string, string> | undefined {
  const hasEllipsis = terms.some((t) => 'ellipsis' in t);
  const fields = splitFields(
    message,
    hasEllipsis || surplus === 'exact-count' ? undefined : terms.length,
  );
  const go = (
    ti: number,
    fi: number,
    named: Record<string, string>,
  ): Record<string, string> | undefined => {
    if (ti === terms.length) return fi === fields.length ? named : undefined;
    const t = terms[ti]!;
    if ('ellipsis' in t) {
      for (let k = fi; k <= fields.length; k++) {
        const r = go(ti + 1, k, named);
        if (r) return r;
      }
      return undefined;
    }
    const f = fields[fi];
    if (f === undefined || (t.cond && !holds(f, t.cond))) return undefined;
    return go(ti + 1, fi + 1, t.name ? { ...named, [t.name]: f } : named);
  };
  return go(0, 0, {});
}

/** The metric value a filter emits for an event, or undefined when it does not match. */
function apply(
  filter: { filterPattern: string; metricValue: string },
  message: string,
  surplus: Surplus = 'last-takes-rest',
): number | undefined {
  const named = match(parsePattern(filter.filterPattern), message, surplus);
  if (!named) return undefined;
  const v = filter.metricValue;
  return v.startsWith('$') ? Number(named[v.slice(1)]) : Number(v);
}

describe('the evaluator (so the checks below can fail)', () => {
  it('applies =, != with wildcards, numeric comparisons, empty terms and ...', () => {
    const terms = parsePattern('[ip, user != "-", ..., status = 4*, bytes >= 100]');
    expect(match(terms, '1.2.3.4 bob GET / 404 512')).toEqual({
      ip: '1.2.3.4',
      user: 'bob',
      status: '404',
      bytes: '512',
    });
    expect(match(terms, '1.2.3.4 - GET / 404 512')).toBeUndefined();
    expect(match(terms, '1.2.3.4 bob GET / 500 512')).toBeUndefined();
    expect(match(terms, '1.2.3.4 bob GET / 404 99')).toBeUndefined();
    expect(match(parsePattern('[a, b = 7]'), 'x 7.0')).toEqual({ a: 'x', b: '7.0' });
    expect(() => parsePattern('[a > "x"]')).toThrow();
  });

  it('reads the user guide examples as the guide does', () => {
    const apache =
      '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534';
    expect(splitFields(apache)).toEqual([
      '127.0.0.1',
      '-',
      'frank',
      '10/Oct/2000:13:25:15 -0700',
      'GET /index.html HTTP/1.0',
      '404',
      '1534',
    ]);
    expect(match(parsePattern('[..., request=*.html*, status_code=4*,]'), apache)).toEqual({
      request: 'GET /index.html HTTP/1.0',
      status_code: '404',
    });
    const error = 'ERROR 09/25/2014 12:00:02 Failed to process request';
    expect(match(parsePattern('[w1=ERROR, w2]'), error)).toEqual({
      w1: 'ERROR',
      w2: '09/25/2014 12:00:02 Failed to process request',
    });
    // Alone, the one term is the whole event: hence the guide's blank w2.
    expect(match(parsePattern('[w1=ERROR]'), error)).toBeUndefined();
    // Fewer fields than terms: no match, under either reading.
    for (const surplus of ['last-takes-rest', 'exact-count'] as const)
      expect(match(parsePattern('[a, b, c]'), 'x y', surplus)).toBeUndefined();
    expect(match(parsePattern('[w1=ERROR, w2]'), error, 'exact-count')).toBeUndefined();
  });
});

const filters = desiredResources({
  clusterName: 'c1',
  logGroupName: 'flowtrail-flowlogs-c1',
  retentionDays: 7,
  tags: {},
  namespace: 'flowtrail',
  deniedThreshold: 100,
}).metricFilters;
const named = (suffix: string) => filters.find((f) => f.filterName === `flowtrail-c1-${suffix}`)!;
/** The filters by record variant and reporter. */
const FILTERS = [
  { variant: 24, reporter: 'dst', f: named('denied-ingress') },
  { variant: 24, reporter: 'src', f: named('denied-egress') },
  { variant: 27, reporter: 'dst', f: named('denied-ingress-with-policies') },
  { variant: 27, reporter: 'src', f: named('denied-egress-with-policies') },
] as const;

const count = fc.nat({ max: 1_000_000 });
/** Policy names come from NFLOG prefixes: any printable text, '|'-joined. */
const policyName = fc.oneof(
  fc.stringMatching(/^[!-~]{1,20}$/),
  // Text in "" or [] is one field: the last field absorbs them all the same.
  fc.constantFrom('[x]y', '"q', 'a"b', '[z', 'default.deny'),
);
/** Records as the flow table writes them: a deny record carries its packets on its reporter's side. */
const recordArb: fc.Arbitrary<FlowRecord> = fc
  .record({
    startTime: fc.integer({ min: 1_500_000_000, max: 2_000_000_000 }),
    srcType: fc.constantFrom('wep', 'hep', 'ns', 'net'),
    srcNamespace: fc.constantFrom('prod', 'stars', '-'),
    srcName: fc.constantFrom('client-1', 'nginx-7d98456675-*', 'pub', 'deny', 'allow'),
    srcLabels: fc.constantFrom('-', '[role=backend,tier=db]'),
    dstType: fc.constantFrom('wep', 'hep', 'ns', 'net'),
    dstNamespace: fc.constantFrom('prod', 'stars', '-'),
    dstName: fc.constantFrom('backend-6d8f9-x2x7q', 'pvt', 'deny'),
    dstLabels: fc.constantFrom('-', '[app=x]'),
    srcIP: fc.oneof(fc.constant('-'), fc.ipV4(), fc.ipV6()),
    dstIP: fc.oneof(fc.constant('-'), fc.ipV4(), fc.ipV6()),
    proto: fc.constantFrom(1, 6, 17),
    srcPort: fc.oneof(fc.constant('-' as const), fc.integer({ min: 0, max: 65535 })),
    dstPort: fc.oneof(fc.constant('-' as const), fc.integer({ min: 0, max: 65535 })),
    numFlows: count,
    reporter: fc.constantFrom('src', 'dst'),
    packets: count,
    other: count,
    bytesIn: count,
    bytesOut: count,
    action: fc.constantFrom('allow', 'deny'),
    srcNameAggr: fc.constantFrom('client-*', 'nginx-7d98456675-*', 'pub', 'deny'),
    dstNameAggr: fc.constantFrom('backend-6d8f9-*', 'pvt', 'allow'),
    policies: fc.oneof(
      fc.constant('-'),
      fc.array(policyName, { minLength: 1, maxLength: 3 }).map((p) => p.join('|')),
    ),
  })
  .map(({ packets, other, ...r }) => {
    const onIn = r.reporter === 'dst';
    // allowed records carry both directions; denied only the reporter's side
    const back = r.action === 'deny' ? 0 : other;
    return {
      ...r,
      endTime: r.startTime + 300,
      numFlowsStarted: r.numFlows,
      numFlowsCompleted: 0,
      packetsIn: onIn ? packets : back,
      packetsOut: onIn ? back : packets,
    };
  });
const lineArb = fc.record({ r: recordArb, variant: fc.constantFrom<RecordVariant>(24, 27) });
const denied = (r: FlowRecord) => (r.reporter === 'dst' ? r.packetsIn : r.packetsOut);

describe('the denied-packets metric filters', () => {
  it('list each variant’s fields in record order, conditions only on reporter and action', () => {
    expect(filters).toHaveLength(4);
    for (const { variant, reporter, f } of FILTERS) {
      expect(f.filterPattern).toBe(denyPattern(reporter, variant));
      const terms = parsePattern(f.filterPattern);
      expect(terms.map((t) => ('name' in t ? t.name : '...'))).toEqual(recordFields(variant));
      expect(terms.filter((t) => 'cond' in t && t.cond)).toEqual([
        { name: 'reporter', cond: { op: '=', value: reporter, quoted: true } },
        { name: 'action', cond: { op: '=', value: 'deny', quoted: true } },
      ]);
      expect(f.metricName).toBe('DeniedPacketsFromLogs');
      expect(f.metricValue).toBe(reporter === 'dst' ? '$packetsIn' : '$packetsOut');
    }
  });

  for (const surplus of ['last-takes-rest', 'exact-count'] as const) {
    it(`count every deny line once, in either variant, never an allow line (${surplus})`, () => {
      fc.assert(
        fc.property(lineArb, ({ r, variant }) => {
          // Under the strict reading, a policy name opening with " or [ could shift the count.
          if (surplus === 'exact-count') fc.pre(!/^["[]/.test(r.policies!));
          const line = encodeRecord(r, { variant });
          const hits = FILTERS.flatMap(({ variant: v, reporter, f }) => {
            const value = apply(f, line, surplus);
            return value === undefined ? [] : [{ v, reporter, value }];
          });
          if (r.action === 'allow') expect(hits).toEqual([]);
          else expect(hits).toEqual([{ v: variant, reporter: r.reporter, value: denied(r) }]);
        }),
        { numRuns: 1_000 },
      );
    });
  }

  it('together sum to the denied packets flowtrail report counts, over both variants', () => {
    fc.assert(
      fc.property(fc.array(lineArb, { maxLength: 50 }), (lines) => {
        const fromLogs = lines.reduce((n, { r, variant }) => {
          const line = encodeRecord(r, { variant });
          return n + FILTERS.reduce((m, { f }) => m + (apply(f, line) ?? 0), 0);
        }, 0);
        expect(fromLogs).toBe(totals(lines.map((l) => l.r)).deniedPackets);
      }),
    );
  });

  it('match the design document example only once it is a deny, in either variant', () => {
    const line =
      '1529529591 1529529892 wep policy-demo nginx-7d98456675-* - wep kube-system kube-dns-7cc87d595-* - - - 17 - 53 1 1 1 dst 1 1 73 119 allow';
    const withPolicies = `${line} nginx-7d98456675-* kube-dns-7cc87d595-* default.allow-dns`;
    for (const l of [line, withPolicies]) {
      expect(FILTERS.map(({ f }) => apply(f, l))).toEqual([
        undefined,
        undefined,
        undefined,
        undefined,
      ]);
    }
    expect(FILTERS.map(({ f }) => apply(f, line.replace(/allow$/, 'deny')))).toEqual([
      1,
      undefined,
      undefined,
      undefined,
    ]);
    expect(
      FILTERS.map(({ f }) =>
        apply(f, withPolicies.replace(' allow ', ' deny ').replace(/allow-dns$/, 'default-deny')),
      ),
    ).toEqual([undefined, undefined, 1, undefined]);
  });

  it('the 24-field filter alone misses 27-field lines: the reason for the second pair', () => {
    const r = fc.sample(recordArb, { numRuns: 1, seed: 3 })[0]!;
    const deny: FlowRecord = { ...r, action: 'deny', reporter: 'dst', packetsOut: 0 };
    const ingress24 = FILTERS[0].f;
    expect(apply(ingress24, encodeRecord(deny))).toBe(deny.packetsIn);
    expect(apply(ingress24, encodeRecord(deny, { variant: 27 }))).toBeUndefined();
  });
});
