import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeRecord } from '../../src/format/codec.js';
import {
  type FlowRecord,
  RECORD_FIELDS,
  type RecordVariant,
  recordFields,
} from '../../src/format/record.js';
import { renderQueriesMarkdown } from '../../src/queries/docs.js';
import {
  findQuery,
  PARSE_LINE,
  QUERY_PACK,
  QueryParamError,
  queryText,
  resolveParams,
  titleFor,
} from '../../src/queries/pack.js';
import {
  crossNamespaceIngress,
  deniedFlows,
  egressToInternet,
  namespaceTalkers,
  type PairRow,
  topTalkers,
} from '../../src/report/analyze.js';

/**
 * Logs Insights is not available here (moto's StartQuery ignores the query
 * text), so this file implements the two parts of the language the pack
 * relies on for correctness: `parse` with a regular expression and the
 * `filter` expressions.
 */

/**
 * `parse @message /regex/`: each named capturing group becomes a field; a
 * group that took no part in the match (an optional one) sets no field; an
 * event the expression does not match gets no fields (undefined here). The
 * pack's expression uses only what JavaScript's RegExp reads the same way
 * (named groups, `[^ ]+`, an optional non-capturing group, ^ and $).
 */
function parseRegex(line: string, message: string): Record<string, string> | undefined {
  const m = /^parse @message \/(.*)\/$/.exec(line);
  if (!m) throw new Error(`not a regex parse line: ${line}`);
  const got = new RegExp(m[1]!).exec(message);
  if (!got) return undefined;
  return Object.fromEntries(Object.entries(got.groups ?? {}).filter(([, v]) => v !== undefined));
}

type Expr =
  | { op: 'and' | 'or'; l: Expr; r: Expr }
  | { op: '=' | '!='; field: string; value: string };

/** `filter` expressions: field = "v", field != "v", and, or, parentheses. */
function parseFilter(text: string): Expr {
  const tokens = text.match(/"[^"]*"|!=|=|\(|\)|[A-Za-z@][\w.]*/g) ?? [];
  let i = 0;
  const peek = (): string | undefined => tokens[i];
  const take = (want?: string): string => {
    const t = tokens[i++];
    if (t === undefined || (want !== undefined && t !== want))
      throw new Error(`filter: expected ${want ?? 'a token'} at ${i - 1} in ${text}`);
    return t;
  };
  const primary = (): Expr => {
    if (peek() === '(') {
      take('(');
      const e = or();
      take(')');
      return e;
    }
    const field = take();
    if (!(RECORD_FIELDS as readonly string[]).includes(field))
      throw new Error(`filter: unknown field ${field}`);
    const op = take();
    if (op !== '=' && op !== '!=') throw new Error(`filter: unsupported operator ${op}`);
    const lit = take();
    if (!lit.startsWith('"')) throw new Error(`filter: expected a string literal, got ${lit}`);
    return { op, field, value: lit.slice(1, -1) };
  };
  const and = (): Expr => {
    let e = primary();
    while (peek() === 'and') {
      take();
      e = { op: 'and', l: e, r: primary() };
    }
    return e;
  };
  const or = (): Expr => {
    let e = and();
    while (peek() === 'or') {
      take();
      e = { op: 'or', l: e, r: and() };
    }
    return e;
  };
  const e = or();
  if (i !== tokens.length) throw new Error(`filter: trailing tokens in ${text}`);
  return e;
}

function evalFilter(e: Expr, f: Record<string, string>): boolean {
  switch (e.op) {
    case 'and':
      return evalFilter(e.l, f) && evalFilter(e.r, f);
    case 'or':
      return evalFilter(e.l, f) || evalFilter(e.r, f);
    case '=':
      return f[e.field] === e.value;
    case '!=':
      return f[e.field] !== e.value;
  }
}

/** The commands of a full query text, split at the top-level pipes. */
function commands(text: string): string[] {
  return text.split('\n| ').map((c) => c.trim());
}

/** Runs a pack query's parse and filter over record lines: the lines it selects. */
function select(text: string, lines: readonly string[]): string[] {
  const [parse, filter] = commands(text);
  expect(filter?.startsWith('filter ')).toBe(true);
  const expr = parseFilter(filter!.slice('filter '.length));
  return lines.filter((line) => {
    const fields = parseRegex(parse!, line);
    if (!fields) throw new Error(`parse did not match ${line}`);
    return evalFilter(expr, fields);
  });
}

const NAMESPACES = ['prod', 'stars', 'client', 'kube-system', '-'] as const;
const NAMES = ['pub', 'pvt', 'aws', 'nginx-7d98456675-*', 'backend-6d8f9-x2x7q', 'node-1'] as const;
/** A value as the encoder writes it: non-empty, no whitespace. */
const word = fc.stringMatching(/^[!-~]{1,12}$/);
const count = fc.nat({ max: 1_000_000 });

const recordArb: fc.Arbitrary<FlowRecord> = fc.record({
  startTime: fc.integer({ min: 1_500_000_000, max: 2_000_000_000 }),
  endTime: fc.integer({ min: 1_500_000_000, max: 2_000_000_000 }),
  srcType: fc.constantFrom('wep', 'hep', 'ns', 'net'),
  srcNamespace: fc.constantFrom(...NAMESPACES),
  srcName: fc.oneof(fc.constantFrom(...NAMES), word),
  srcLabels: fc.oneof(fc.constant('-'), fc.constant('[role=backend,tier=db]')),
  dstType: fc.constantFrom('wep', 'hep', 'ns', 'net'),
  dstNamespace: fc.constantFrom(...NAMESPACES),
  dstName: fc.oneof(fc.constantFrom(...NAMES), word),
  dstLabels: fc.oneof(fc.constant('-'), fc.constant('[app=x]')),
  srcIP: fc.oneof(fc.constant('-'), fc.ipV4(), fc.ipV6()),
  dstIP: fc.oneof(fc.constant('-'), fc.ipV4(), fc.ipV6()),
  proto: fc.constantFrom(1, 6, 17, 58, 132),
  srcPort: fc.oneof(fc.constant('-' as const), fc.integer({ min: 0, max: 65535 })),
  dstPort: fc.oneof(fc.constant('-' as const), fc.integer({ min: 0, max: 65535 })),
  numFlows: count,
  numFlowsStarted: count,
  numFlowsCompleted: count,
  reporter: fc.constantFrom('src', 'dst'),
  packetsIn: count,
  packetsOut: count,
  bytesIn: count,
  bytesOut: count,
  action: fc.constantFrom('allow', 'deny'),
  srcNameAggr: fc.oneof(fc.constantFrom(...NAMES), word),
  dstNameAggr: fc.oneof(fc.constantFrom(...NAMES), word),
  policies: fc.oneof(fc.constant('-'), word),
});
const variantArb = fc.constantFrom<RecordVariant>(24, 27);

/** The fields a line of `variant` carries, as text. */
const fieldsOf = (r: FlowRecord, variant: RecordVariant = 24): Record<string, string> =>
  Object.fromEntries(recordFields(variant).map((f) => [f, String(r[f as keyof FlowRecord])]));

describe('the parse line', () => {
  it('names the 24 fields in record order, then the 27-field variant’s three, optional', () => {
    const names = [...PARSE_LINE.matchAll(/\(\?<(\w+)>/g)].map((m) => m[1]);
    expect(names).toEqual(recordFields(27));
    expect(PARSE_LINE).toMatch(/\(\?<action>\[\^ \]\+\)\(\?: \(\?<srcNameAggr>.*\)\)\?\$\/$/);
  });

  it('extracts every field of any record the encoder writes, in either variant', () => {
    fc.assert(
      fc.property(recordArb, variantArb, (r, variant) => {
        expect(parseRegex(PARSE_LINE, encodeRecord(r, { variant }))).toEqual(fieldsOf(r, variant));
      }),
      { numRuns: 500 },
    );
  });

  it('extracts the fields of the documented examples, 24 and 27 fields', () => {
    const line =
      '1529529591 1529529892 wep policy-demo nginx-7d98456675-* - wep kube-system kube-dns-7cc87d595-* - - - 17 - 53 1 1 1 dst 1 1 73 119 allow';
    const got = parseRegex(PARSE_LINE, line);
    expect(got?.srcName).toBe('nginx-7d98456675-*');
    expect(got?.dstNamespace).toBe('kube-system');
    expect(got?.dstPort).toBe('53');
    expect(got?.bytesOut).toBe('119');
    expect(got?.action).toBe('allow');
    expect(got).not.toHaveProperty('policies');
    // docs/format.md, the 27-field variant
    const withPolicies = parseRegex(
      PARSE_LINE,
      '1795576017 1795576022 wep client client-6c8d7b5f9-p9w3v - wep stars backend-7f6d4b9c8-q4z7m - 10.244.1.12 10.244.1.11 6 - 6379 1 1 0 dst 3 0 180 0 deny client-6c8d7b5f9-* backend-7f6d4b9c8-* default.default-deny',
    );
    expect(withPolicies).toMatchObject({
      dstPort: '6379',
      packetsIn: '3',
      action: 'deny',
      srcNameAggr: 'client-6c8d7b5f9-*',
      dstNameAggr: 'backend-7f6d4b9c8-*',
      policies: 'default.default-deny',
    });
  });

  it('matches no line of another field count (so no field is misread)', () => {
    fc.assert(
      fc.property(recordArb, fc.constantFrom(23, 25, 26, 28), (r, n) => {
        const fields = encodeRecord(r, { variant: 27 }).split(' ');
        const line = [...fields, 'x'].slice(0, n).join(' ');
        expect(parseRegex(PARSE_LINE, line)).toBeUndefined();
      }),
      { numRuns: 100 },
    );
  });
});

describe('the query pack', () => {
  it('has unique names, and every entry has a title, description and default range', () => {
    expect(QUERY_PACK.map((q) => q.name)).toEqual([
      'denied-flows',
      'egress-internet',
      'cross-namespace-ingress',
      'namespace-talkers',
      'top-talkers',
    ]);
    for (const q of QUERY_PACK) {
      expect(q.title.length).toBeGreaterThan(0);
      expect(q.description.length).toBeGreaterThan(40);
      expect(q.defaultSince).toMatch(/^\d+[mhd]$/);
      expect(queryText(q).startsWith(`${PARSE_LINE}\n| filter `)).toBe(true);
    }
  });

  it('uses only the parsed fields and the aliases it defines in stats and sort', () => {
    for (const q of QUERY_PACK) {
      const known = new Set<string>(RECORD_FIELDS);
      for (const cmd of commands(q.body).slice(1)) {
        if (cmd.startsWith('stats ')) {
          const [aggs, by] = cmd.slice('stats '.length).split(' by ');
          for (const m of aggs!.matchAll(/sum\(([^)]*)\) as (\w+)/g)) {
            for (const f of m[1]!.split('+').map((s) => s.trim())) expect(known).toContain(f);
            known.add(m[2]!);
          }
          for (const f of by!.split(',').map((s) => s.trim())) expect(known).toContain(f);
        } else if (cmd.startsWith('sort ')) {
          expect(known).toContain(cmd.split(' ')[1]);
        } else {
          expect(cmd).toMatch(/^limit \d+$/);
        }
      }
    }
  });

  it('puts the namespace parameter into the filter, and refuses what is not a namespace name', () => {
    const q = findQuery('cross-namespace-ingress')!;
    expect(q.params).toEqual({ namespace: { default: 'prod', description: expect.any(String) } });
    expect(q.body).toBe(q.query({ namespace: 'prod' }));
    expect(q.query({ namespace: 'payments' })).toContain(
      'dstNamespace = "payments" and srcNamespace != "payments"',
    );
    expect(queryText(findQuery('namespace-talkers')!, { namespace: 'kube-system' })).toContain(
      'srcNamespace = "kube-system"',
    );
    expect(() => q.query({ namespace: 'x" or action = "deny' })).toThrow(/RFC 1123/);
    expect(() => q.query({ namespace: '' })).toThrow(/RFC 1123/);
  });

  it('resolveParams: the defaults, overridden by what is given; an unknown name or a bad value is refused', () => {
    const talkers = findQuery('namespace-talkers')!;
    expect(resolveParams(talkers, {})).toEqual({ namespace: 'stars' });
    expect(resolveParams(talkers, { namespace: 'payments' })).toEqual({ namespace: 'payments' });
    expect(() => resolveParams(talkers, { nmespace: 'payments' })).toThrow(
      new QueryParamError(
        'namespace-talkers has no parameter "nmespace"; it takes namespace (default stars)',
        { query: 'namespace-talkers', param: 'nmespace' },
      ),
    );
    expect(() => resolveParams(findQuery('top-talkers')!, { namespace: 'x' })).toThrow(
      'top-talkers has no parameter "namespace"; it takes none',
    );
    expect(() => resolveParams(talkers, { namespace: 'Bad_Name' })).toThrow(QueryParamError);
    expect(() => resolveParams(talkers, { namespace: 'Bad_Name' })).toThrow(/RFC 1123/);
  });

  it('titleFor puts the parameter into the heading', () => {
    const q = findQuery('cross-namespace-ingress')!;
    expect(titleFor(q, { namespace: 'payments' })).toBe(
      'Who connected into namespace payments from another namespace?',
    );
    expect(titleFor(q, {})).toBe(q.title);
    for (const p of QUERY_PACK)
      for (const [name, spec] of Object.entries(p.params ?? {}))
        expect(p.title).toContain(`${name} ${spec.default}`);
  });

  /**
   * Each query's filter, run over encoded records, selects exactly the
   * records the matching `flowtrail report` answer counts: the report's
   * answer over the selection covers every selected record, and over the
   * rest it is empty.
   */
  const answers: [string, string | undefined, (rs: FlowRecord[], ns: string) => PairRow[]][] = [
    ['denied-flows', undefined, (rs) => deniedFlows(rs)],
    ['egress-internet', undefined, (rs) => egressToInternet(rs)],
    ['cross-namespace-ingress', 'prod', (rs, ns) => crossNamespaceIngress(rs, ns)],
    ['cross-namespace-ingress', 'stars', (rs, ns) => crossNamespaceIngress(rs, ns)],
    ['namespace-talkers', 'stars', (rs, ns) => namespaceTalkers(rs, ns)],
    ['namespace-talkers', 'client', (rs, ns) => namespaceTalkers(rs, ns)],
    ['top-talkers', undefined, (rs) => topTalkers(rs, Number.POSITIVE_INFINITY)],
  ];
  for (const [name, ns, answer] of answers) {
    it(`${name}${ns ? ` (namespace ${ns})` : ''} selects the same records as flowtrail report`, () => {
      const q = findQuery(name)!;
      const text = queryText(q, ns ? { namespace: ns } : undefined);
      let selectedSomething = false;
      fc.assert(
        fc.property(fc.array(fc.tuple(recordArb, variantArb), { maxLength: 40 }), (drawn) => {
          // Lines of both variants in one log group, as after a config change.
          const byLine = new Map(drawn.map(([r, variant]) => [encodeRecord(r, { variant }), r]));
          const lines = [...byLine.keys()];
          const picked = new Set(select(text, lines));
          const inside = lines.filter((l) => picked.has(l)).map((l) => byLine.get(l)!);
          const outside = lines.filter((l) => !picked.has(l)).map((l) => byLine.get(l)!);
          if (inside.length > 0) selectedSomething = true;
          const counted = answer(inside, ns ?? '').reduce((n, row) => n + row.records, 0);
          expect(counted).toBe(inside.length);
          expect(answer(outside, ns ?? '')).toEqual([]);
        }),
        { numRuns: 200 },
      );
      expect(selectedSomething).toBe(true);
    });
  }
});

describe('docs/queries.md', () => {
  it('is the rendering of the pack (regenerate with npm run docs:queries)', () => {
    const onDisk = readFileSync(new URL('../../docs/queries.md', import.meta.url), 'utf8');
    expect(onDisk).toBe(renderQueriesMarkdown());
  });

  it('shows every query with its parse line', () => {
    const doc = renderQueriesMarkdown();
    expect(doc).toContain(PARSE_LINE);
    for (const q of QUERY_PACK) expect(doc).toContain(`| ${q.body}`);
  });
});
