/**
 * `flowtrail estimate` on a generated day of kind-0 records with a known mix:
 * replicas of a few client deployments calling a few server deployments
 * with many source ports, a long-lived connection, and denied attempts.
 * The bytes it reports per kind must equal the bytes of the records actually
 * re-aggregated — computed here a second way, on the encoded lines — in the
 * record variant the config writes (27 fields by default, 24 without
 * policies), from input of either variant.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Estimate } from '../../src/estimate/estimate.js';
import { encodeRecord } from '../../src/format/codec.js';
import type { FlowRecord } from '../../src/format/record.js';

const CLI = new URL('../../bin/flowtrail.js', import.meta.url).pathname;
const DAY_START = 1_764_000_000;
const INTERVAL = 300;

function base(start: number): Omit<FlowRecord, 'srcName' | 'dstName' | 'srcIP' | 'dstIP'> {
  return {
    startTime: start,
    endTime: start + INTERVAL,
    srcType: 'wep',
    srcNamespace: 'shop',
    srcLabels: '-',
    dstType: 'wep',
    dstNamespace: 'shop',
    dstLabels: '-',
    proto: 6,
    srcPort: 0,
    dstPort: 8080,
    numFlows: 1,
    numFlowsStarted: 1,
    numFlowsCompleted: 1,
    reporter: 'src',
    packetsIn: 10,
    packetsOut: 12,
    bytesIn: 1_000,
    bytesOut: 9_000,
    action: 'allow',
  };
}

/** A day of 5-minute intervals: 3 client deployments × 4 replicas → 2 server deployments × 3 replicas. */
function generateDay(): FlowRecord[] {
  const out: FlowRecord[] = [];
  const clients = ['web-7d98456675', 'cart-5f6d7c8b9a', 'search-66c5d4b7f8'];
  const servers = ['api-6b7c8d9e0f', 'db-0'];
  const suffix = (i: number) => ['x2x7q', 'b8k4m', 'p9z3w', 'r5t6y'][i]!;
  for (let t = 0; t < 288; t++) {
    const start = DAY_START + t * INTERVAL;
    let port = 32_768;
    clients.forEach((c, ci) => {
      for (let r = 0; r < 4; r++) {
        servers.forEach((s, si) => {
          const serverName = s === 'db-0' ? `db-${r % 3}` : `${s}-${suffix(r % 3)}`;
          for (let k = 0; k < 3; k++) {
            out.push({
              ...base(start),
              srcName: `${c}-${suffix(r)}`,
              dstName: serverName,
              srcIP: `10.244.${ci}.${r + 2}`,
              dstIP: `10.244.9.${si * 3 + (r % 3) + 2}`,
              srcPort: port++,
              bytesOut: 9_000 + k,
            });
          }
        });
      }
    });
    // One long-lived connection, reported every interval, never started or completed.
    out.push({
      ...base(start),
      srcName: 'batch-0',
      dstName: 'db-0',
      srcIP: '10.244.5.9',
      dstIP: '10.244.9.5',
      srcPort: 40_000,
      dstPort: 5432,
      numFlowsStarted: 0,
      numFlowsCompleted: 0,
    });
    // A port scan from outside: denied.
    for (let p = 0; p < 5; p++) {
      out.push({
        ...base(start),
        srcType: 'net',
        srcNamespace: '-',
        srcName: 'pub',
        srcIP: '203.0.113.7',
        dstName: `api-6b7c8d9e0f-${suffix(p % 3)}`,
        dstIP: `10.244.9.${(p % 3) + 2}`,
        srcPort: 50_000 + p,
        dstPort: 20 + p,
        reporter: 'dst',
        action: 'deny',
        packetsIn: 1,
        packetsOut: 0,
        bytesIn: 60,
        bytesOut: 0,
      });
    }
  }
  return out;
}

/**
 * The day with the 27-field variant's fields: aggregated names, and the
 * policies that decided (allowed connections name one of two policies, so
 * folding source ports unites them).
 */
function withPolicies(records: readonly FlowRecord[]): FlowRecord[] {
  return records.map((r) => ({
    ...r,
    srcNameAggr: r.srcType === 'wep' ? cut(r.srcName) : r.srcName,
    dstNameAggr: r.dstType === 'wep' ? cut(r.dstName) : r.dstName,
    policies:
      r.action === 'deny'
        ? 'default.default-deny'
        : `shop.allow-${r.bytesOut % 2 === 0 ? 'even' : 'odd'}|shop.base`,
  }));
}

/** A pod name's prefix, as the agent cuts it. */
const cut = (name: string) =>
  /^(.*-[a-z0-9]{6,10}-)[a-z0-9]{5}$/.exec(name)?.[1]?.concat('*') ??
  /^(.*-)\d+$/.exec(name)?.[1]?.concat('*') ??
  name;

/** The reference: re-aggregate encoded lines by editing their fields. */
function referenceBytes(
  lines: readonly string[],
  kind: 0 | 1 | 2,
): { records: number; bytes: number } {
  const groups = new Map<string, { sums: number[]; policies: Set<string> }>();
  const COUNTERS = [15, 16, 17, 19, 20, 21, 22];
  for (const line of lines) {
    const f = line.split(' ');
    if (kind >= 1) f[13] = '-';
    if (kind === 2) {
      if (f[2] === 'wep') f[4] = cut(f[4]!);
      if (f[6] === 'wep') f[8] = cut(f[8]!);
      f[10] = '-';
      f[11] = '-';
    }
    // 27 fields: the policies unite, sorted ('-' when none).
    const policies = f.length === 27 ? f.pop()!.split('|') : undefined;
    const key = f.map((v, i) => (COUNTERS.includes(i) ? '#' : v)).join(' ');
    const g = groups.get(key) ?? { sums: COUNTERS.map(() => 0), policies: new Set<string>() };
    COUNTERS.forEach((i, j) => {
      g.sums[j]! += Number(f[i]);
    });
    for (const p of policies ?? []) if (p !== '-') g.policies.add(p);
    groups.set(key, g);
  }
  let bytes = 0;
  for (const [key, { sums, policies }] of groups) {
    const f = key.split(' ');
    COUNTERS.forEach((i, j) => {
      f[i] = String(sums[j]);
    });
    if (f.length === 26) f.push(policies.size > 0 ? [...policies].sort().join('|') : '-');
    bytes += Buffer.byteLength(f.join(' '));
  }
  return { records: groups.size, bytes };
}

describe('flowtrail estimate', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ft-estimate-'));
  const records = generateDay();
  const lines = records.map((r) => encodeRecord(r));
  const file = join(dir, 'day.log');
  writeFileSync(file, `${lines.join('\n')}\n`);
  const lines27 = withPolicies(records).map((r) => encodeRecord(r, { variant: 27 }));
  const file27 = join(dir, 'day27.log');
  writeFileSync(file27, `${lines27.join('\n')}\n`);
  // Each run re-aggregates a day of records (seconds on this machine): each is made once.
  const runs = new Map<string, Estimate>();
  const run = (...args: string[]): Estimate => {
    const key = args.join(' ');
    let e = runs.get(key);
    if (!e) {
      e = JSON.parse(
        execFileSync(process.execPath, [CLI, 'estimate', ...args, '--json'], { encoding: 'utf8' }),
      ) as Estimate;
      runs.set(key, e);
    }
    return structuredClone(e);
  };

  /** The estimate's per-kind and configured bytes equal the reference over `want` lines. */
  function expectReference(e: Estimate, want: readonly string[]): void {
    expect(e.inputKind).toBe(0);
    expect(e.inputRecords).toBe(records.length);
    expect(e.spanSeconds).toBe(86_400);
    for (const kind of [0, 1, 2] as const) {
      const row = e.rows.find((r) => r.kind === kind)!;
      const ref = referenceBytes(want, kind);
      expect({ kind, records: row.records, bytes: row.bytes }).toEqual({ kind, ...ref });
      // A day of input: per-day figures are the totals.
      expect(row.bytesPerDay).toBe(ref.bytes);
      expect(row.ingestGbPerDay).toBeCloseTo((ref.bytes + 26 * ref.records) / 1e9, 12);
      expect(row.monthlyUsdStandard).toBeCloseTo(row.ingestGbPerDay * 30 * 0.5, 12);
      expect(row.monthlyUsdInfrequentAccess).toBeCloseTo(row.ingestGbPerDay * 30 * 0.25, 12);
    }
    // The mix: 72 allowed 5-tuples + 1 long-lived + 5 denied per interval at kind 0 …
    expect(e.rows[0]!.records).toBe(288 * (72 + 1 + 5));
    // … kind 2 folds replicas and ports: 3 clients × 2 servers + 1 + denied (5 ports, one source).
    expect(e.rows[2]!.records).toBe(288 * (6 + 1 + 5));
    // The defaults (allowed kind 2, denied kind 1) = kind-2 allowed + kind-1 denied.
    const configured = e.rows.find((r) => r.kind === 'configured')!;
    const allowedK2 = referenceBytes(
      want.filter((l) => / allow( |$)/.test(l)),
      2,
    );
    const deniedK1 = referenceBytes(
      want.filter((l) => / deny( |$)/.test(l)),
      1,
    );
    expect(configured.bytes).toBe(allowedK2.bytes + deniedK1.bytes);
  }

  it('reports, per kind, exactly the bytes of the re-aggregated 24-field records', () => {
    const off = ['--set', 'flowLogs.includePolicies=false'];
    const e = run('--file', file, ...off);
    expectReference(e, lines);
    expect(e.notes).toEqual([]);
    // The same flows read from 27-field records: the same answer.
    expect(run('--file', file27, ...off)).toEqual(e);
  });

  it('with includePolicies, the bytes of the 27-field records, policies united as the agent does', () => {
    const on = ['--set', 'flowLogs.includePolicies=true'];
    const e = run('--file', file27, ...on);
    expectReference(e, lines27);
    expect(e.notes).toEqual([]);
    // The 27-field lines are longer: policies cost bytes, and estimate says how many.
    const off = run('--file', file27, '--set', 'flowLogs.includePolicies=false');
    expect(e.rows[0]!.bytes).toBeGreaterThan(off.rows[0]!.bytes);
    // From 24-field records the policy names are unknown: '-', and a note says so.
    const from24 = run('--file', file, ...on);
    expectReference(
      from24,
      withPolicies(records).map((r) => encodeRecord({ ...r, policies: '-' }, { variant: 27 })),
    );
    expect(from24.notes).toEqual([
      `${records.length} of ${records.length} records have 24 fields, without policy names: their 27-field bytes count '-' for policies (a lower bound)`,
    ]);
  });

  it('applies the volume controls and prices from the config', () => {
    const config = join(dir, 'flowtrail.yaml');
    writeFileSync(
      config,
      [
        'clusterName: c',
        'nodeName: n',
        'flowLogs: { aggregationKindForAllowed: 0, enabledForDenied: false, maxRecordsPerFlush: 10 }',
        'pricing: { ingestStandardPerGb: 1.0 }',
      ].join('\n'),
    );
    const e = JSON.parse(
      execFileSync(
        process.execPath,
        [CLI, 'estimate', '--file', file, '--config', config, '--json'],
        {
          encoding: 'utf8',
        },
      ),
    ) as Estimate;
    const configured = e.rows.find((r) => r.kind === 'configured')!;
    // 10 kept + one overflow record (all allowed records are reporter src) per interval.
    expect(configured.records).toBe(288 * 11);
    expect(e.prices).toEqual({ standardPerGb: 1, infrequentAccessPerGb: 0.25 });
    expect(e.notes.join('\n')).toMatch(/folded into 288 overflow records/);
  });

  it('prints a table with a line per kind, and clear errors for bad input', () => {
    const table = execFileSync(process.execPath, [CLI, 'estimate', '--file', file], {
      encoding: 'utf8',
    });
    for (const label of [
      'kind 0 (5-tuple)',
      'kind 1 (no source port)',
      'kind 2 (pod prefixes)',
      'configured',
    ]) {
      expect(table).toContain(label);
    }
    const none = spawnSync(process.execPath, [CLI, 'estimate'], { encoding: 'utf8' });
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(
      /exactly one of --file PATH, --log-group NAME \(or --cluster NAME\) or --live MINUTES/,
    );
    const missing = spawnSync(
      process.execPath,
      [CLI, 'estimate', '--file', join(dir, 'nope.log')],
      {
        encoding: 'utf8',
      },
    );
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/cannot read .*nope\.log \(ENOENT\)/);
    const empty = join(dir, 'empty.log');
    writeFileSync(empty, 'not a record\n');
    const bad = spawnSync(process.execPath, [CLI, 'estimate', '--file', empty], {
      encoding: 'utf8',
    });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/no records to estimate from/);
    const price = spawnSync(
      process.execPath,
      [CLI, 'estimate', '--file', file, '--price-ia', 'cheap'],
      {
        encoding: 'utf8',
      },
    );
    expect(price.status).toBe(2);
    expect(price.stderr).toMatch(/pricing\.ingestInfrequentAccessPerGb/);
  });
});
