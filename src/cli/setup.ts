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
import { type Current, describeChange, desiredResources, plan } from '../setup/plan.js';
import { regionRequired, resolveRegion } from '../util/aws-region.js';
import { FlowtrailError } from '../util/errors.js';
import { loadConfigOrExit } from './load-config.js';
import {
  clusterOption,
  configFile,
  configOption,
  EXIT_USAGE,
  exitCodes,
  hiddenAlias,
} from './options.js';

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
  process.exit(EXIT_USAGE);
}

/** What a dry run compares against when CloudWatch cannot be read: nothing exists yet. */
const NOTHING: Current = { logGroup: undefined, metricFilters: [], alarms: [], queries: [] };

function errorText(err: unknown): string {
  const e = err as Error;
  return err instanceof FlowtrailError ? e.message : `${e.name}: ${e.message}`;
}

export function registerSetup(program: Command): void {
  const cmd = program
    .command('setup')
    .description(
      'create the log group, retention, metric filters, alarms and saved queries (idempotent)',
    )
    .addOption(
      configOption('take cluster, region, endpoint, log group and namespace from the agent config'),
    )
    .addOption(clusterOption())
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
    .option(
      '--dry-run',
      'print what would be created or changed, change nothing (needs no AWS access: without it, the plan assumes nothing exists yet)',
    )
    .option('--json', 'print the plan as JSON');
  hiddenAlias(cmd, '--cluster-name <name>', 'cluster');
  exitCodes(cmd, {
    0: 'in place (or, with --dry-run, the plan printed)',
    1: 'a CloudWatch call failed (the message names it)',
    2: 'bad usage or configuration',
  });
  cmd.action(async (flags: SetupFlags) => {
    const configPath = configFile(flags);
    const file = configPath
      ? loadConfigOrExit(
          configPath,
          { ...(flags.cluster ? { clusterName: flags.cluster } : {}) },
          { nodeName: 'setup' },
        )
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
    const clientConfig = {
      region,
      ...(endpoint ? { endpoint } : {}),
      // A dry run only reads, and falls back to the full plan when it cannot:
      // one attempt, and no waiting minutes on an endpoint that never answers.
      ...(flags.dryRun
        ? { maxAttempts: 1, requestHandler: { connectionTimeout: 5_000, requestTimeout: 15_000 } }
        : {}),
    };
    const clients = {
      logs: new CloudWatchLogsClient(clientConfig),
      cloudwatch: new CloudWatchClient({
        ...clientConfig,
        ...(endpoint ? { disableRequestCompression: true } : {}),
      }),
    };
    try {
      let current: Current;
      let unread: string | undefined;
      try {
        current = await readCurrent(clients, desired);
      } catch (err) {
        if (!flags.dryRun) throw err;
        // No credentials, no network, no permission: the plan is still worth printing.
        unread = errorText(err);
        current = NOTHING;
        process.stderr.write(
          `flowtrail setup: cannot read what exists (${unread}); the plan below assumes nothing exists yet\n`,
        );
      }
      const changes = plan(desired, current);
      if (flags.json) {
        process.stdout.write(
          `${JSON.stringify(
            {
              dryRun: flags.dryRun === true,
              currentState: unread === undefined ? 'read' : 'unknown',
              ...(unread !== undefined ? { currentStateError: unread } : {}),
              changes,
            },
            null,
            2,
          )}\n`,
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
      process.stderr.write(`flowtrail setup: ${errorText(err)}\n`);
      process.exit(1);
    } finally {
      clients.logs.destroy();
      clients.cloudwatch.destroy();
    }
  });
}
