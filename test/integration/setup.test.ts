/**
 * `flowtrail setup` against moto_server. moto answers PutQueryDefinition and
 * DescribeQueryDefinitions with HTTP 500, so the proxy in front of it serves
 * those two operations itself, from memory; everything else reaches moto.
 */
import { CloudWatchClient, DescribeAlarmsCommand } from '@aws-sdk/client-cloudwatch';
import {
  CloudWatchLogsClient,
  DescribeLogGroupsCommand,
  DescribeMetricFiltersCommand,
  ListTagsForResourceCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PARSE_LINE, QUERY_PACK } from '../../src/queries/pack.js';
import { awsTestConfig, type Moto, startMoto } from '../../src/sim/moto.js';
import { FaultProxy } from '../../tooling/sim/fault-proxy.js';
import { runCli } from '../harness/cli.js';
import { skipMoto } from '../harness/env.js';

describe.skipIf(skipMoto)('flowtrail setup (moto)', () => {
  let moto: Moto;
  let proxy: FaultProxy;
  const queries = new Map<
    string,
    { queryDefinitionId: string; name: string; queryString: string; logGroupNames: string[] }
  >();

  beforeAll(async () => {
    moto = await startMoto();
    proxy = await FaultProxy.start(moto.endpoint);
    proxy.intercept('PutQueryDefinition', (b) => {
      const name = String(b?.name);
      const id = String(
        b?.queryDefinitionId ?? queries.get(name)?.queryDefinitionId ?? `q-${queries.size + 1}`,
      );
      queries.set(name, {
        queryDefinitionId: id,
        name,
        queryString: String(b?.queryString),
        logGroupNames: b?.logGroupNames as string[],
      });
      return { queryDefinitionId: id };
    });
    proxy.intercept('DescribeQueryDefinitions', (b) => ({
      queryDefinitions: [...queries.values()].filter((q) =>
        q.name.startsWith(String(b?.queryDefinitionNamePrefix ?? '')),
      ),
    }));
  });
  afterAll(async () => {
    await proxy?.stop();
    await moto?.stop();
  });

  // Async: the proxy lives in this process, so the CLI must not block its event loop.
  const setup = (...args: string[]) =>
    runCli([
      'setup',
      '--cluster',
      'prod-eu',
      '--region',
      'us-east-1',
      '--endpoint',
      proxy.endpoint,
      ...args,
    ]);

  it('--dry-run prints every resource it would create and creates none', async () => {
    const run = await setup(
      '--dry-run',
      '--sns-topic-arn',
      'arn:aws:sns:us-east-1:123456789012:netsec',
    );
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('would create log group flowtrail-flowlogs-prod-eu');
    expect(run.stdout).toContain('would create alarm flowtrail-prod-eu-denied-packets');
    expect(run.stdout).toContain('would save Logs Insights query flowtrail/denied-flows');
    const logs = new CloudWatchLogsClient(awsTestConfig(moto.endpoint));
    const groups = await logs.send(
      new DescribeLogGroupsCommand({ logGroupNamePrefix: 'flowtrail-flowlogs-prod-eu' }),
    );
    expect(groups.logGroups ?? []).toEqual([]);
    expect(queries.size).toBe(0);
  });

  it('creates the log group, metric filters, alarms and saved queries with the documented fields', async () => {
    const run = await setup(
      '--sns-topic-arn',
      'arn:aws:sns:us-east-1:123456789012:netsec',
      '--denied-threshold',
      '250',
      '--retention-days',
      '30',
    );
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const logs = new CloudWatchLogsClient(awsTestConfig(moto.endpoint));
    const group = (
      await logs.send(
        new DescribeLogGroupsCommand({ logGroupNamePrefix: 'flowtrail-flowlogs-prod-eu' }),
      )
    ).logGroups?.[0];
    expect(group?.retentionInDays).toBe(30);
    const tags = await logs.send(
      new ListTagsForResourceCommand({ resourceArn: group!.arn!.replace(/:\*$/, '') }),
    );
    expect(tags.tags).toMatchObject({ 'flowtrail:cluster': 'prod-eu' });
    const filters =
      (
        await logs.send(
          new DescribeMetricFiltersCommand({ logGroupName: 'flowtrail-flowlogs-prod-eu' }),
        )
      ).metricFilters ?? [];
    expect(
      filters
        .map((f) => [
          f.filterName,
          f.metricTransformations?.[0]?.metricName,
          f.metricTransformations?.[0]?.metricValue,
        ])
        .sort(),
    ).toEqual([
      ['flowtrail-prod-eu-denied-egress', 'DeniedPacketsFromLogs', '$packetsOut'],
      ['flowtrail-prod-eu-denied-egress-with-policies', 'DeniedPacketsFromLogs', '$packetsOut'],
      ['flowtrail-prod-eu-denied-ingress', 'DeniedPacketsFromLogs', '$packetsIn'],
      ['flowtrail-prod-eu-denied-ingress-with-policies', 'DeniedPacketsFromLogs', '$packetsIn'],
    ]);
    expect(filters.every((f) => f.filterPattern?.includes('action = "deny"'))).toBe(true);
    const cw = new CloudWatchClient(awsTestConfig(moto.endpoint));
    const alarms =
      (await cw.send(new DescribeAlarmsCommand({ AlarmNamePrefix: 'flowtrail-prod-eu' })))
        .MetricAlarms ?? [];
    const denied = alarms.find((a) => a.AlarmName === 'flowtrail-prod-eu-denied-packets');
    expect(denied).toMatchObject({
      MetricName: 'DeniedPackets',
      Namespace: 'flowtrail',
      Statistic: 'Sum',
      Period: 300,
      Threshold: 250,
      ComparisonOperator: 'GreaterThanThreshold',
      AlarmActions: ['arn:aws:sns:us-east-1:123456789012:netsec'],
    });
    const unhealthy = alarms.find((a) => a.AlarmName === 'flowtrail-prod-eu-node-unhealthy');
    expect(unhealthy).toMatchObject({
      MetricName: 'NodeHealthy',
      Statistic: 'Minimum',
      Threshold: 1,
      TreatMissingData: 'breaching',
    });
    expect([...queries.keys()].sort()).toEqual(QUERY_PACK.map((q) => `flowtrail/${q.name}`).sort());
    for (const q of queries.values()) {
      expect(q.queryString.startsWith(`${PARSE_LINE}\n| `)).toBe(true);
      expect(q.logGroupNames).toEqual(['flowtrail-flowlogs-prod-eu']);
    }
  });

  it('a second run changes nothing', async () => {
    const before = proxy.requests.filter((r) => /^Put|^Create|^Tag/.test(r.operation)).length;
    const run = await setup(
      '--sns-topic-arn',
      'arn:aws:sns:us-east-1:123456789012:netsec',
      '--denied-threshold',
      '250',
      '--retention-days',
      '30',
    );
    expect(run.status).toBe(0);
    expect(run.stdout.trim()).toBe(
      'no changes: flowtrail-flowlogs-prod-eu, its metric filters, alarms and queries are in place',
    );
    expect(proxy.requests.filter((r) => /^Put|^Create|^Tag/.test(r.operation)).length).toBe(before);
  });

  it('bad flags exit 2 with the allowed values', async () => {
    const run = await setup('--retention-days', '8');
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('--retention-days: expected one of 1, 3, 5, 7, 14');
  });
});
