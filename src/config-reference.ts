/**
 * docs/configuration.md, rendered from the config schema (src/config.ts) so
 * that keys, environment variables and defaults cannot drift from the code:
 * `npm run docs:config` writes it, test/unit/config-reference.test.ts
 * compares. A key without a description here fails that test.
 */
import {
  CONFIG_LEAVES,
  envName,
  INHERITED_DEFAULTS,
  RETENTION_DAYS,
  validateConfig,
} from './config.js';

/** What each key does, by its dotted path. */
export const CONFIG_DESCRIPTIONS: Readonly<Record<string, string>> = {
  clusterName:
    'The cluster: names the log group (`flowtrail-flowlogs-<clusterName>`) and the ClusterName dimension. Required. Letters, digits, `.` `_` `-`, at most 100.',
  nodeName:
    'This node: names the log stream (`<nodeName>_Flowlogs`) and the NodeName dimension. Required; the DaemonSet sets it from `spec.nodeName`.',
  'endpoints.file':
    'A YAML file of pods and nodes (docs/architecture.md, "Contracts"), reloaded when it changes: for the demo, tests and hosts without Kubernetes. Not together with `endpoints.kubernetes`.',
  'endpoints.kubernetes.kubeconfig':
    'Read pods and nodes from the Kubernetes API (`endpoints: { kubernetes: {} }` in-cluster); this key points at a kubeconfig file instead of the in-cluster or default one.',
  'endpoints.graceSeconds':
    "How long an IP stays attributed to a pod after the pod is gone or the IP moved, so that late flows keep their pod's name (0-86400).",
  'flowLogs.flushIntervalSeconds':
    'Seconds per flush interval: one record per aggregated flow per interval (1-86400).',
  'flowLogs.aggregationKindForAllowed':
    'Aggregation of allowed flows: 0 = 5-tuple, 1 = without source port, 2 = also pod names by prefix and no IPs (docs/format.md).',
  'flowLogs.aggregationKindForDenied': 'Aggregation of denied flows: 0, 1 or 2, as above.',
  'flowLogs.includeLabels': 'Write pod labels in srcLabels/dstLabels (else `-`).',
  'flowLogs.includePolicies':
    'Write the 27-field variant, with the aggregated names and the policies that decided (docs/format.md); `false`: the 24 fields, about a fifth fewer bytes (docs/operations.md).',
  'flowLogs.enabledForAllowed': '`false`: write no records of allowed flows.',
  'flowLogs.enabledForDenied': '`false`: write no records of denied flows.',
  'flowLogs.maxTrackedFlows':
    'Connections the flow table tracks at most; more are shed and counted as `FlowsShed` (1000-10000000). Memory: docs/deployment.md.',
  'flowLogs.includeNamespaces':
    'Only records whose reporting pod is in one of these namespaces (`*` is a wildcard); empty: all. Env/`--set`: comma-separated.',
  'flowLogs.excludeNamespaces':
    'Drop records whose reporting pod is in one of these namespaces; wins over includeNamespaces.',
  'flowLogs.maxRecordsPerFlush':
    'At most this many records per interval, the rest folded into overflow records (0: no cap).',
  'nflog.ingressGroup':
    'NFLOG group of ingress verdicts (the destination reports), 0-65535; not the same as egressGroup.',
  'nflog.egressGroup': 'NFLOG group of egress verdicts (the source reports), 0-65535.',
  'nflog.receiveBufferBytes':
    'Receive buffer of the NFLOG socket (SO_RCVBUFFORCE), 65536 to 1 GiB; raise it when `NflogOverrun` appears.',
  'nflog.tickMs':
    'Milliseconds the NFLOG socket waits after it becomes readable before draining it (1-1000).',
  'denies.source':
    'Where denied packets come from: `nflog` (NFLOG rule prefixes), `kernel` (kernel drop events; NFLOG deny verdicts ignored) or `both` (matched, counted once). Absent: `both` where the kernel drop program loads, else `nflog` (`flowtrail doctor` says which and why).',
  'denies.matchWindowMs':
    'With `both`: how long a kernel drop event waits for the NFLOG copy of its packet before it counts as a kernel deny (10-60000).',
  'denies.namePolicies':
    'Name the NetworkPolicy behind kernel denies with the evaluator (from the informers with `endpoints.kubernetes`, from `denies.networkPoliciesFile` with `endpoints.file`).',
  'denies.networkPoliciesFile':
    'NetworkPolicy manifests (YAML) for naming kernel denies where endpoints come from a file; read at start.',
  'denies.ringBufferBytes':
    'Size of the BPF ring buffer of kernel drop events, a power of two from 4096 to 1 GiB; losses count as `flowtrail_kernel_drops_lost_total`.',
  'conntrack.receiveBufferBytes':
    'Receive buffer of the conntrack netlink sockets (SO_RCVBUFFORCE), 65536 to 1 GiB; raise it when `ConntrackOverrun` appears.',
  'conntrack.tickMs':
    'Milliseconds to wait after the conntrack socket (and the kernel drop ring buffer) becomes readable before draining it, so that wakeups are coalesced (1-1000).',
  'conntrack.subscribeUpdates':
    'Also subscribe to conntrack UPDATE events (counts come from dumps either way; for debugging).',
  'sinks.cloudwatch.region':
    'AWS region of the log group; default AWS_REGION, then AWS_DEFAULT_REGION; with none of them the agent stops (exit 2) rather than guess. The section `sinks.cloudwatch` turns CloudWatch on.',
  'sinks.cloudwatch.endpoint': 'CloudWatch endpoint URL, for emulators.',
  'sinks.cloudwatch.logGroupName': 'Default `flowtrail-flowlogs-<clusterName>`.',
  'sinks.cloudwatch.logStreamName': 'Default `<nodeName>_Flowlogs`.',
  'sinks.cloudwatch.retentionDays': `Retention of the log group, one of ${RETENTION_DAYS.join(', ')}.`,
  'sinks.cloudwatch.tags':
    'Tags of the log group (`flowtrail:cluster` is always set). Env/`--set`: `k=v,k2=v2`.',
  'sinks.file.path':
    'Also write records to this file, one a line. The section turns the file sink on.',
  'sinks.file.maxBytes': 'Rotate the file past this size (to `<path>.1` …).',
  'sinks.file.maxFiles': 'Rotated files kept (1-1000).',
  'sinks.stdout':
    'Also write records to stdout, one a line (for log routers reading container output).',
  'metrics.enabled':
    '`false`: push no CloudWatch metrics (DeniedPackets, NodeHealthy, LostEvents).',
  'metrics.droppedPackets':
    'Also push DroppedPackets per drop reason: kernel drops that are not policy denies (one metric series per reason).',
  'metrics.pushIntervalSeconds': 'Seconds between metric pushes (1-3600).',
  'metrics.namespace': 'CloudWatch metric namespace (the IAM policy conditions on it).',
  'spool.dir':
    'Directory of the disk spool and the restart baselines; the DaemonSet uses a hostPath (docs/operations.md).',
  'spool.maxBytes':
    'Bound of the spool; when full the oldest records are dropped and counted (`SpoolFull`).',
  'pricing.ingestStandardPerGb':
    'USD per GB ingested, standard log class, for `flowtrail estimate` (not fetched).',
  'pricing.ingestInfrequentAccessPerGb': 'USD per GB ingested, infrequent-access class.',
  'http.listen': '`host:port` of /healthz, /readyz and /metrics; `""` turns the server off.',
  'log.level':
    'trace, debug, info, warn, error, fatal or silent (also FLOWTRAIL_LOG_LEVEL). Logs are JSON lines on stderr.',
};

function shown(value: unknown, path: string): string {
  const from = INHERITED_DEFAULTS[path];
  if (from !== undefined) return `\`${from}\``;
  if (value === undefined) return '—';
  return `\`${JSON.stringify(value)}\``;
}

export function renderConfigMarkdown(): string {
  // Every default, with the optional sections present so theirs show too.
  const defaults = validateConfig({
    clusterName: 'x',
    nodeName: 'y',
    sinks: { cloudwatch: {}, file: { path: 'p' } },
  }) as unknown as Record<string, unknown>;
  const out: string[] = [
    '# Configuration',
    '',
    '<!-- Generated from src/config.ts and src/config-reference.ts by `npm run docs:config`; edit those, not this file. -->',
    '',
    'The agent reads one YAML file (`flowtrail agent --config FILE`, or',
    '`FLOWTRAIL_CONFIG`), then `FLOWTRAIL_*` environment variables, then flags,',
    'each layer overriding the one before. Every key below can be set in all',
    'three: in the file by its path, as the variable named beside it, and as',
    '`--set path=value`. A bad value or an unknown key stops the agent with exit',
    'code 2 and a line naming the key, the value and what is expected;',
    '`flowtrail agent --print-config` prints the result without starting.',
    '',
    'The smallest file:',
    '',
    '```yaml',
    'clusterName: prod',
    'nodeName: ip-10-0-0-1.ec2.internal   # the DaemonSet sets FLOWTRAIL_NODE_NAME instead',
    'endpoints: { kubernetes: {} }',
    'sinks:',
    '  cloudwatch: {}                      # region from AWS_REGION',
    '```',
    '',
    'Flags of `flowtrail agent`: `--cluster` (clusterName), `--node` (nodeName),',
    '`--file` (sinks.file.path), `--stdout` (sinks.stdout), `--flush-interval`',
    '(flowLogs.flushIntervalSeconds), `--set key=value` (any key). The other',
    'commands that read this file (`setup`, `report`, `query`, `estimate`,',
    '`doctor`) take it as `-c/--config` too; all but `doctor` do without nodeName.',
    '',
    'The deployed file is `deploy/kubernetes/config.yaml` (docs/deployment.md).',
    '',
  ];
  let section = '';
  for (const leaf of CONFIG_LEAVES) {
    const path = leaf.path.join('.');
    const top = leaf.path.length > 1 ? leaf.path[0]! : 'top level';
    if (top !== section) {
      section = top;
      out.push(
        `## ${top === 'top level' ? 'Top level' : `\`${top}\``}`,
        '',
        '| key | variable | default | meaning |',
        '|---|---|---|---|',
      );
    }
    let value: unknown = defaults;
    for (const k of leaf.path) value = (value as Record<string, unknown> | undefined)?.[k];
    // The placeholder that made the file section show its defaults is no default.
    if (path === 'sinks.file.path') value = undefined;
    const required = path === 'clusterName' || path === 'nodeName';
    const description = CONFIG_DESCRIPTIONS[path] ?? '';
    out.push(
      `| \`${path}\` | \`${envName(leaf.path)}\` | ${required ? 'required' : shown(value, path)} | ${description} |`,
    );
    const next = CONFIG_LEAVES[CONFIG_LEAVES.indexOf(leaf) + 1];
    if (!next || (next.path.length > 1 ? next.path[0] : 'top level') !== section) out.push('');
  }
  return out.join('\n');
}
