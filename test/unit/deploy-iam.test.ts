/**
 * The IAM policies, rendered and evaluated (issue 19, item 7):
 * deploy/aws/iam-policy.json (the agents' run-time rights) and
 * iam-setup-policy.json (flowtrail setup's), with the documented
 * substitution (${AWS_REGION}, ${AWS_ACCOUNT_ID}, ${CLUSTER_NAME}), and
 * the CloudFormation template's AgentPolicy with its parameters. A small
 * evaluator of Allow statements (action and ARN patterns with * and ?)
 * answers "may this role do X on Y": on its own cluster's group, yes; on
 * another cluster's, another region's or another account's, no.
 *
 * The actions are read from the code that calls them (`new XCommand(` in
 * the agent's sink, metrics publisher and doctor; in setup's apply), so a
 * new call the policies do not grant fails here, not in production.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { desiredResources } from '../../src/setup/plan.js';
import { SETUP_TIME_ACTIONS } from '../../src/sinks/cloudwatch-logs/sink.js';
import { cfnTags } from '../helpers/cfn-yaml.js';

const root = new URL('../../', import.meta.url).pathname;
const read = (p: string) => readFileSync(`${root}${p}`, 'utf8');

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string>>;
}
interface Policy {
  Statement: Statement[];
}

const VARS = { AWS_REGION: 'eu-west-1', AWS_ACCOUNT_ID: '123456789012', CLUSTER_NAME: 'prod' };
const GROUP = 'flowtrail-flowlogs-prod';
const arn = (region: string, account: string, rest: string) =>
  `arn:aws:logs:${region}:${account}:${rest}`;
const own = (rest: string) => arn(VARS.AWS_REGION, VARS.AWS_ACCOUNT_ID, rest);

/** The documented substitution (envsubst); every placeholder must be one of VARS. */
function render(text: string, vars: Record<string, string> = VARS): Policy {
  const placeholders = [...text.matchAll(/\$\{([A-Za-z_:]+)\}/g)].map((m) => m[1]!);
  for (const p of placeholders) expect(Object.keys(vars)).toContain(p);
  return JSON.parse(text.replace(/\$\{([A-Z_]+)\}/g, (_, k: string) => vars[k]!)) as Policy;
}

const glob = (pattern: string) =>
  new RegExp(
    `^${pattern
      .replace(/[.+^$(){}|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );

/** Whether an Allow statement grants `action` on `resource` (conditions: the given context must satisfy them). */
function allows(
  policy: Policy,
  action: string,
  resource: string,
  context: Record<string, string> = {},
): boolean {
  return policy.Statement.some(
    (s) =>
      s.Effect === 'Allow' &&
      [s.Action].flat().some((a) => glob(a).test(action)) &&
      [s.Resource].flat().some((r) => glob(r).test(resource)) &&
      Object.entries(s.Condition?.StringEquals ?? {}).every(([k, v]) => context[k] === v),
  );
}

/** `logs:PutLogEvents`, … for every `new XCommand(` in a source file, by the client it imports X from. */
function actionsCalledIn(path: string): string[] {
  const text = read(path);
  const service = (cmd: string) => {
    const from = new RegExp(`\\b${cmd}\\b[^;]*?from '@aws-sdk/client-([a-z-]+)'`, 's').exec(text);
    return from?.[1] === 'cloudwatch-logs' ? 'logs' : 'cloudwatch';
  };
  return [...new Set([...text.matchAll(/new (\w+)Command\(/g)].map((m) => m[1]!))].map(
    (name) => `${service(`${name}Command`)}:${name}`,
  );
}

/** The ARNs an action is authorised against, for this cluster (group, its `:*` form, a stream). */
function resourcesOf(action: string): string[] {
  if (action.startsWith('cloudwatch:PutMetricData')) return ['*'];
  if (action === 'logs:PutLogEvents') return [own(`log-group:${GROUP}:log-stream:node-1_Flowlogs`)];
  if (action === 'logs:DescribeLogGroups') return [own('log-group:*')];
  return [own(`log-group:${GROUP}`), own(`log-group:${GROUP}:*`)];
}

const runtime = render(read('deploy/aws/iam-policy.json'));
const setup = render(read('deploy/aws/iam-setup-policy.json'));
const agentCalls = [
  'src/sinks/cloudwatch-logs/sink.ts',
  'src/metrics/cloudwatch-metrics.ts',
  'src/doctor/aws.ts',
].flatMap(actionsCalledIn);
const setupCalls = actionsCalledIn('src/setup/apply.ts');
const METRICS = { 'cloudwatch:namespace': 'flowtrail' };

describe('deploy/aws/iam-policy.json (the agents, at run time)', () => {
  it('uses only the documented placeholders, and renders to valid JSON with no wildcard region or account', () => {
    for (const s of runtime.Statement) {
      for (const r of [s.Resource].flat()) {
        if (r === '*') continue;
        expect(r.startsWith(`arn:aws:logs:${VARS.AWS_REGION}:${VARS.AWS_ACCOUNT_ID}:`)).toBe(true);
      }
      for (const a of [s.Action].flat()) expect(a).not.toContain('*');
    }
  });

  it('grants every call the agent and doctor make, except the setup-time ones the agent can do without', () => {
    expect(agentCalls).toContain('logs:PutLogEvents');
    expect(agentCalls).toContain('cloudwatch:PutMetricData');
    const needed = agentCalls.filter(
      (a) =>
        !(SETUP_TIME_ACTIONS as readonly string[]).includes(a) || a === 'logs:DescribeLogGroups',
    );
    for (const action of needed)
      for (const resource of resourcesOf(action))
        expect(allows(runtime, action, resource, METRICS), `${action} on ${resource}`).toBe(true);
  });

  it('grants no setup-time right: not the group, its retention, tags, filters, alarms or queries', () => {
    for (const action of [...setupCalls, ...SETUP_TIME_ACTIONS].filter(
      (a) => a !== 'logs:DescribeLogGroups',
    ))
      for (const resource of [...resourcesOf(action), '*'])
        expect(allows(runtime, action, resource, METRICS), `${action} on ${resource}`).toBe(false);
  });

  it("writes nowhere but its own cluster's group: not another cluster's, region's or account's", () => {
    const stream = (group: string, region = VARS.AWS_REGION, account = VARS.AWS_ACCOUNT_ID) =>
      arn(region, account, `log-group:${group}:log-stream:node-1_Flowlogs`);
    expect(allows(runtime, 'logs:PutLogEvents', stream(GROUP))).toBe(true);
    for (const other of [
      stream('flowtrail-flowlogs-staging'),
      stream('flowtrail-flowlogs-prod2'),
      stream('flowtrail-flowlogs-pro'),
      stream(GROUP, 'us-east-1'),
      stream(GROUP, VARS.AWS_REGION, '999999999999'),
    ]) {
      expect(allows(runtime, 'logs:PutLogEvents', other), other).toBe(false);
      expect(
        allows(runtime, 'logs:CreateLogStream', other.replace(/:log-stream:.*/, '')),
        other,
      ).toBe(false);
    }
    // Metrics only in the flowtrail namespace.
    expect(
      allows(runtime, 'cloudwatch:PutMetricData', '*', { 'cloudwatch:namespace': 'other' }),
    ).toBe(false);
  });
});

describe('deploy/aws/iam-setup-policy.json (flowtrail setup)', () => {
  const plan = desiredResources({
    clusterName: VARS.CLUSTER_NAME,
    logGroupName: GROUP,
    retentionDays: 7,
    deniedThreshold: 100,
    namespace: 'flowtrail',
    tags: {},
  });

  it('grants every call flowtrail setup makes, on the resources its plan names', () => {
    expect(setupCalls).toContain('logs:PutRetentionPolicy');
    for (const action of setupCalls) {
      const resources = action.startsWith('cloudwatch:')
        ? plan.alarms.map(
            (a) =>
              `arn:aws:cloudwatch:${VARS.AWS_REGION}:${VARS.AWS_ACCOUNT_ID}:alarm:${a.AlarmName}`,
          )
        : action.includes('QueryDefinition')
          ? ['*']
          : resourcesOf(action);
      for (const resource of resources)
        expect(allows(setup, action, resource), `${action} on ${resource}`).toBe(true);
    }
    expect(plan.logGroupName).toBe(GROUP);
  });

  it("reaches no other cluster's group or alarms", () => {
    expect(
      allows(setup, 'logs:PutRetentionPolicy', own('log-group:flowtrail-flowlogs-staging')),
    ).toBe(false);
    expect(
      allows(
        setup,
        'cloudwatch:PutMetricAlarm',
        `arn:aws:cloudwatch:${VARS.AWS_REGION}:${VARS.AWS_ACCOUNT_ID}:alarm:flowtrail-staging-denied-packets`,
      ),
    ).toBe(false);
  });
});

describe('deploy/aws/cloudformation.yaml AgentPolicy', () => {
  const t = parse(read('deploy/aws/cloudformation.yaml'), { customTags: cfnTags() });
  const stack = {
    'AWS::Partition': 'aws',
    'AWS::Region': VARS.AWS_REGION,
    'AWS::AccountId': VARS.AWS_ACCOUNT_ID,
    ClusterName: VARS.CLUSTER_NAME,
  };
  /** Resolves Fn::Sub and Ref (MetricNamespace: its default) as CloudFormation would. */
  function resolve(v: unknown): unknown {
    if (Array.isArray(v)) return v.map(resolve);
    if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if ('Fn::Sub' in o)
        return String(o['Fn::Sub']).replace(/\$\{([A-Za-z:]+)\}/g, (_, k: string) => {
          expect(Object.keys(stack)).toContain(k);
          return stack[k as keyof typeof stack];
        });
      if ('Ref' in o && o.Ref === 'MetricNamespace') return t.Parameters.MetricNamespace.Default;
      return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, resolve(x)]));
    }
    return v;
  }

  it('is the run-time policy of iam-policy.json, rendered for the stack, attached to the role when named', () => {
    const policy = t.Resources.AgentPolicy;
    expect(policy.Type).toBe('AWS::IAM::ManagedPolicy');
    expect(resolve(policy.Properties.PolicyDocument)).toEqual(
      render(read('deploy/aws/iam-policy.json')),
    );
    expect(policy.Properties.Roles).toEqual({
      'Fn::If': ['HasAgentRole', [{ Ref: 'AgentRoleName' }], { Ref: 'AWS::NoValue' }],
    });
    expect(t.Outputs.AgentPolicyArn).toEqual({ Value: { Ref: 'AgentPolicy' } });
  });
});
