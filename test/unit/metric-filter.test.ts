/**
 * The denied-packets metric filters `flowtrail setup` creates, applied to
 * records the encoder writes. moto stores metric filters but never applies
 * them, so this file carries a small evaluator of CloudWatch's
 * space-delimited filter pattern syntax:
 *   [a, b, c = "x", d != "y*", e > 5, f <= 10, ...]
 * fields are split on spaces (text in "" or [] is one field); a term is a
 * name, optionally with a condition (=, != with a string that may use * as
 * a wildcard, or a number; <, <=, >, >= with a number); `...` matches any
 * number of fields. The event matches when the fields line up and every
 * condition holds; the named fields are then available as $name.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeRecord } from '../../src/format/codec.js';
import type { FlowRecord } from '../../src/format/record.js';
import { RECORD_FIELDS } from '../../src/format/record.js';
import { totals } from '../../src/report/analyze.js';
import { denyPattern, desiredResources } from '../../src/setup/plan.js';

type Cond = { op: '=' | '!=' | '<' | '<=' | '>' | '>='; value: string; quoted: boolean };
type Term = { name: string; cond?: Cond } | { ellipsis: true };

function parsePattern(pattern: string): Term[] {
  const m = /^\[(.*)\]$/.exec(pattern.trim());
  if (!m) throw new Error(`not a space-delimited pattern: ${pattern}`);
  return m[1]!.split(',').map((raw): Term => {
    const t = raw.trim();
    if (t === '...') return { ellipsis: true };
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

/** Splits an event on spaces; "quoted" and [bracketed] text is one field. */
function splitFields(message: string): string[] {
  return message.match(/"[^"]*"|\[[^\]]*\]|\S+/g) ?? [];
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
        ).test(field);
    return c.op === '=' ? eq : !eq;
  }
  const a = Number(field);
  const b = Number(c.value);
  if (Number.isNaN(a)) return false;
  return c.op === '<' ? a < b : c.op === '<=' ? a <= b : c.op === '>' ? a > b : a >= b;
}

function match(
  terms: readonly Term[],
  fields: readonly string[],
): Record<string, string> | undefined {
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
    return go(ti + 1, fi + 1, { ...named, [t.name]: f });
  };
  return go(0, 0, {});
}

/** The metric value a filter emits for an event, or undefined when it does not match. */
function apply(
  filter: { filterPattern: string; metricValue: string },
  message: string,
): number | undefined {
  const named = match(parsePattern(filter.filterPattern), splitFields(message));
  if (!named) return undefined;
  const v = filter.metricValue;
  return v.startsWith('$') ? Number(named[v.slice(1)]) : Number(v);
}

describe('the evaluator (so the checks below can fail)', () => {
  it('applies =, != with wildcards, numeric comparisons and ...', () => {
    const terms = parsePattern('[ip, user != "-", ..., status = 4*, bytes >= 100]');
    expect(match(terms, splitFields('1.2.3.4 bob GET / 404 512'))).toEqual({
      ip: '1.2.3.4',
      user: 'bob',
      status: '404',
      bytes: '512',
    });
    expect(match(terms, splitFields('1.2.3.4 - GET / 404 512'))).toBeUndefined();
    expect(match(terms, splitFields('1.2.3.4 bob GET / 500 512'))).toBeUndefined();
    expect(match(terms, splitFields('1.2.3.4 bob GET / 404 99'))).toBeUndefined();
    expect(match(parsePattern('[a, b = 7]'), ['x', '7.0'])).toEqual({ a: 'x', b: '7.0' });
    expect(splitFields('a [k=v, x=y] "q r" b')).toEqual(['a', '[k=v, x=y]', '"q r"', 'b']);
    expect(() => parsePattern('[a > "x"]')).toThrow();
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
const ingress = filters.find((f) => f.filterName.endsWith('denied-ingress'))!;
const egress = filters.find((f) => f.filterName.endsWith('denied-egress'))!;

const count = fc.nat({ max: 1_000_000 });
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

describe('the denied-packets metric filters', () => {
  it('list the 24 fields in record order, conditions only on reporter and action', () => {
    for (const [reporter, f] of [
      ['dst', ingress],
      ['src', egress],
    ] as const) {
      expect(f.filterPattern).toBe(denyPattern(reporter));
      const terms = parsePattern(f.filterPattern);
      expect(terms.map((t) => ('name' in t ? t.name : '...'))).toEqual([...RECORD_FIELDS]);
      expect(terms.filter((t) => 'cond' in t && t.cond)).toEqual([
        { name: 'reporter', cond: { op: '=', value: reporter, quoted: true } },
        { name: 'action', cond: { op: '=', value: 'deny', quoted: true } },
      ]);
      expect(f.metricName).toBe('DeniedPacketsFromLogs');
    }
    expect(ingress.metricValue).toBe('$packetsIn');
    expect(egress.metricValue).toBe('$packetsOut');
  });

  it('match deny records of their reporter only, never allow records, and emit that side’s packets', () => {
    fc.assert(
      fc.property(recordArb, (r) => {
        const line = encodeRecord(r);
        const i = apply(ingress, line);
        const e = apply(egress, line);
        expect(i).toBe(r.action === 'deny' && r.reporter === 'dst' ? r.packetsIn : undefined);
        expect(e).toBe(r.action === 'deny' && r.reporter === 'src' ? r.packetsOut : undefined);
      }),
      { numRuns: 1_000 },
    );
  });

  it('together sum to the denied packets flowtrail report counts', () => {
    fc.assert(
      fc.property(fc.array(recordArb, { maxLength: 50 }), (records) => {
        const lines = records.map((r) => encodeRecord(r));
        const fromLogs = lines.reduce(
          (n, l) => n + (apply(ingress, l) ?? 0) + (apply(egress, l) ?? 0),
          0,
        );
        expect(fromLogs).toBe(totals(records).deniedPackets);
      }),
    );
  });

  it('match the design document example only once it is a deny', () => {
    const line =
      '1529529591 1529529892 wep policy-demo nginx-7d98456675-* - wep kube-system kube-dns-7cc87d595-* - - - 17 - 53 1 1 1 dst 1 1 73 119 allow';
    expect(apply(ingress, line)).toBeUndefined();
    expect(apply(ingress, line.replace(/allow$/, 'deny'))).toBe(1);
    expect(apply(egress, line.replace(/allow$/, 'deny'))).toBeUndefined();
  });

  it('do not match the 27-field variant (its three extra fields do not line up)', () => {
    const r = fc.sample(recordArb, { numRuns: 1, seed: 3 })[0]!;
    const deny: FlowRecord = { ...r, action: 'deny', reporter: 'dst', packetsOut: 0 };
    expect(apply(ingress, encodeRecord(deny))).toBe(deny.packetsIn);
    expect(apply(ingress, encodeRecord(deny, { variant: 27 }))).toBeUndefined();
  });
});
