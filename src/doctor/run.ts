/**
 * `flowtrail doctor`: every precondition of a working agent, checked where
 * the agent would run, each with what was found and the fix. Ready when no
 * check failed (warnings and skips do not block).
 */
import {
  type Config,
  defaultEventsStreamName,
  defaultLogGroupName,
  defaultLogStreamName,
} from '../config.js';
import { AGENT_REGION_REQUIRED, resolveRegionFrom } from '../util/aws-region.js';
import { checkAws } from './aws.js';
import { checkKernelDrops } from './kdrops.js';
import { checkConntrack, checkNflog, checkSysctls } from './kernel.js';
import { checkNflogRules, collectNflogRules } from './policy.js';
import { checkSpool } from './spool.js';
import { type CheckResult, fail, skip } from './types.js';

export interface DoctorOptions {
  writeTest: boolean;
  env?: NodeJS.ProcessEnv;
}

export interface DoctorReport {
  ok: boolean;
  checks: CheckResult[];
}

export async function runDoctor(config: Config, o: DoctorOptions): Promise<DoctorReport> {
  const env = o.env ?? process.env;
  const groups = [config.nflog.ingressGroup, config.nflog.egressGroup];
  const checks: CheckResult[] = [];
  checks.push(await checkConntrack());
  checks.push(await checkNflog(groups));
  checks.push(...checkSysctls());
  const kdrops = checkKernelDrops(config);
  const kernelSource = kdrops.some(
    (c) => c.id === 'denies.source' && c.status === 'ok' && !c.found.startsWith('nflog'),
  );
  for (const c of checkNflogRules(groups, collectNflogRules())) {
    // Without NFLOG rules, kernel drop events still report denies: not a failure then.
    checks.push(
      kernelSource && c.id === 'policy.nflog-rules' && c.status === 'fail'
        ? {
            ...c,
            status: 'warn',
            found: c.found.replace(
              'denied traffic will not be seen',
              'denies come from kernel drop events only, with the policy named where the data plane or the NetworkPolicy evaluator can',
            ),
          }
        : c,
    );
  }
  checks.push(...kdrops);
  const cw = config.sinks.cloudwatch;
  const region = cw ? resolveRegionFrom([['sinks.cloudwatch.region', cw.region]], env) : undefined;
  if (cw && !region) {
    // As the agent: no region is a configuration error, never a guessed one.
    checks.push(
      fail(
        'aws.region',
        'AWS region',
        AGENT_REGION_REQUIRED,
        'set sinks.cloudwatch.region (FLOWTRAIL_SINKS_CLOUDWATCH_REGION), or AWS_REGION in the DaemonSet',
      ),
    );
  } else if (cw && region) {
    checks.push(
      ...(await checkAws(
        {
          region: region.region,
          regionFrom: region.from,
          endpoint: cw.endpoint,
          logGroupName: cw.logGroupName ?? defaultLogGroupName(config.clusterName),
          logStreamName: cw.logStreamName ?? defaultLogStreamName(config.nodeName),
          eventsStreamName: defaultEventsStreamName(config.nodeName),
          metricsNamespace: config.metrics.namespace,
          clusterName: config.clusterName,
          nodeName: config.nodeName,
          writeTest: o.writeTest,
        },
        env,
      )),
    );
  } else {
    checks.push(skip('aws', 'CloudWatch', 'sinks.cloudwatch is not configured'));
  }
  if (config.endpoints.kubernetes) {
    // @kubernetes/client-node is large: loaded only when it is needed.
    const { checkKubernetes } = await import('./kubernetes.js');
    checks.push(
      ...(await checkKubernetes(config.endpoints.kubernetes.kubeconfig, config.nodeName)),
    );
  } else {
    checks.push(
      skip(
        'kubernetes',
        'Kubernetes API',
        config.endpoints.file
          ? `endpoints come from the file ${config.endpoints.file}`
          : 'no endpoint source configured',
      ),
    );
  }
  if (cw) checks.push(...checkSpool(config.spool.dir, config.spool.maxBytes));
  else checks.push(skip('spool', 'spool directory', 'only the CloudWatch sink spools'));
  return { ok: checks.every((c) => c.status !== 'fail'), checks };
}

const MARK = { ok: '✓', fail: '✗', warn: '!', skip: '-' } as const;

export function formatReport(r: DoctorReport): string {
  const lines: string[] = [];
  for (const c of r.checks) {
    lines.push(`${MARK[c.status]} ${c.title}: ${c.found}`);
    if (c.fix && c.status !== 'ok') lines.push(`    fix: ${c.fix}`);
  }
  const failed = r.checks.filter((c) => c.status === 'fail').length;
  lines.push(
    r.ok
      ? 'ready: every required check passed'
      : `not ready: ${failed} check${failed === 1 ? '' : 's'} failed`,
  );
  return `${lines.join('\n')}\n`;
}
