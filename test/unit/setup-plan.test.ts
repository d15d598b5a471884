import { describe, expect, it } from 'vitest';
import { QUERY_PACK } from '../../src/queries/pack.js';
import { type Current, describeChange, desiredResources, plan } from '../../src/setup/plan.js';

// The metric filters are checked against records in metric-filter.test.ts,
// the query pack's parse line and filters in query-pack.test.ts.

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

  const inPlace = (): Current => ({
    logGroup: { retentionDays: 7, tags: { ...desired.tags } },
    metricFilters: desired.metricFilters.map((f) => ({ ...f })),
    alarms: desired.alarms.map((a) => ({ ...a })),
    queries: desired.queries.map((q, i) => ({ ...q, id: `q${i}` })),
  });

  it('from nothing, in order: group, retention, tags, 4 filters, 2 alarms, the queries', () => {
    const changes = plan(desired, empty);
    expect(changes.map((c) => c.kind)).toEqual([
      'create-log-group',
      'set-retention',
      'tag-log-group',
      'put-metric-filter',
      'put-metric-filter',
      'put-metric-filter',
      'put-metric-filter',
      'put-alarm',
      'put-alarm',
      ...QUERY_PACK.map(() => 'put-query'),
    ]);
    expect(changes.map(describeChange).slice(0, 3)).toEqual([
      'create log group flowtrail-flowlogs-c1',
      'set retention of flowtrail-flowlogs-c1 to 7 days (was never expire)',
      'tag flowtrail-flowlogs-c1: flowtrail:cluster=c1, team=net',
    ]);
    expect(changes.map(describeChange).slice(3, 7)).toEqual([
      'create metric filter flowtrail-c1-denied-ingress → flowtrail/DeniedPacketsFromLogs = $packetsIn',
      'create metric filter flowtrail-c1-denied-egress → flowtrail/DeniedPacketsFromLogs = $packetsOut',
      'create metric filter flowtrail-c1-denied-ingress-with-policies → flowtrail/DeniedPacketsFromLogs = $packetsIn',
      'create metric filter flowtrail-c1-denied-egress-with-policies → flowtrail/DeniedPacketsFromLogs = $packetsOut',
    ]);
  });

  it('a group set up before the 27-field filters: only those two are added', () => {
    const current = inPlace();
    current.metricFilters = current.metricFilters.filter(
      (f) => !f.filterName.endsWith('-with-policies'),
    );
    expect(plan(desired, current)).toEqual([
      { kind: 'put-metric-filter', spec: desired.metricFilters[2], reason: 'missing' },
      { kind: 'put-metric-filter', spec: desired.metricFilters[3], reason: 'missing' },
    ]);
  });

  it('a changed retention, a missing tag, an edited filter and query: exactly those changes', () => {
    const current = inPlace();
    current.logGroup = { retentionDays: 30, tags: { 'flowtrail:cluster': 'c1', other: 'x' } };
    current.metricFilters[1]!.metricValue = '1';
    current.queries[2]!.queryString += ' | limit 5';
    const changes = plan(desired, current);
    expect(changes).toEqual([
      { kind: 'set-retention', name: 'flowtrail-flowlogs-c1', from: 30, to: 7 },
      { kind: 'tag-log-group', name: 'flowtrail-flowlogs-c1', tags: { team: 'net' } },
      { kind: 'put-metric-filter', spec: desired.metricFilters[1], reason: 'changed' },
      { kind: 'put-query', ...desired.queries[2], id: 'q2', reason: 'changed' },
    ]);
  });

  it('an SNS topic becomes the action of both alarms; removing it is a change too', () => {
    const withSns = desiredResources({
      clusterName: 'c1',
      logGroupName: 'flowtrail-flowlogs-c1',
      retentionDays: 7,
      tags: { team: 'net' },
      namespace: 'flowtrail',
      deniedThreshold: 100,
      snsTopicArn: 'arn:aws:sns:us-east-1:123456789012:oncall',
    });
    for (const a of withSns.alarms)
      expect(a.AlarmActions).toEqual(['arn:aws:sns:us-east-1:123456789012:oncall']);
    const current = inPlace();
    expect(plan(withSns, current).map((c) => c.kind)).toEqual(['put-alarm', 'put-alarm']);
    current.alarms = withSns.alarms;
    expect(plan(desired, current).map((c) => c.kind)).toEqual(['put-alarm', 'put-alarm']);
  });

  it('the alarms: denied packets Sum over 5 min > threshold; node health Minimum < 1 with missing data breaching', () => {
    const [denied, unhealthy] = desired.alarms;
    expect(denied).toMatchObject({
      MetricName: 'DeniedPackets',
      Statistic: 'Sum',
      Period: 300,
      EvaluationPeriods: 1,
      Threshold: 100,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
      Dimensions: [{ Name: 'ClusterName', Value: 'c1' }],
    });
    expect(unhealthy).toMatchObject({
      MetricName: 'NodeHealthy',
      Statistic: 'Minimum',
      Threshold: 1,
      ComparisonOperator: 'LessThanThreshold',
      TreatMissingData: 'breaching',
    });
  });
});
