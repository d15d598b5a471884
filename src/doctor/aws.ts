/**
 * AWS preconditions for the CloudWatch sink: credentials resolve, the log
 * group and stream can be described, and (only with --write-test) one
 * harmless event and one metric datum can be written. Each failure names the
 * action, the endpoint or the errno, and the fix.
 */
import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import {
  CloudWatchLogsClient,
  CreateLogStreamCommand,
  DescribeLogGroupsCommand,
  DescribeLogStreamsCommand,
  PutLogEventsCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import { type CheckResult, fail, ok, skip, warn } from './types.js';

export interface AwsTarget {
  region: string;
  regionFrom: string;
  endpoint?: string | undefined;
  logGroupName: string;
  logStreamName: string;
  eventsStreamName: string;
  metricsNamespace: string;
  clusterName: string;
  nodeName: string;
  writeTest: boolean;
}

const NETWORK = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'TimeoutError',
]);

function describeError(err: unknown, action: string, t: AwsTarget): { found: string; fix: string } {
  const e = err as {
    name?: string;
    code?: string;
    message?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const code = e.code ?? e.name ?? 'Error';
  const where = t.endpoint ?? `the ${t.region} endpoint`;
  if (NETWORK.has(code) || NETWORK.has(e.name ?? '')) {
    return {
      found: `${action}: cannot reach ${where} (${code})`,
      fix: 'check the node can reach CloudWatch Logs (VPC endpoint logs.<region>.amazonaws.com, proxy, security groups) and sinks.cloudwatch.endpoint',
    };
  }
  if (
    /AccessDenied|UnauthorizedOperation|NotAuthorized/.test(code) ||
    e.$metadata?.httpStatusCode === 403
  ) {
    return {
      found: `${action} denied (${code}): ${e.message ?? ''}`.trim(),
      fix: `allow ${action} on the log group in the node's IAM role (deploy/aws/iam-policy.json; with IRSA, the service account's role)`,
    };
  }
  return {
    found: `${action} failed (${code}): ${e.message ?? ''}`.trim(),
    fix: 'see docs/troubleshooting.md',
  };
}

/** Where the default credential chain most likely found credentials (the SDK does not say). */
function credentialSource(env: NodeJS.ProcessEnv): string {
  if (env.AWS_ACCESS_KEY_ID) return 'environment variables';
  if (env.AWS_WEB_IDENTITY_TOKEN_FILE) return 'web identity token (IRSA)';
  if (env.AWS_CONTAINER_CREDENTIALS_FULL_URI || env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)
    return 'container credentials (EKS Pod Identity / ECS)';
  if (env.AWS_PROFILE) return `shared config profile ${env.AWS_PROFILE}`;
  return 'shared config files or instance metadata (IMDS)';
}

export async function checkAws(
  t: AwsTarget,
  env: NodeJS.ProcessEnv = process.env,
): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const opts = {
    region: t.region,
    ...(t.endpoint ? { endpoint: t.endpoint } : {}),
    maxAttempts: 1,
  };
  const logs = new CloudWatchLogsClient({
    ...opts,
    requestHandler: { connectionTimeout: 3_000, requestTimeout: 5_000 },
  });
  const cw = new CloudWatchClient({
    ...opts,
    ...(t.endpoint ? { disableRequestCompression: true } : {}),
  });
  try {
    try {
      const creds = await logs.config.credentials();
      out.push(
        ok(
          'aws.credentials',
          'AWS credentials',
          `resolved from ${credentialSource(env)} (access key …${creds.accessKeyId.slice(-4)}); region ${t.region} (${t.regionFrom})`,
        ),
      );
    } catch (err) {
      out.push(
        fail(
          'aws.credentials',
          'AWS credentials',
          `the credential chain found none: ${(err as Error).message.split('\n')[0]}`,
          'on EKS use IRSA (annotate the service account with the role ARN) or EKS Pod Identity; elsewhere an instance profile or AWS_* variables',
        ),
      );
      return out;
    }
    const groupTitle = `log group ${t.logGroupName}`;
    let groupExists = false;
    try {
      const r = await logs.send(
        new DescribeLogGroupsCommand({ logGroupNamePrefix: t.logGroupName }),
      );
      const g = r.logGroups?.find((x) => x.logGroupName === t.logGroupName);
      groupExists = g !== undefined;
      out.push(
        g
          ? ok(
              'aws.log-group',
              groupTitle,
              `exists, retention ${g.retentionInDays ?? 'never expire'} days`,
            )
          : warn(
              'aws.log-group',
              groupTitle,
              'does not exist yet: the agent creates it (needs logs:CreateLogGroup)',
              `flowtrail setup --cluster ${t.clusterName} --region ${t.region} creates it with retention, metric filters and alarms`,
            ),
      );
    } catch (err) {
      const d = describeError(err, 'logs:DescribeLogGroups', t);
      out.push(fail('aws.log-group', groupTitle, d.found, d.fix));
      return out;
    }
    const streamTitle = `log stream ${t.logStreamName}`;
    if (groupExists) {
      try {
        const r = await logs.send(
          new DescribeLogStreamsCommand({
            logGroupName: t.logGroupName,
            logStreamNamePrefix: t.logStreamName,
          }),
        );
        const s = r.logStreams?.find((x) => x.logStreamName === t.logStreamName);
        out.push(
          s
            ? ok(
                'aws.log-stream',
                streamTitle,
                `exists${s.lastIngestionTime ? `, last ingestion ${new Date(s.lastIngestionTime).toISOString()}` : ', no events yet'}`,
              )
            : ok(
                'aws.log-stream',
                streamTitle,
                'not created yet: the agent creates it on its first put',
              ),
        );
      } catch (err) {
        const d = describeError(err, 'logs:DescribeLogStreams', t);
        out.push(fail('aws.log-stream', streamTitle, d.found, d.fix));
      }
    } else {
      out.push(skip('aws.log-stream', streamTitle, 'the log group does not exist yet'));
    }
    const writeTitle = `PutLogEvents to ${t.eventsStreamName}`;
    const metricTitle = `PutMetricData to namespace ${t.metricsNamespace}`;
    if (!t.writeTest) {
      out.push(
        skip('aws.write', writeTitle, 'not tried: add --write-test to put one harmless event'),
      );
      out.push(skip('aws.metrics', metricTitle, 'not tried: add --write-test to put one datum'));
      return out;
    }
    if (!groupExists) {
      out.push(skip('aws.write', writeTitle, 'the log group does not exist yet'));
    } else {
      try {
        await logs
          .send(
            new CreateLogStreamCommand({
              logGroupName: t.logGroupName,
              logStreamName: t.eventsStreamName,
            }),
          )
          .catch((err: Error) => {
            if (err.name !== 'ResourceAlreadyExistsException') throw err;
          });
        // The node's events stream, never the records stream: that one holds flow records only.
        await logs.send(
          new PutLogEventsCommand({
            logGroupName: t.logGroupName,
            logStreamName: t.eventsStreamName,
            logEvents: [
              {
                timestamp: Date.now(),
                message: JSON.stringify({
                  event: 'doctor',
                  detail: 'write test',
                  node: t.nodeName,
                }),
              },
            ],
          }),
        );
        out.push(ok('aws.write', writeTitle, 'one event written'));
      } catch (err) {
        const d = describeError(err, 'logs:PutLogEvents', t);
        out.push(fail('aws.write', writeTitle, d.found, d.fix));
      }
    }
    try {
      await cw.send(
        new PutMetricDataCommand({
          Namespace: t.metricsNamespace,
          MetricData: [
            {
              MetricName: 'DoctorWriteTest',
              Value: 1,
              Unit: 'Count',
              Dimensions: [
                { Name: 'ClusterName', Value: t.clusterName },
                { Name: 'NodeName', Value: t.nodeName },
              ],
            },
          ],
        }),
      );
      out.push(ok('aws.metrics', metricTitle, 'one datum written'));
    } catch (err) {
      const d = describeError(err, 'cloudwatch:PutMetricData', t);
      out.push(fail('aws.metrics', metricTitle, d.found, d.fix));
    }
    return out;
  } finally {
    logs.destroy();
    cw.destroy();
  }
}
