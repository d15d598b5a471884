/**
 * What `advise` and `policy test` read: records (files or a CloudWatch log
 * group, over a time window, optionally around one namespace) and, when
 * the records carry no labels, who the pods are (an endpoints file or the
 * Kubernetes API). Flags follow the other commands: --file, --log-group,
 * --cluster, -c/--config, --since, --until, --namespace.
 */
import type { Command } from 'commander';
import { type Directory, Identities } from '../advise/identity.js';
import { defaultLogGroupName } from '../config.js';
import type { FlowRecord } from '../format/record.js';
import { type BadLine, cloudWatchLines, decodeAll, fileLines } from '../report/sources.js';
import { regionRequired, resolveRegion } from '../util/aws-region.js';
import { loadConfigOrExit } from './load-config.js';
import { collect } from './options.js';
import { parseTime } from './report.js';

export interface FlowInputFlags {
  file: string[];
  logGroup?: string;
  cluster?: string;
  config?: string;
  region?: string;
  endpoint?: string;
  since: string;
  until?: string;
  namespace?: string;
  endpoints?: string;
  kubernetes?: boolean;
  kubeconfig?: string;
}

export interface FlowInput {
  records: FlowRecord[];
  ids: Identities;
  source: string;
  badLines: number;
  bad: BadLine[];
}

export function addFlowInputOptions(cmd: Command): Command {
  return cmd
    .option(
      '--file <path>',
      'a record file written by the file sink, gzip or not (repeatable)',
      collect,
      [],
    )
    .option('--log-group <name>', 'read from this CloudWatch Logs group instead of files')
    .option('--cluster <name>', 'cluster name: the log group flowtrail-flowlogs-<cluster>')
    .option(
      '-c, --config <file>',
      'the agent config: cluster, CloudWatch settings, endpoints source',
    )
    .option('--region <region>', 'AWS region for the log group (default: config, then AWS_REGION)')
    .option('--endpoint <url>', 'CloudWatch endpoint override (emulators)')
    .option('--since <time>', 'records ending after this: 30m, 2h, 7d ago or an ISO date', '24h')
    .option('--until <time>', 'records ending before this (default now)')
    .option('--namespace <ns>', 'only records with this source or destination namespace')
    .option(
      '--endpoints <file>',
      'pods, namespaces and nodes from an endpoints file, when records carry no labels',
    )
    .option(
      '--kubernetes',
      'pods, namespaces and nodes from the Kubernetes API, when records carry no labels',
    )
    .option(
      '--kubeconfig <file>',
      'kubeconfig for --kubernetes (default: in-cluster, then ~/.kube/config)',
    );
}

export async function loadFlowInput(
  flags: FlowInputFlags,
  fail: (message: string) => never,
): Promise<FlowInput> {
  const config = flags.config
    ? loadConfigOrExit(flags.config, flags.cluster ? { clusterName: flags.cluster } : {})
    : undefined;
  const now = Date.now();
  const since = parseTime(flags.since, now);
  if (since === undefined)
    fail(`--since: expected 30m, 2h, 7d or an ISO date, got ${JSON.stringify(flags.since)}`);
  const until = flags.until ? parseTime(flags.until, now) : now;
  if (until === undefined)
    fail(`--until: expected 30m, 2h, 7d or an ISO date, got ${JSON.stringify(flags.until)}`);
  const cluster = flags.cluster ?? config?.clusterName;
  const cw = config?.sinks.cloudwatch;
  const logGroup =
    flags.logGroup ??
    (flags.file.length > 0
      ? undefined
      : (cw?.logGroupName ?? (cluster ? defaultLogGroupName(cluster) : undefined)));
  if (flags.file.length === 0 && !logGroup)
    fail('give --file PATH (repeatable), --log-group NAME, --cluster NAME or -c CONFIG');
  const bad: BadLine[] = [];
  const counter = { bad: 0 };
  let records: FlowRecord[] = [];
  try {
    if (logGroup && flags.file.length === 0) {
      const region = resolveRegion(flags.region, cw?.region);
      if (!region) fail(regionRequired(!!flags.config));
      const endpoint = flags.endpoint ?? cw?.endpoint;
      records = decodeAll(
        await cloudWatchLines(logGroup, since, until, {
          region,
          ...(endpoint ? { endpoint } : {}),
        }),
        bad,
        counter,
      );
    } else {
      for (const f of flags.file) records.push(...decodeAll(fileLines(f), bad, counter));
    }
  } catch (err) {
    fail((err as Error).message);
  }
  records = records.filter(
    (r) =>
      r.endTime * 1000 >= since &&
      r.endTime * 1000 <= until &&
      (!flags.namespace ||
        r.srcNamespace === flags.namespace ||
        r.dstNamespace === flags.namespace),
  );
  let directory: Directory | undefined;
  try {
    // Loaded on use: the Kubernetes client is large, and most runs read labels from records.
    const { directoryFromApi, directoryFromFile } = await import('../advise/directory.js');
    if (flags.endpoints) directory = directoryFromFile(flags.endpoints);
    else if (flags.kubernetes || flags.kubeconfig || config?.endpoints.kubernetes)
      directory = await directoryFromApi(
        flags.kubeconfig ?? config?.endpoints.kubernetes?.kubeconfig,
      );
    else if (config?.endpoints.file) directory = directoryFromFile(config.endpoints.file);
  } catch (err) {
    fail((err as Error).message);
  }
  const labelsInRecords = Identities.labelsWritten(records);
  return {
    records,
    ids: new Identities(directory, labelsInRecords),
    source: logGroup && flags.file.length === 0 ? `log group ${logGroup}` : flags.file.join(', '),
    badLines: counter.bad,
    bad,
  };
}
