/**
 * `flowtrail query NAME` against moto behind a recording proxy. moto's
 * StartQuery ignores the query text (it answers with the group's raw events),
 * so what is checked here is the request flowtrail sends (log group, time
 * range, the pack's query text) and that the rows it gets back are rendered.
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
import { findQuery, QUERY_PACK, queryText } from '../../src/queries/pack.js';
import { awsTestConfig, type Moto, startMoto } from '../../src/sim/moto.js';
import { FaultProxy } from '../../tooling/sim/fault-proxy.js';
import { runCli } from '../harness/cli.js';
import { skipMoto } from '../harness/env.js';

const GROUP = 'flowtrail-flowlogs-qtest';
const END = Math.floor(Date.now() / 1000 / 60) * 60 - 600;
const LINE = `${END - 300} ${END} wep prod api-* - net - pub - - 203.0.113.9 6 - 443 2 2 2 src 10 12 900 1200 allow`;
const SINCE = new Date((END - 1800) * 1000).toISOString();
const UNTIL = new Date((END + 60) * 1000).toISOString();

// No region from this machine's environment: each test says which it uses.
const run = (args: string[], env: Record<string, string> = {}) =>
  runCli(['query', ...args], { AWS_REGION: '', AWS_DEFAULT_REGION: '', ...env });

describe('flowtrail query --list', () => {
  it('lists every pack query by name and title', async () => {
    const r = await run(['--list']);
    expect(r.status).toBe(0);
    for (const q of QUERY_PACK) expect(r.stdout).toContain(q.name);
    expect(r.stdout.trim().split('\n')).toHaveLength(QUERY_PACK.length);
  });

  it('asks for a region rather than querying a default one', async () => {
    const r = await run(['denied-flows', '--log-group', GROUP]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(
      '--region is required (or AWS_REGION, or sinks.cloudwatch.region in --config)',
    );
  });

  it('rejects an unknown query name with the known names', async () => {
    const r = await run(['no-such-query', '--log-group', GROUP]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('denied-flows');
  });

  it("--list shows each query's default range and parameters", async () => {
    const r = await run(['--list']);
    const line = (name: string) => r.stdout.split('\n').find((l) => l.startsWith(`${name} `));
    expect(line('namespace-talkers')).toMatch(/\(default --since 1h; --param namespace=stars\)$/);
    expect(line('egress-internet')).toMatch(/\(default --since 24h\)$/);
    const json = JSON.parse((await run(['--list', '--json'])).stdout);
    expect(json.find((q: { name: string }) => q.name === 'cross-namespace-ingress')).toMatchObject({
      defaultSince: '24h',
      params: { namespace: { default: 'prod' } },
    });
  });

  it('refuses a parameter the query does not take, naming it and the ones it takes (exit 2)', async () => {
    const typo = await run(['namespace-talkers', '--cluster', 'x', '--param', 'nmespace=payments']);
    expect(typo.status).toBe(2);
    expect(typo.stderr).toBe(
      'flowtrail query: namespace-talkers has no parameter "nmespace"; it takes namespace (default stars)\n',
    );
    const none = await run(['denied-flows', '--cluster', 'x', '--param', 'namespace=prod']);
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('denied-flows has no parameter "namespace"; it takes none');
    const bad = await run(['namespace-talkers', '--cluster', 'x', '--param', 'namespace=a" or 1']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain(
      'expected a Kubernetes namespace name (RFC 1123 label), got "a\\" or 1"',
    );
    const shape = await run(['namespace-talkers', '--cluster', 'x', '--param', 'namespace']);
    expect(shape.status).toBe(2);
    expect(shape.stderr).toContain('--param: expected name=value, got "namespace"');
  });
});

describe.skipIf(skipMoto)('flowtrail query NAME against CloudWatch (moto)', () => {
  let moto: Moto;
  let proxy: FaultProxy;

  beforeAll(async () => {
    moto = await startMoto();
    proxy = await FaultProxy.start(moto.endpoint);
    const logs = new CloudWatchLogsClient(awsTestConfig(moto.endpoint));
    await logs.send(new CreateLogGroupCommand({ logGroupName: GROUP }));
    await logs.send(new CreateLogStreamCommand({ logGroupName: GROUP, logStreamName: 'n1' }));
    await logs.send(
      new PutLogEventsCommand({
        logGroupName: GROUP,
        logStreamName: 'n1',
        logEvents: [{ timestamp: END * 1000, message: LINE }],
      }),
    );
    logs.destroy();
  }, 60_000);

  afterAll(async () => {
    await proxy?.stop();
    await moto?.stop();
  });

  it('sends StartQuery with the log group, the range in seconds and the pack text, then renders rows', async () => {
    const r = await run([
      'egress-internet',
      '--cluster',
      'qtest',
      '--since',
      SINCE,
      '--until',
      UNTIL,
      '--region',
      'us-east-1',
      '--endpoint',
      proxy.endpoint,
      '--json',
    ]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const starts = proxy.operations('StartQuery');
    expect(starts).toHaveLength(1);
    const entry = QUERY_PACK.find((q) => q.name === 'egress-internet')!;
    expect(starts[0]!.body).toMatchObject({
      logGroupName: GROUP,
      startTime: END - 1800,
      endTime: END + 60,
      queryString: queryText(entry),
    });
    expect(proxy.operations('GetQueryResults').length).toBeGreaterThanOrEqual(1);
    // moto evaluates no parse/stats: it answers one row per event in range,
    // holding only @ptr, which flowtrail leaves out of what it prints.
    const rows = JSON.parse(r.stdout) as Record<string, string>[];
    expect(rows).toEqual([{}]);
  }, 60_000);

  it('polls until Complete and renders the rows as a table, CSV and JSON', async () => {
    // Insights' answer for this query, served by the proxy (moto cannot
    // compute stats): Running on the first poll, Complete on the second.
    let polls = 0;
    proxy.intercept('GetQueryResults', () => {
      polls++;
      if (polls % 2 === 1) return { status: 'Running', results: [] };
      return {
        status: 'Complete',
        statistics: { recordsMatched: 1, recordsScanned: 1, bytesScanned: LINE.length },
        results: [
          [
            { field: 'srcNamespace', value: 'prod' },
            { field: 'srcName', value: 'api-*' },
            { field: 'dstIP', value: '203.0.113.9' },
            { field: 'dstPort', value: '443' },
            { field: 'bytesSent', value: '1200' },
            { field: 'flows', value: '2' },
            { field: '@ptr', value: 'opaque' },
          ],
        ],
      };
    });
    const common = [
      'egress-internet',
      '--log-group',
      GROUP,
      '--region',
      'us-east-1',
      '--since',
      SINCE,
      '--until',
      UNTIL,
      '--endpoint',
      proxy.endpoint,
    ];
    const table = await run(common);
    expect(table.status).toBe(0);
    expect(table.stdout).toContain('Which pods sent traffic to the public internet?');
    expect(table.stdout).toContain('203.0.113.9');
    expect(table.stdout).toContain('bytesSent');
    expect(table.stdout).toContain('1 matched, 1 scanned');
    const csv = await run([...common, '--csv']);
    expect(csv.status).toBe(0);
    const lines = csv.stdout.trim().split('\n');
    expect(lines).toEqual([
      'srcNamespace,srcName,dstIP,dstPort,bytesSent,flows',
      'prod,api-*,203.0.113.9,443,1200,2',
    ]);
    const json = await run([...common, '--json']);
    expect(JSON.parse(json.stdout)).toEqual([
      {
        srcNamespace: 'prod',
        srcName: 'api-*',
        dstIP: '203.0.113.9',
        dstPort: '443',
        bytesSent: '1200',
        flows: '2',
      },
    ]);
    expect(polls).toBe(6);
    // A table only on a terminal: no ANSI codes into this pipe, unless forced.
    expect(table.stdout).not.toContain('\x1b[');
    expect((await run([...common, '--no-color'], { FORCE_COLOR: '1' })).stdout).not.toContain(
      '\x1b[',
    );
    expect((await run(common, { FORCE_COLOR: '1' })).stdout).toContain('\x1b[');
  }, 60_000);

  const lastStart = () => proxy.operations('StartQuery').at(-1)!.body as Record<string, unknown>;

  it("--param sets the query's parameter in the text it sends, and the heading says so", async () => {
    const args = ['--cluster', 'qtest', '--region', 'us-east-1', '--endpoint', proxy.endpoint];
    const r = await run(['namespace-talkers', ...args, '--param', 'namespace=payments']);
    expect(r.status).toBe(0);
    const q = findQuery('namespace-talkers')!;
    expect(lastStart().queryString).toBe(queryText(q, { namespace: 'payments' }));
    expect(lastStart().queryString).toContain('srcNamespace = "payments"');
    expect(r.stdout).toContain('What did namespace payments talk to?');
    // Without --param, the default.
    await run(['namespace-talkers', ...args]);
    expect(lastStart().queryString).toBe(queryText(q));
  }, 60_000);

  it('without --since a query runs over its own default range (24h, 1h)', async () => {
    const args = ['--cluster', 'qtest', '--region', 'us-east-1', '--endpoint', proxy.endpoint];
    for (const [name, seconds] of [
      ['egress-internet', 86_400],
      ['denied-flows', 3_600],
    ] as const) {
      const before = Math.floor(Date.now() / 1000);
      expect((await run([name, ...args, '--json'])).status).toBe(0);
      const after = Math.ceil(Date.now() / 1000);
      const { startTime, endTime } = lastStart() as { startTime: number; endTime: number };
      expect(endTime).toBeGreaterThanOrEqual(before);
      expect(endTime).toBeLessThanOrEqual(after + 1);
      expect(Math.abs(endTime - startTime - seconds)).toBeLessThanOrEqual(1);
    }
    // An explicit --since still wins.
    await run(['egress-internet', ...args, '--since', '30m']);
    const { startTime, endTime } = lastStart() as { startTime: number; endTime: number };
    expect(Math.abs(endTime - startTime - 1_800)).toBeLessThanOrEqual(1);
  }, 60_000);

  it('-c/--config gives the log group, region and endpoint (a config without nodeName, as the ConfigMap)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ft-query-'));
    const config = join(dir, 'flowtrail.yaml');
    writeFileSync(
      config,
      `clusterName: qtest\nsinks:\n  cloudwatch: { region: us-east-1, endpoint: '${proxy.endpoint}' }\n`,
    );
    const r = await run(['denied-flows', '-c', config, '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(lastStart().logGroupName).toBe(GROUP);
    // FLOWTRAIL_CONFIG names it too, as for the agent.
    const env = await run(['denied-flows', '--json'], { FLOWTRAIL_CONFIG: config });
    expect(env.status).toBe(0);
    expect(lastStart().logGroupName).toBe(GROUP);
  }, 60_000);
});
