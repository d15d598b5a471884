/**
 * `flowtrail report` from a record file and from CloudWatch (moto): the same
 * records give the same, exact answers, in 24 or 27 fields (which add the
 * policies that decided); bad lines are counted, not fatal.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  CreateLogStreamCommand,
  PutLogEventsCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeRecord } from '../../src/format/codec.js';
import type { FlowRecord } from '../../src/format/record.js';
import { awsTestConfig, type Moto, startMoto } from '../../src/sim/moto.js';
import { runCli } from '../harness/cli.js';
import { skipMoto } from '../harness/env.js';

const run = (args: string[]) => runCli(['report', ...args]);

const end = Math.floor(Date.now() / 1000) - 60;
function rec(over: Partial<FlowRecord>): FlowRecord {
  return {
    startTime: end - 300,
    endTime: end,
    srcType: 'wep',
    srcNamespace: 'client',
    srcName: 'client-*',
    srcLabels: '-',
    dstType: 'wep',
    dstNamespace: 'prod',
    dstName: 'api-*',
    dstLabels: '-',
    srcIP: '-',
    dstIP: '-',
    proto: 6,
    srcPort: '-',
    dstPort: 443,
    numFlows: 1,
    numFlowsStarted: 1,
    numFlowsCompleted: 1,
    reporter: 'dst',
    packetsIn: 10,
    packetsOut: 8,
    bytesIn: 1000,
    bytesOut: 800,
    action: 'allow',
    ...over,
  };
}

const records: FlowRecord[] = [
  rec({}),
  rec({ numFlows: 3, packetsIn: 5, packetsOut: 5, bytesIn: 500, bytesOut: 400 }),
  rec({
    action: 'deny',
    packetsIn: 7,
    packetsOut: 0,
    bytesIn: 420,
    bytesOut: 0,
    dstPort: 6379,
    dstName: 'db-*',
  }),
  rec({
    reporter: 'src',
    srcNamespace: 'prod',
    srcName: 'api-*',
    dstType: 'net',
    dstNamespace: '-',
    dstName: 'pub',
    dstIP: '203.0.113.10',
    packetsOut: 4,
    bytesOut: 300,
    packetsIn: 4,
    bytesIn: 900,
  }),
];

/** The same records in the 27-field variant: aggregated names and the policies that decided. */
const POLICIES = ['shop.allow-api|shop.base', 'shop.allow-api', 'default.default-deny', '-'];
const with27 = records.map((r, i) => ({
  ...r,
  srcNameAggr: r.srcName,
  dstNameAggr: r.dstName,
  policies: POLICIES[i]!,
}));

describe.skipIf(skipMoto)('flowtrail report', () => {
  let moto: Moto;
  const dir = mkdtempSync(join(tmpdir(), 'ft-report-'));
  const file = join(dir, 'flows.log');
  const file27 = join(dir, 'flows27.log');
  beforeAll(async () => {
    writeFileSync(file, `${records.map((r) => encodeRecord(r)).join('\n')}\nnot a record\n`);
    writeFileSync(
      file27,
      `${with27.map((r) => encodeRecord(r, { variant: 27 })).join('\n')}\nnot a record\n`,
    );
    moto = await startMoto();
    const logs = new CloudWatchLogsClient(awsTestConfig(moto.endpoint));
    // The same records under a free name and under the name of cluster rtest.
    for (const logGroupName of ['g', 'flowtrail-flowlogs-rtest']) {
      await logs.send(new CreateLogGroupCommand({ logGroupName }));
      await logs.send(new CreateLogStreamCommand({ logGroupName, logStreamName: 's' }));
      await logs.send(
        new PutLogEventsCommand({
          logGroupName,
          logStreamName: 's',
          logEvents: records.map((r) => ({
            timestamp: r.endTime * 1000,
            message: encodeRecord(r),
          })),
        }),
      );
    }
    // A group written before and after includePolicies changed: both variants side by side.
    await logs.send(new CreateLogGroupCommand({ logGroupName: 'mixed' }));
    await logs.send(new CreateLogStreamCommand({ logGroupName: 'mixed', logStreamName: 's' }));
    await logs.send(
      new PutLogEventsCommand({
        logGroupName: 'mixed',
        logStreamName: 's',
        logEvents: with27.map((r, i) => ({
          timestamp: r.endTime * 1000,
          message: encodeRecord(r, { variant: i % 2 === 0 ? 24 : 27 }),
        })),
      }),
    );
  });
  afterAll(async () => {
    await moto?.stop();
  });
  /** `report --json` from a log group on moto. */
  const fromGroup = (name: string) =>
    run(['--log-group', name, '--region', 'us-east-1', '--endpoint', moto.endpoint, '--json']);

  it('answers from a file with exact sums, counting the bad line', async () => {
    const r = await run(['--file', file, '--json']);
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('1 lines are not flow records');
    expect(r.stderr).toContain(`${file}:5: line: expected 24 or 27 space-separated fields`);
    const a = JSON.parse(r.stdout);
    expect(a.totals).toMatchObject({ records: 4, denyRecords: 1, deniedPackets: 7 });
    const q = a.answers;
    expect(q['Which flows did policy deny, and between whom?']).toEqual([
      {
        src: 'client/client-*',
        dst: 'prod/db-*',
        dstPort: '6379',
        proto: 6,
        records: 1,
        flows: 1,
        packets: 7,
        bytes: 420,
        policies: [],
      },
    ]);
    expect(q['Who connected into namespace prod from another namespace?']).toEqual([
      {
        src: 'client/client-*',
        dst: 'prod/api-*',
        dstPort: '443',
        proto: 6,
        records: 2,
        flows: 4,
        packets: 28,
        bytes: 2700,
        policies: [],
      },
    ]);
    expect(q['Which pods sent traffic to the public internet?'][0]).toMatchObject({
      src: 'prod/api-*',
      dst: 'net/pub (203.0.113.10)',
      packets: 8,
      bytes: 1200,
    });
  });

  it('answers the same from CloudWatch', async () => {
    const fromFile = JSON.parse((await run(['--file', file, '--json'])).stdout);
    const r = await fromGroup('g');
    expect(r.status).toBe(0);
    const fromCw = JSON.parse(r.stdout);
    expect(fromCw.answers).toEqual(fromFile.answers);
    expect(fromCw.totals).toEqual(fromFile.totals);
  });

  it("--cluster and -c/--config name the cluster's log group (and the config its region and endpoint)", async () => {
    const fromFile = JSON.parse((await run(['-f', file, '--json'])).stdout);
    const byCluster = await run([
      '--cluster',
      'rtest',
      '--region',
      'us-east-1',
      '--endpoint',
      moto.endpoint,
      '--json',
    ]);
    expect(byCluster.status).toBe(0);
    expect(JSON.parse(byCluster.stdout).totals).toEqual(fromFile.totals);
    // As deploy/kubernetes/config.yaml: no nodeName (the DaemonSet gives it).
    const config = join(dir, 'flowtrail.yaml');
    writeFileSync(
      config,
      `clusterName: rtest\nsinks:\n  cloudwatch: { region: us-east-1, endpoint: '${moto.endpoint}' }\n`,
    );
    const byConfig = await runCli(['report', '-c', config, '--json'], { AWS_REGION: '' });
    expect(byConfig.stderr).toBe('');
    expect(byConfig.status).toBe(0);
    expect(JSON.parse(byConfig.stdout).answers).toEqual(fromFile.answers);
    // CloudWatch that cannot be read: exit 1 with the cause, no stack trace.
    const down = await run([
      '--cluster',
      'rtest',
      '--region',
      'us-east-1',
      '--endpoint',
      'http://127.0.0.1:1',
    ]);
    expect(down.status).toBe(1);
    expect(down.stderr).toMatch(/^flowtrail report: flowtrail-flowlogs-rtest: .*ECONNREFUSED/);
    expect(down.stderr).not.toMatch(/\n\s+at /);
  });

  it('answers the same from 27-field records, naming the policies of each row', async () => {
    const from24 = JSON.parse((await run(['--file', file, '--json'])).stdout);
    const r = await run(['--file', file27, '--json']);
    expect(r.status).toBe(0);
    const from27 = JSON.parse(r.stdout);
    expect(from27.totals).toEqual(from24.totals);
    const q = from27.answers;
    expect(q['Which flows did policy deny, and between whom?'][0].policies).toEqual([
      'default.default-deny',
    ]);
    // Two records in one row: their policies united, sorted.
    expect(q['Who connected into namespace prod from another namespace?'][0].policies).toEqual([
      'shop.allow-api',
      'shop.base',
    ]);
    expect(q['Which pods sent traffic to the public internet?'][0].policies).toEqual([]);
    const strip = (answers: Record<string, { policies: string[] }[]>) =>
      Object.fromEntries(
        Object.entries(answers).map(([k, rows]) => [
          k,
          rows.map(({ policies: _, ...rest }) => rest),
        ]),
      );
    expect(strip(from27.answers)).toEqual(strip(from24.answers));
    // The text table shows the policies column, and only when there are some.
    const text27 = (await run(['--file', file27])).stdout;
    const text24 = (await run(['--file', file])).stdout;
    expect(text27).toContain('policies');
    expect(text27).toContain('default.default-deny');
    expect(text24).not.toContain('policies');
    // A log group holding both variants: the same totals and pairs.
    const mixed = await fromGroup('mixed');
    expect(mixed.status).toBe(0);
    const fromMixed = JSON.parse(mixed.stdout);
    expect(fromMixed.totals).toEqual(from24.totals);
    expect(strip(fromMixed.answers)).toEqual(strip(from24.answers));
    // Records 1 and 3 (odd) were written with 27 fields: only their policies show.
    expect(
      fromMixed.answers['Who connected into namespace prod from another namespace?'][0].policies,
    ).toEqual(['shop.allow-api']);
  });

  it('filters by action and namespace, prints CSV, and rejects a bad --since', async () => {
    const denyOnly = JSON.parse((await run(['--file', file, '--json', '--action', 'deny'])).stdout);
    expect(denyOnly.totals.records).toBe(1);
    const csv = (await run(['--file', file, '--csv', '--namespace', 'prod'])).stdout
      .trim()
      .split('\n');
    expect(csv[0]).toBe('question,source,destination,port,proto,flows,packets,bytes,policies');
    expect(csv.length).toBeGreaterThan(1);
    const csv27 = (await run(['--file', file27, '--csv', '--action', 'deny'])).stdout
      .trim()
      .split('\n');
    expect(csv27[1]).toBe(
      '"Which flows did policy deny, and between whom?",client/client-*,prod/db-*,6379,6,1,7,420,default.default-deny',
    );
    const bad = await run(['--file', file, '--since', 'yesterday-ish']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain(
      '--since: expected 30m, 2h, 7d or an ISO date, got "yesterday-ish"',
    );
  });
});
