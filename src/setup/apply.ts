/** Reads the current CloudWatch state and applies a setup plan through the SDK. */
import {
  type CloudWatchClient,
  DescribeAlarmsCommand,
  PutMetricAlarmCommand,
} from '@aws-sdk/client-cloudwatch';
import {
  type CloudWatchLogsClient,
  CreateLogGroupCommand,
  DescribeLogGroupsCommand,
  DescribeMetricFiltersCommand,
  DescribeQueryDefinitionsCommand,
  ListTagsForResourceCommand,
  PutMetricFilterCommand,
  PutQueryDefinitionCommand,
  PutRetentionPolicyCommand,
  TagResourceCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import type { Change, Current, Desired } from './plan.js';

export interface SetupClients {
  logs: CloudWatchLogsClient;
  cloudwatch: CloudWatchClient;
}

async function logGroupArn(logs: CloudWatchLogsClient, name: string): Promise<string | undefined> {
  const r = await logs.send(new DescribeLogGroupsCommand({ logGroupNamePrefix: name }));
  const g = r.logGroups?.find((x) => x.logGroupName === name);
  return g?.arn?.replace(/:\*$/, '');
}

export async function readCurrent(c: SetupClients, desired: Desired): Promise<Current> {
  const groups = await c.logs.send(
    new DescribeLogGroupsCommand({ logGroupNamePrefix: desired.logGroupName }),
  );
  const group = groups.logGroups?.find((g) => g.logGroupName === desired.logGroupName);
  let logGroup: Current['logGroup'];
  let metricFilters: Current['metricFilters'] = [];
  if (group) {
    const arn = group.arn?.replace(/:\*$/, '');
    const tags = arn
      ? ((await c.logs.send(new ListTagsForResourceCommand({ resourceArn: arn }))).tags ?? {})
      : {};
    logGroup = { retentionDays: group.retentionInDays, tags };
    const filters = await c.logs.send(
      new DescribeMetricFiltersCommand({ logGroupName: desired.logGroupName }),
    );
    metricFilters = (filters.metricFilters ?? []).map((f) => ({
      filterName: f.filterName ?? '',
      filterPattern: f.filterPattern ?? '',
      metricName: f.metricTransformations?.[0]?.metricName ?? '',
      metricNamespace: f.metricTransformations?.[0]?.metricNamespace ?? '',
      metricValue: f.metricTransformations?.[0]?.metricValue ?? '',
    }));
  }
  const alarms = await c.cloudwatch.send(
    new DescribeAlarmsCommand({ AlarmNames: desired.alarms.map((a) => a.AlarmName) }),
  );
  const queries = await c.logs.send(
    new DescribeQueryDefinitionsCommand({ queryDefinitionNamePrefix: 'flowtrail/' }),
  );
  return {
    logGroup,
    metricFilters,
    alarms: (alarms.MetricAlarms ?? []).map((a) => ({
      AlarmName: a.AlarmName,
      Namespace: a.Namespace,
      MetricName: a.MetricName,
      Dimensions: (a.Dimensions ?? []).map((d) => ({ Name: d.Name ?? '', Value: d.Value ?? '' })),
      Statistic: a.Statistic as 'Sum' | 'Minimum',
      Period: a.Period,
      EvaluationPeriods: a.EvaluationPeriods,
      Threshold: a.Threshold,
      ComparisonOperator: a.ComparisonOperator as 'GreaterThanThreshold' | 'LessThanThreshold',
      TreatMissingData: a.TreatMissingData as 'breaching' | 'notBreaching',
      AlarmActions: a.AlarmActions ?? [],
    })),
    queries: (queries.queryDefinitions ?? []).map((q) => ({
      name: q.name ?? '',
      queryString: q.queryString ?? '',
      id: q.queryDefinitionId ?? '',
    })),
  };
}

export async function applyChange(
  c: SetupClients,
  change: Change,
  desired: Desired,
): Promise<void> {
  switch (change.kind) {
    case 'create-log-group':
      try {
        await c.logs.send(
          new CreateLogGroupCommand({ logGroupName: change.name, tags: desired.tags }),
        );
      } catch (err) {
        if ((err as Error).name !== 'ResourceAlreadyExistsException') throw err;
      }
      return;
    case 'set-retention':
      await c.logs.send(
        new PutRetentionPolicyCommand({ logGroupName: change.name, retentionInDays: change.to }),
      );
      return;
    case 'tag-log-group': {
      const arn = await logGroupArn(c.logs, change.name);
      if (arn) await c.logs.send(new TagResourceCommand({ resourceArn: arn, tags: change.tags }));
      return;
    }
    case 'put-metric-filter':
      await c.logs.send(
        new PutMetricFilterCommand({
          logGroupName: desired.logGroupName,
          filterName: change.spec.filterName,
          filterPattern: change.spec.filterPattern,
          metricTransformations: [
            {
              metricName: change.spec.metricName,
              metricNamespace: change.spec.metricNamespace,
              metricValue: change.spec.metricValue,
              defaultValue: 0,
            },
          ],
        }),
      );
      return;
    case 'put-alarm':
      await c.cloudwatch.send(new PutMetricAlarmCommand({ ...change.spec }));
      return;
    case 'put-query':
      await c.logs.send(
        new PutQueryDefinitionCommand({
          name: change.name,
          queryString: change.queryString,
          logGroupNames: [desired.logGroupName],
          ...(change.id ? { queryDefinitionId: change.id } : {}),
        }),
      );
      return;
  }
}
