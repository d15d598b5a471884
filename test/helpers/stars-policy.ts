/**
 * The stars scenario for policy tests: what a set of NetworkPolicies allows
 * among its pods and its internet address, and records shaped like the
 * demo's (a deny phase, then the allow-list).
 */
import { stringify } from 'yaml';
import type { Directory } from '../../src/advise/identity.js';
import { INTERNET_IP, STARS_PODS, TALKS } from '../../src/demo/stars.js';
import { formatLabels } from '../../src/format/codec.js';
import type { FlowRecord } from '../../src/format/record.js';
import { PolicyEvaluator } from '../../src/policy/evaluate.js';
import type { NetworkPolicy, PolicyPod } from '../../src/policy/types.js';

export const STARS_POLICY_PODS: PolicyPod[] = STARS_PODS.map((p) => ({
  namespace: p.namespace,
  name: p.name,
  labels: p.labels!,
  ips: [p.ip],
}));

/** Address → the stars key (`frontend` …, `internet`). */
export const STARS_KEY_OF_IP = new Map([
  ...STARS_PODS.map((p) => [p.ip, p.key] as const),
  [INTERNET_IP, 'internet'] as const,
]);

/** The talks the scenario allows, as `from>to:port`, sorted. */
export const STARS_ALLOW_LIST = TALKS.filter((t) => t.allowedBy)
  .map((t) => `${t.from}>${t.to}:${t.port}`)
  .sort();

/** Every `from>to:port` (TCP, a few ports) the policies allow between two different ends. */
export function starsAllowedSet(policies: readonly NetworkPolicy[]): string[] {
  const ev = new PolicyEvaluator({ namespaces: [], pods: STARS_POLICY_PODS, policies });
  const out: string[] = [];
  for (const [fromIp, from] of STARS_KEY_OF_IP)
    for (const [toIp, to] of STARS_KEY_OF_IP)
      for (const port of [22, 80, 443, 6379, 9001])
        if (from !== to && ev.evaluate({ src: fromIp, dst: toIp, proto: 6, dport: port }).allowed)
          out.push(`${from}>${to}:${port}`);
  return out.sort();
}

const podsByKey = new Map(STARS_PODS.map((p) => [p.key, p]));

/** One record as the agent writes it at kind 1 (names and IPs kept) or 2 (aggregated). */
export function starsRecord(
  from: string,
  to: string,
  port: number,
  action: 'allow' | 'deny',
  endTime: number,
  reporter: 'src' | 'dst',
  o: { labels: boolean; kind: 1 | 2 },
): FlowRecord {
  const s = podsByKey.get(from)!;
  const d = to === 'internet' ? undefined : podsByKey.get(to)!;
  const name = (p: typeof s) => (o.kind === 2 ? `${p.generateName}*` : p.name);
  return {
    startTime: endTime - 10,
    endTime,
    srcType: 'wep',
    srcNamespace: s.namespace,
    srcName: name(s),
    srcLabels: formatLabels(s.labels, o.labels),
    dstType: d ? 'wep' : 'net',
    dstNamespace: d ? d.namespace : '-',
    dstName: d ? name(d) : 'pub',
    dstLabels: d ? formatLabels(d.labels, o.labels) : '-',
    srcIP: o.kind === 2 ? '-' : s.ip,
    dstIP: o.kind === 2 ? '-' : d ? d.ip : INTERNET_IP,
    proto: 6,
    srcPort: '-',
    dstPort: port,
    numFlows: 2,
    numFlowsStarted: 2,
    numFlowsCompleted: 2,
    reporter,
    packetsIn: action === 'deny' ? 2 : 5,
    packetsOut: action === 'deny' ? 0 : 5,
    bytesIn: 120,
    bytesOut: 500,
    action,
  };
}

/** The demo's two phases: everything denied, then the allow-list in, client → backend still denied. */
export function starsRecords(o: { labels: boolean; kind: 1 | 2; at?: number }): FlowRecord[] {
  const at = o.at ?? 0;
  const out: FlowRecord[] = [];
  for (const t of TALKS) {
    out.push(
      starsRecord(t.from, t.to, t.port, 'deny', at + 1_000, t.to === 'internet' ? 'src' : 'dst', o),
    );
    const action = t.allowedBy ? 'allow' : 'deny';
    for (const reporter of t.to === 'internet' ? (['src'] as const) : (['src', 'dst'] as const))
      out.push(starsRecord(t.from, t.to, t.port, action, at + 2_000, reporter, o));
  }
  return out;
}

/** The stars pods as an endpoints directory (what `--endpoints` gives). */
export const STARS_DIRECTORY: Directory = {
  pods: STARS_PODS.map((p) => ({
    namespace: p.namespace,
    name: p.name,
    generateName: p.generateName,
    ips: [p.ip],
    labels: p.labels,
  })),
  namespaces: [],
  nodes: [],
};

/** STARS_DIRECTORY as an endpoints file (what `--endpoints FILE` reads). */
export function starsEndpointsYaml(): string {
  return stringify({
    pods: STARS_DIRECTORY.pods.map((p) => ({
      namespace: p.namespace,
      name: p.name,
      ip: p.ips[0],
      labels: p.labels,
    })),
  });
}
