/**
 * The deploy/ manifests and templates, parsed and checked for the fields
 * that matter for security and operation: least privilege in the DaemonSet
 * and the IAM policy, the config contract in the ConfigMap, and the
 * CloudFormation template staying in step with `flowtrail setup` and the
 * query pack.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { configSchema } from '../../src/config.js';
import { QUERY_PACK, queryText } from '../../src/queries/pack.js';
import { denyPattern, desiredResources } from '../../src/setup/plan.js';
import { underCI } from '../harness/env.js';
import { cfnTags } from '../helpers/cfn-yaml.js';

const root = new URL('../../deploy/', import.meta.url).pathname;
const read = (p: string) => readFileSync(`${root}${p}`, 'utf8');

// biome-ignore lint/suspicious/noExplicitAny: manifests are untyped documents
type Doc = any;

function docs(path: string): Doc[] {
  return parseAllDocuments(read(path)).map((d) => {
    if (d.errors.length > 0) throw new Error(`${path}: ${d.errors[0]!.message}`);
    return d.toJS();
  });
}

const k8sFiles = [
  'namespace.yaml',
  'serviceaccount.yaml',
  'rbac.yaml',
  'configmap.yaml',
  'daemonset.yaml',
];
const all = k8sFiles.flatMap((f) => docs(`kubernetes/${f}`));
const byKind = (kind: string) => all.filter((d) => d.kind === kind);
const ds = byKind('DaemonSet')[0];
const pod = ds.spec.template.spec;
const agent = pod.containers.find((c: Doc) => c.name === 'agent');
const configText: string = byKind('ConfigMap')[0].data['config.yaml'];

describe('deploy/kubernetes', () => {
  it('every manifest parses and the kustomization lists each of them', () => {
    for (const d of all) expect(d.apiVersion && d.kind && d.metadata?.name).toBeTruthy();
    const kust = docs('kubernetes/kustomization.yaml')[0];
    expect([...kust.resources].sort()).toEqual([...k8sFiles].sort());
  });

  it('the agent runs with the heap flags the soak measured it with', async () => {
    const { AGENT_NODE_FLAGS } = await import('../../src/soak/run.js');
    const env = agent.env.find((e: Doc) => e.name === 'NODE_OPTIONS');
    expect(env.value.split(' ')).toEqual(AGENT_NODE_FLAGS);
  });

  it('the agent container drops every capability but NET_ADMIN and cannot escalate', () => {
    const sc = agent.securityContext;
    expect(sc.capabilities).toEqual({ drop: ['ALL'], add: ['NET_ADMIN'] });
    expect(sc.privileged).toBe(false);
    expect(sc.allowPrivilegeEscalation).toBe(false);
    expect(sc.readOnlyRootFilesystem).toBe(true);
    expect(sc.seccompProfile).toEqual({ type: 'RuntimeDefault' });
    expect(pod.securityContext.seccompProfile).toEqual({ type: 'RuntimeDefault' });
    // UID 0 by choice (no ambient capabilities in Kubernetes): stated, not defaulted.
    expect(sc.runAsUser).toBe(0);
    expect(sc.runAsNonRoot).toBe(false);
  });

  it('only the optional sysctl init container is privileged, and it only writes the two conntrack sysctls', () => {
    const privileged = [...pod.initContainers, ...pod.containers].filter(
      (c: Doc) => c.securityContext?.privileged,
    );
    expect(privileged.map((c: Doc) => c.name)).toEqual(['sysctls']);
    const script: string = privileged[0].command.join(' ');
    expect(script.match(/\/proc\/sys\/[\w/]+/g)).toEqual([
      '/proc/sys/net/netfilter/nf_conntrack_acct',
      '/proc/sys/net/netfilter/nf_conntrack_timestamp',
    ]);
  });

  it('the pod runs on every node but Fargate, in the host network, as a node-critical pod', () => {
    expect(pod.hostNetwork).toBe(true);
    expect(pod.dnsPolicy).toBe('ClusterFirstWithHostNet');
    expect(pod.priorityClassName).toBe('system-node-critical');
    expect(pod.tolerations).toEqual([{ operator: 'Exists' }]);
    const exprs =
      pod.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]
        .matchExpressions;
    expect(exprs).toContainEqual({
      key: 'eks.amazonaws.com/compute-type',
      operator: 'NotIn',
      values: ['fargate'],
    });
    expect(ds.spec.updateStrategy).toEqual({
      type: 'RollingUpdate',
      rollingUpdate: { maxUnavailable: '10%' },
    });
  });

  it('the node name comes from the downward API and the kubelet probes /healthz and /readyz on the loopback the agent listens on', () => {
    for (const name of ['NODE_NAME', 'FLOWTRAIL_NODE_NAME']) {
      expect(agent.env.find((e: Doc) => e.name === name).valueFrom).toEqual({
        fieldRef: { fieldPath: 'spec.nodeName' },
      });
    }
    const [host, port] = parse(configText).http.listen.split(':');
    expect(agent.livenessProbe.httpGet).toEqual({ host, path: '/healthz', port: Number(port) });
    expect(agent.readinessProbe.httpGet).toEqual({ host, path: '/readyz', port: Number(port) });
    // Nothing to scrape on the node's address by default: no scrape annotations.
    const ann = ds.spec.template.metadata.annotations;
    expect(Object.keys(ann).filter((k) => k.startsWith('prometheus.io/'))).toEqual([]);
    expect(agent.resources.requests.cpu && agent.resources.requests.memory).toBeTruthy();
    expect(agent.resources.limits.memory).toBeTruthy();
  });

  it('with hostNetwork, the agent listens on the node loopback only, not on an address every pod can reach', () => {
    const listen: string = parse(configText).http.listen;
    const host = listen.slice(0, listen.lastIndexOf(':')).replace(/^\[|\]$/g, '');
    expect(pod.hostNetwork).toBe(true);
    expect(['127.0.0.1', '::1']).toContain(host);
  });

  it('the spool is a hostPath at /var/lib/flowtrail and the config says so', () => {
    const spool = pod.volumes.find((v: Doc) => v.name === 'spool');
    expect(spool.hostPath.path).toBe('/var/lib/flowtrail');
    const mount = agent.volumeMounts.find((m: Doc) => m.name === 'spool');
    expect(mount.mountPath).toBe('/var/lib/flowtrail');
    expect(parse(configText).spool.dir.startsWith('/var/lib/flowtrail/')).toBe(true);
  });

  it('checksum/config is the sha256 of the ConfigMap config (rolls the pods on change)', () => {
    const sum = createHash('sha256').update(configText).digest('hex');
    expect(ds.spec.template.metadata.annotations['checksum/config']).toBe(sum);
  });

  it('the ConfigMap config is valid agent config once the downward API gives nodeName', () => {
    const result = configSchema.safeParse({
      ...parse(configText),
      nodeName: 'ip-10-0-0-1.ec2.internal',
    });
    expect(result.success ? [] : result.error.issues).toEqual([]);
    expect(parse(configText).http.listen).toBe('127.0.0.1:9099');
  });

  it('the service account carries the IRSA role annotation and RBAC is read-only on pods, nodes, namespaces and networkpolicies', () => {
    const sa = byKind('ServiceAccount')[0];
    expect(sa.metadata.annotations['eks.amazonaws.com/role-arn']).toMatch(
      /^arn:aws:iam::\d{12}:role\//,
    );
    expect(pod.serviceAccountName).toBe(sa.metadata.name);
    expect(byKind('ClusterRole')[0].rules).toEqual([
      { apiGroups: [''], resources: ['pods', 'nodes'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['namespaces'], verbs: ['list', 'watch'] },
      {
        apiGroups: ['networking.k8s.io'],
        resources: ['networkpolicies'],
        verbs: ['list', 'watch'],
      },
    ]);
    const binding = byKind('ClusterRoleBinding')[0];
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'flowtrail', namespace: 'flowtrail' },
    ]);
  });
});

// `kubectl apply --dry-run=client` needs an API server for discovery and
// OpenAPI (checked here: it fails offline), so the offline check is
// `kubectl kustomize`, which renders the kustomization without a cluster.
function hasKubectl(): boolean {
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const skipKubectl = !underCI && !hasKubectl();
if (skipKubectl)
  console.warn(
    'kubectl kustomize check skipped: kubectl not installed (apt-get install kubernetes-client)',
  );

describe.skipIf(skipKubectl)('kubectl kustomize deploy/kubernetes', () => {
  it('renders every object into the flowtrail namespace with the image set', () => {
    const out = execFileSync('kubectl', ['kustomize', `${root}kubernetes`], { encoding: 'utf8' });
    const rendered = parseAllDocuments(out).map((d) => d.toJS() as Doc);
    expect(rendered.map((d) => d.kind).sort()).toEqual(
      [
        'ClusterRole',
        'ClusterRoleBinding',
        'ConfigMap',
        'DaemonSet',
        'Namespace',
        'ServiceAccount',
      ].sort(),
    );
    for (const d of rendered)
      if (!d.kind.startsWith('Cluster') && d.kind !== 'Namespace')
        expect(d.metadata.namespace).toBe('flowtrail');
    const images = rendered
      .find((d) => d.kind === 'DaemonSet')
      .spec.template.spec.containers.map((c: Doc) => c.image);
    expect(images).toEqual(['ghcr.io/flowtrail/flowtrail:0.1.0']);
  });

  it('components/metrics-on-pod-ip: listens on the pod IP, probes it, and asks Prometheus to scrape it', () => {
    const overlay = mkdtempSync(join(tmpdir(), 'ft-overlay-'));
    writeFileSync(
      join(overlay, 'kustomization.yaml'),
      // kustomize takes relative paths only.
      `resources: [${relative(overlay, `${root}kubernetes`)}]\ncomponents: [${relative(overlay, `${root}kubernetes/components/metrics-on-pod-ip`)}]\n`,
    );
    const out = execFileSync('kubectl', ['kustomize', overlay], { encoding: 'utf8' });
    const rendered = parseAllDocuments(out).map((d) => d.toJS() as Doc);
    const tmpl = rendered.find((d) => d.kind === 'DaemonSet').spec.template;
    const c = tmpl.spec.containers.find((x: Doc) => x.name === 'agent');
    const names = c.env.map((e: Doc) => e.name);
    // POD_IP before the variable that expands it.
    expect(names.indexOf('POD_IP')).toBeLessThan(names.indexOf('FLOWTRAIL_HTTP_LISTEN'));
    expect(c.env.find((e: Doc) => e.name === 'POD_IP').valueFrom).toEqual({
      fieldRef: { fieldPath: 'status.podIP' },
    });
    expect(c.env.find((e: Doc) => e.name === 'FLOWTRAIL_HTTP_LISTEN').value).toBe('$(POD_IP):9099');
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 9099 });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 9099 });
    expect(tmpl.metadata.annotations).toMatchObject({
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': '9099',
    });
    // The expanded value is valid config.
    expect(
      configSchema.safeParse({
        ...parse(configText),
        nodeName: 'n',
        http: { listen: '10.0.3.7:9099' },
      }).success,
    ).toBe(true);
  });
});

describe('deploy/aws/cloudformation.yaml', () => {
  const t = parse(read('aws/cloudformation.yaml'), { customTags: cfnTags() });
  const res = t.Resources;

  it('creates the log group flowtrail-flowlogs-<cluster> with retention', () => {
    expect(res.FlowLogGroup.Type).toBe('AWS::Logs::LogGroup');
    expect(res.FlowLogGroup.Properties.LogGroupName).toEqual({
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation Sub string
      'Fn::Sub': 'flowtrail-flowlogs-${ClusterName}',
    });
    expect(res.FlowLogGroup.Properties.RetentionInDays).toEqual({ Ref: 'RetentionInDays' });
  });

  it('has the same denied-packet metric filters as flowtrail setup', () => {
    const setup = desiredResources({
      clusterName: 'c1',
      logGroupName: 'g',
      retentionDays: 7,
      tags: {},
      namespace: 'flowtrail',
      deniedThreshold: 100,
    }).metricFilters;
    const cfn = Object.values(res as Record<string, Doc>).filter(
      (r) => r.Type === 'AWS::Logs::MetricFilter',
    );
    expect(cfn).toHaveLength(setup.length);
    for (const f of setup) {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation Sub string
      const name = f.filterName.replace('c1', '${ClusterName}');
      const r = cfn.find((c) => c.Properties.FilterName['Fn::Sub'] === name);
      expect(r?.Properties.FilterPattern).toBe(f.filterPattern);
      expect(r?.Properties.MetricTransformations).toEqual([
        {
          MetricName: f.metricName,
          MetricNamespace: { Ref: 'MetricNamespace' },
          MetricValue: f.metricValue,
          DefaultValue: 0,
        },
      ]);
    }
    expect(res.DeniedIngressMetricFilter.Properties.FilterPattern).toBe(denyPattern('dst'));
    expect(res.DeniedEgressWithPoliciesMetricFilter.Properties.FilterPattern).toBe(
      denyPattern('src', 27),
    );
  });

  it('alarms on denied packets and on missing or unhealthy nodes (missing data breaching)', () => {
    expect(res.DeniedPacketsAlarm.Properties).toMatchObject({
      MetricName: 'DeniedPackets',
      Statistic: 'Sum',
      TreatMissingData: 'notBreaching',
    });
    expect(res.NodeUnhealthyAlarm.Properties).toMatchObject({
      MetricName: 'NodeHealthy',
      Statistic: 'Minimum',
      TreatMissingData: 'breaching',
    });
  });

  it('saves every pack query with the pack text', () => {
    const saved = Object.values(res as Record<string, Doc>).filter(
      (r) => r.Type === 'AWS::Logs::QueryDefinition',
    );
    expect(saved.map((r) => r.Properties.Name).sort()).toEqual(
      QUERY_PACK.map((q) => `flowtrail/${q.name}`).sort(),
    );
    for (const q of QUERY_PACK) {
      const r = saved.find((s) => s.Properties.Name === `flowtrail/${q.name}`);
      expect(r.Properties.QueryString).toBe(queryText(q));
    }
  });

  it('subscribes the Elasticsearch function only when its ARN is given, with an invoke permission for logs', () => {
    expect(res.ElasticsearchSubscription.Condition).toBe('StandardWithElasticsearch');
    expect(res.ElasticsearchInvokePermission.Properties.Principal).toBe('logs.amazonaws.com');
    expect(t.Conditions.HasElasticsearch).toEqual({
      'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'ElasticsearchFunctionArn' }, ''] }],
    });
  });
});
