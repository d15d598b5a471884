/**
 * `flowtrail setup`: what should exist in CloudWatch for a cluster, compared
 * with what does, as a list of changes (pure), then applied through the SDK.
 * Running it twice makes no changes the second time.
 */
import { type RecordVariant, recordFields } from '../format/record.js';
import { QUERY_PACK, queryText } from '../queries/pack.js';

export interface SetupOptions {
  clusterName: string;
  logGroupName: string;
  retentionDays: number;
  tags: Record<string, string>;
  namespace: string;
  /** Denied packets per 5 minutes above which the alarm fires. */
  deniedThreshold: number;
  snsTopicArn?: string | undefined;
}

export interface MetricFilterSpec {
  filterName: string;
  filterPattern: string;
  metricName: string;
  metricNamespace: string;
  metricValue: string;
}

export interface AlarmSpec {
  AlarmName: string;
  AlarmDescription: string;
  Namespace: string;
  MetricName: string;
  Dimensions: { Name: string; Value: string }[];
  Statistic: 'Sum' | 'Minimum';
  Period: number;
  EvaluationPeriods: number;
  Threshold: number;
  ComparisonOperator: 'GreaterThanThreshold' | 'LessThanThreshold';
  TreatMissingData: 'breaching' | 'notBreaching';
  AlarmActions: string[];
}

export interface Desired {
  logGroupName: string;
  retentionDays: number;
  tags: Record<string, string>;
  metricFilters: MetricFilterSpec[];
  alarms: AlarmSpec[];
  queries: { name: string; queryString: string }[];
}

/**
 * The space-delimited pattern over one record variant's fields. A metric
 * filter's value is one field, so denied packets need a filter per
 * reporter: ingress denies (reporter dst) count packetsIn, egress denies
 * (reporter src) count packetsOut.
 *
 * And a filter per variant. Without `...`, CloudWatch gives the last named
 * field the rest of the event (why its documentation asks for a blank `w2`
 * after `w1=ERROR`), and an event with fewer fields than the pattern does
 * not match. So the 24-field pattern sees `action` = "deny a b c" on a
 * 27-field line (no match), the 27-field pattern cannot match a 24-field
 * line, and each deny line is counted by exactly one filter. A trailing
 * `...` would serve both with one pattern only if it may match no field at
 * all, which the documentation does not say.
 */
export function denyPattern(reporter: 'src' | 'dst', variant: RecordVariant = 24): string {
  const fields = recordFields(variant).map((f) => {
    if (f === 'action') return 'action = "deny"';
    if (f === 'reporter') return `reporter = "${reporter}"`;
    return f;
  });
  return `[${fields.join(', ')}]`;
}

/** The denied-packets filters: per reporter, one for each record variant. */
function deniedFilters(prefix: string, namespace: string): MetricFilterSpec[] {
  const out: MetricFilterSpec[] = [];
  for (const variant of [24, 27] as const) {
    for (const [direction, reporter, value] of [
      ['ingress', 'dst', '$packetsIn'],
      ['egress', 'src', '$packetsOut'],
    ] as const) {
      out.push({
        // The 24-field names are those setup always created: existing filters stay as they are.
        filterName: `${prefix}-denied-${direction}${variant === 27 ? '-with-policies' : ''}`,
        filterPattern: denyPattern(reporter, variant),
        metricName: 'DeniedPacketsFromLogs',
        metricNamespace: namespace,
        metricValue: value,
      });
    }
  }
  return out;
}

export function desiredResources(o: SetupOptions): Desired {
  const prefix = `flowtrail-${o.clusterName}`;
  const actions = o.snsTopicArn ? [o.snsTopicArn] : [];
  return {
    logGroupName: o.logGroupName,
    retentionDays: o.retentionDays,
    tags: { 'flowtrail:cluster': o.clusterName, ...o.tags },
    metricFilters: deniedFilters(prefix, o.namespace),
    alarms: [
      {
        AlarmName: `${prefix}-denied-packets`,
        AlarmDescription: `More than ${o.deniedThreshold} packets denied by network policy in 5 minutes in cluster ${o.clusterName}`,
        Namespace: o.namespace,
        MetricName: 'DeniedPackets',
        Dimensions: [{ Name: 'ClusterName', Value: o.clusterName }],
        Statistic: 'Sum',
        Period: 300,
        EvaluationPeriods: 1,
        Threshold: o.deniedThreshold,
        ComparisonOperator: 'GreaterThanThreshold',
        TreatMissingData: 'notBreaching',
        AlarmActions: actions,
      },
      {
        AlarmName: `${prefix}-node-unhealthy`,
        AlarmDescription: `A flowtrail node in cluster ${o.clusterName} reported unhealthy, or none reported, for 2 minutes`,
        Namespace: o.namespace,
        MetricName: 'NodeHealthy',
        Dimensions: [{ Name: 'ClusterName', Value: o.clusterName }],
        Statistic: 'Minimum',
        Period: 60,
        EvaluationPeriods: 2,
        Threshold: 1,
        ComparisonOperator: 'LessThanThreshold',
        TreatMissingData: 'breaching',
        AlarmActions: actions,
      },
    ],
    queries: QUERY_PACK.map((q) => ({ name: `flowtrail/${q.name}`, queryString: queryText(q) })),
  };
}

export interface Current {
  logGroup: { retentionDays: number | undefined; tags: Record<string, string> } | undefined;
  metricFilters: MetricFilterSpec[];
  alarms: Partial<AlarmSpec>[];
  queries: { name: string; queryString: string; id: string }[];
}

export type Change =
  | { kind: 'create-log-group'; name: string }
  | { kind: 'set-retention'; name: string; from: number | undefined; to: number }
  | { kind: 'tag-log-group'; name: string; tags: Record<string, string> }
  | { kind: 'put-metric-filter'; spec: MetricFilterSpec; reason: 'missing' | 'changed' }
  | { kind: 'put-alarm'; spec: AlarmSpec; reason: 'missing' | 'changed' }
  | {
      kind: 'put-query';
      name: string;
      queryString: string;
      id?: string;
      reason: 'missing' | 'changed';
    };

function sameAlarm(a: Partial<AlarmSpec>, b: AlarmSpec): boolean {
  return (
    a.MetricName === b.MetricName &&
    a.Namespace === b.Namespace &&
    a.Statistic === b.Statistic &&
    a.Period === b.Period &&
    a.EvaluationPeriods === b.EvaluationPeriods &&
    a.Threshold === b.Threshold &&
    a.ComparisonOperator === b.ComparisonOperator &&
    a.TreatMissingData === b.TreatMissingData &&
    JSON.stringify(a.Dimensions ?? []) === JSON.stringify(b.Dimensions) &&
    JSON.stringify([...(a.AlarmActions ?? [])].sort()) ===
      JSON.stringify([...b.AlarmActions].sort())
  );
}

/** The changes that turn `current` into `desired`; empty when all is in place. */
export function plan(desired: Desired, current: Current): Change[] {
  const changes: Change[] = [];
  const name = desired.logGroupName;
  if (!current.logGroup) {
    changes.push({ kind: 'create-log-group', name });
  }
  if (current.logGroup?.retentionDays !== desired.retentionDays) {
    changes.push({
      kind: 'set-retention',
      name,
      from: current.logGroup?.retentionDays,
      to: desired.retentionDays,
    });
  }
  const missingTags = Object.fromEntries(
    Object.entries(desired.tags).filter(([k, v]) => current.logGroup?.tags[k] !== v),
  );
  if (Object.keys(missingTags).length > 0)
    changes.push({ kind: 'tag-log-group', name, tags: missingTags });
  for (const f of desired.metricFilters) {
    const have = current.metricFilters.find((x) => x.filterName === f.filterName);
    if (!have) changes.push({ kind: 'put-metric-filter', spec: f, reason: 'missing' });
    else if (
      have.filterPattern !== f.filterPattern ||
      have.metricName !== f.metricName ||
      have.metricNamespace !== f.metricNamespace ||
      have.metricValue !== f.metricValue
    ) {
      changes.push({ kind: 'put-metric-filter', spec: f, reason: 'changed' });
    }
  }
  for (const a of desired.alarms) {
    const have = current.alarms.find((x) => x.AlarmName === a.AlarmName);
    if (!have) changes.push({ kind: 'put-alarm', spec: a, reason: 'missing' });
    else if (!sameAlarm(have, a)) changes.push({ kind: 'put-alarm', spec: a, reason: 'changed' });
  }
  for (const q of desired.queries) {
    const have = current.queries.find((x) => x.name === q.name);
    if (!have) changes.push({ kind: 'put-query', ...q, reason: 'missing' });
    else if (have.queryString !== q.queryString)
      changes.push({ kind: 'put-query', ...q, id: have.id, reason: 'changed' });
  }
  return changes;
}

export function describeChange(c: Change): string {
  switch (c.kind) {
    case 'create-log-group':
      return `create log group ${c.name}`;
    case 'set-retention':
      return `set retention of ${c.name} to ${c.to} days (was ${c.from ?? 'never expire'})`;
    case 'tag-log-group':
      return `tag ${c.name}: ${Object.entries(c.tags)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}`;
    case 'put-metric-filter':
      return `${c.reason === 'missing' ? 'create' : 'update'} metric filter ${c.spec.filterName} → ${c.spec.metricNamespace}/${c.spec.metricName} = ${c.spec.metricValue}`;
    case 'put-alarm':
      return `${c.reason === 'missing' ? 'create' : 'update'} alarm ${c.spec.AlarmName} (${c.spec.MetricName} ${c.spec.Statistic} ${c.spec.ComparisonOperator === 'GreaterThanThreshold' ? '>' : '<'} ${c.spec.Threshold} over ${c.spec.EvaluationPeriods}×${c.spec.Period}s, missing data ${c.spec.TreatMissingData})`;
    case 'put-query':
      return `${c.reason === 'missing' ? 'save' : 'update'} Logs Insights query ${c.name}`;
  }
}
