/**
 * `flowtrail setup`: provisions the CloudWatch side for a cluster — the log
 * group with retention and tags, the denied-packets metric filters, the
 * alarms, and the saved Logs Insights queries — idempotently. `--dry-run`
 * prints every change and makes none.
 */
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import type { Command } from 'commander';
import { defaultLogGroupName, RETENTION_DAYS } from '../config.js';
import { applyChange, readCurrent } from '../setup/apply.js';
import { describeChange, desiredResources, plan } from '../setup/plan.js';
import { regionRequired, resolveRegion } from '../util/aws-region.js';
import { FlowtrailError } from '../util/errors.js';
import { loadConfigOrExit } from './agent.js';

interface SetupFlags {
  config?: string;
  cluster?: string;
  region?: string;
  endpoint?: string;
  logGroup?: string;
  retentionDays?: string;
  deniedThreshold: string;
  snsTopicArn?: string;
  dryRun?: boolean;
  json?: boolean;
}

function fail(message: string): never {
  process.stderr.write(`flowtrail setup: ${message}\n`);
  process.exit(2);
}

export function registerSetup(program: Command): void {
  program
    .command('setup')
    .description(
      'create the log group, retention, metric filters, alarms and saved queries (idempotent)',
    )
    .option(
      '-c, --config <file>',
      'take cluster, region, endpoint, log group and namespace from the agent config',
    )
    .option('--cluster <name>', 'cluster name (log group flowtrail-flowlogs-<cluster>)')
    .option('--region <region>', 'AWS region (default: config, then AWS_REGION)')
    .option('--endpoint <url>', 'CloudWatch endpoint override (emulators)')
    .option('--log-group <name>', 'log group name (default flowtrail-flowlogs-<cluster>)')
    .option('--retention-days <days>', 'log retention in days (default 7)')
    .option(
      '--denied-threshold <packets>',
      'alarm when more packets than this are denied in 5 minutes',
      '100',
    )
    .option('--sns-topic-arn <arn>', 'notify this SNS topic when an alarm fires')
    .option('--dry-run', 'print what would be created or changed, change nothing')
    .option('--json', 'print the plan as JSON')
    .action(async (flags: SetupFlags) => {
      const file = flags.config
        ? loadConfigOrExit(flags.config, {
            ...(flags.cluster ? { clusterName: flags.cluster } : {}),
          })
        : undefined;
      const clusterName = flags.cluster ?? file?.clusterName;
      if (!clusterName) fail('--cluster is required (or --config with clusterName)');
      const cw = file?.sinks.cloudwatch;
      const region = resolveRegion(flags.region, cw?.region);
      if (!region) fail(regionRequired(true));
      const endpoint = flags.endpoint ?? cw?.endpoint;
      const retentionDays =
        flags.retentionDays !== undefined ? Number(flags.retentionDays) : (cw?.retentionDays ?? 7);
      if (!(RETENTION_DAYS as readonly number[]).includes(retentionDays)) {
        fail(
          `--retention-days: expected one of ${RETENTION_DAYS.join(', ')}, got ${JSON.stringify(flags.retentionDays)}`,
        );
      }
      const deniedThreshold = Number(flags.deniedThreshold);
      if (!Number.isFinite(deniedThreshold) || deniedThreshold < 0) {
        fail(
          `--denied-threshold: expected a number ≥ 0, got ${JSON.stringify(flags.deniedThreshold)}`,
        );
      }
      const desired = desiredResources({
        clusterName,
        logGroupName: flags.logGroup ?? cw?.logGroupName ?? defaultLogGroupName(clusterName),
        retentionDays,
        tags: cw?.tags ?? {},
        namespace: file?.metrics.namespace ?? 'flowtrail',
        deniedThreshold,
        snsTopicArn: flags.snsTopicArn,
      });
      const clientConfig = { region, ...(endpoint ? { endpoint } : {}) };
      const clients = {
        logs: new CloudWatchLogsClient(clientConfig),
        cloudwatch: new CloudWatchClient({
          ...clientConfig,
          ...(endpoint ? { disableRequestCompression: true } : {}),
        }),
      };
      try {
        const current = await readCurrent(clients, desired);
        const changes = plan(desired, current);
        if (flags.json) {
          process.stdout.write(
            `${JSON.stringify({ dryRun: flags.dryRun === true, changes }, null, 2)}\n`,
          );
        } else if (changes.length === 0) {
          process.stdout.write(
            `no changes: ${desired.logGroupName}, its metric filters, alarms and queries are in place\n`,
          );
        } else {
          for (const c of changes)
            process.stdout.write(`${flags.dryRun ? 'would ' : ''}${describeChange(c)}\n`);
        }
        if (!flags.dryRun) for (const c of changes) await applyChange(clients, c, desired);
      } catch (err) {
        const e = err as Error;
        const message = err instanceof FlowtrailError ? e.message : `${e.name}: ${e.message}`;
        process.stderr.write(`flowtrail setup: ${message}\n`);
        process.exit(1);
      } finally {
        clients.logs.destroy();
        clients.cloudwatch.destroy();
      }
    });
}
