import { describe, expect, it } from 'vitest';
import { encodeRecord } from '../../src/format/codec.js';
import type { FlowRecord } from '../../src/format/record.js';
import { PARSE_LINE, QUERY_PACK, queryText } from '../../src/queries/pack.js';
import { type Current, denyPattern, desiredResources, plan } from '../../src/setup/plan.js';

/**
 * A small evaluator of CloudWatch's space-delimited metric filter syntax
 * (`[a, b, c = "x", d > 5, ...]`), since the emulator stores filters but
 * never applies them. Returns the named fields when the event matches.
 */
function evaluate(pattern: string, message: string): Record<string, string> | undefined {
  const terms = pattern
    .replace(/^\[|\]$/g, '')
    .split(',')
    .map((t) => t.trim());
  const fields = message.split(' ');
  if (fields.length !== terms.length) return undefined;
  const named: Record<string, string> = {};
  for (let i = 0; i < terms.length; i++) {
    const m = /^(\w+)(?:\s*(=|!=|>|<)\s*(.+))?$/.exec(terms[i]!);
    if (!m) throw new Error(`bad term ${terms[i]}`);
    const [, name, op, raw] = m;
    const value = fields[i]!;
    named[name!] = value;
    if (!op) continue;
    const want = raw!.replace(/^"|"$/g, '');
    const ok =
      op === '='
        ? value === want
        : op === '!='
          ? value !== want
          : op === '>'
            ? Number(value) > Number(want)
            : Number(value) < Number(want);
    if (!ok) return undefined;
  }
  return named;
}

/** Logs Insights `parse` glob: each `*` matches lazily up to the next literal; the last to the end. */
function parseGlob(line: string, message: string): Record<string, string> | undefined {
  const m = /^parse @message "(.*)" as (.*)$/.exec(line);
  if (!m) throw new Error('not a parse line');
  const names = m[2]!.split(',').map((s) => s.trim());
  const re = new RegExp(
    `^${m[1]!
      .split('*')
      .map((lit) => lit.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('(.*?)')}$`,
  );
  const got = re.exec(message);
  if (!got) return undefined;
  return Object.fromEntries(names.map((n, i) => [n, got[i + 1]!]));
}

const base: FlowRecord = {
  startTime: 1_800_000_000,
  endTime: 1_800_000_300,
  srcType: 'wep',
  srcNamespace: 'client',
  srcName: 'client-6c8d7b5f9-*',
  srcLabels: '-',
  dstType: 'wep',
  dstNamespace: 'stars',
  dstName: 'backend-7f6d4b9c8-*',
  dstLabels: '[role=backend]',
  srcIP: '10.244.1.12',
  dstIP: '10.244.1.11',
  proto: 6,
  srcPort: '-',
  dstPort: 6379,
  numFlows: 2,
  numFlowsStarted: 2,
  numFlowsCompleted: 0,
  reporter: 'dst',
  packetsIn: 7,
  packetsOut: 0,
  bytesIn: 420,
  bytesOut: 0,
  action: 'deny',
};

describe('denied-packets metric filters', () => {
  it('the ingress filter matches deny records reported by dst and extracts packetsIn', () => {
    const m = evaluate(denyPattern('dst'), encodeRecord(base));
    expect(m?.packetsIn).toBe('7');
  });
  it('the egress filter matches deny records reported by src and extracts packetsOut', () => {
    const m = evaluate(
      denyPattern('src'),
      encodeRecord({ ...base, reporter: 'src', packetsIn: 0, packetsOut: 3 }),
    );
    expect(m?.packetsOut).toBe('3');
  });
  it('neither matches allow records, and each matches only its reporter', () => {
    const allow = encodeRecord({ ...base, action: 'allow' });
    expect(evaluate(denyPattern('dst'), allow)).toBeUndefined();
    expect(evaluate(denyPattern('src'), allow)).toBeUndefined();
    expect(evaluate(denyPattern('src'), encodeRecord(base))).toBeUndefined();
  });
});

describe('query pack', () => {
  it('the parse line extracts every field of an encoded record', () => {
    const got = parseGlob(PARSE_LINE, encodeRecord(base));
    expect(got).toEqual(Object.fromEntries(Object.entries(base).map(([k, v]) => [k, String(v)])));
  });
  it('every query starts with the parse line and has a unique name', () => {
    for (const q of QUERY_PACK) expect(queryText(q).startsWith(`${PARSE_LINE}\n| `)).toBe(true);
    expect(new Set(QUERY_PACK.map((q) => q.name)).size).toBe(QUERY_PACK.length);
  });
});

describe('setup plan', () => {
  const desired = desiredResources({
    clusterName: 'c1',
    logGroupName: 'flowtrail-flowlogs-c1',
    retentionDays: 7,
    tags: { team: 'net' },
    namespace: 'flowtrail',
    deniedThreshold: 100,
  });
  const empty: Current = { logGroup: undefined, metricFilters: [], alarms: [], queries: [] };

  it('from nothing: every resource', () => {
    const kinds = plan(desired, empty).map((c) => c.kind);
    expect(kinds.filter((k) => k === 'put-alarm')).toHaveLength(2);
    expect(kinds.filter((k) => k === 'put-query')).toHaveLength(QUERY_PACK.length);
    expect(kinds).toContain('create-log-group');
  });

  it('when everything matches: no change; a changed threshold: one alarm update', () => {
    const current: Current = {
      logGroup: { retentionDays: 7, tags: desired.tags },
      metricFilters: desired.metricFilters,
      alarms: desired.alarms,
      queries: desired.queries.map((q, i) => ({ ...q, id: `q${i}` })),
    };
    expect(plan(desired, current)).toEqual([]);
    const higher = {
      ...desired,
      alarms: desired.alarms.map((a) => ({ ...a, Threshold: a.Threshold + 1 })),
    };
    expect(plan(higher, current).map((c) => c.kind)).toEqual(['put-alarm', 'put-alarm']);
  });
});
