/**
 * Who the two ends of a record are, as NetworkPolicies see them: for a pod,
 * its namespace, workload and labels; for anything else, an address (or,
 * when aggregation dropped it, the kind of address: net/pvt, net/pub,
 * net/aws, a node). Labels come from the record when the agent wrote them
 * (flowLogs.includeLabels), otherwise from a directory of pods and
 * namespaces (an endpoints file or the Kubernetes API), matched by address,
 * then name, then aggregated name (`web-7d98456675-*`), then workload.
 */
import type { PodInfo } from '../endpoints/cache.js';
import { aggregatedName } from '../endpoints/cache.js';
import type { FlowRecord } from '../format/record.js';
import type {
  ContainerPort,
  Labels,
  PolicyNamespace,
  PolicyNode,
  PolicyPod,
} from '../policy/types.js';
import { workloadOf } from '../report/graph.js';

/** Pods, namespaces and nodes known from outside the records. */
export interface Directory {
  readonly pods: readonly PodInfo[];
  readonly namespaces: readonly PolicyNamespace[];
  readonly nodes: readonly PolicyNode[];
}

/** The same workload names as the report's map (`web-7d98456675-x2x7q` → `web`, `db-0` → `db`). */
export { workloadOf } from '../report/graph.js';

/** Labels that differ between pods of one workload and must not select it. */
export const VOLATILE_LABELS = new Set([
  'pod-template-hash',
  'controller-revision-hash',
  'pod-template-generation',
  'statefulset.kubernetes.io/pod-name',
  'apps.kubernetes.io/pod-index',
  'batch.kubernetes.io/controller-uid',
  'controller-uid',
  'batch.kubernetes.io/job-completion-index',
]);

/** `[k=v,k2=v2]` as the record writes labels; `-` is none. */
export function parseRecordLabels(text: string): Record<string, string> {
  if (text === '-' || !text.startsWith('[') || !text.endsWith(']')) return {};
  const out: Record<string, string> = {};
  for (const pair of text.slice(1, -1).split(',')) {
    const eq = pair.indexOf('=');
    if (eq > 0) out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

export type End =
  | {
      readonly kind: 'pod';
      readonly namespace: string;
      readonly workload: string;
      /** What the record shows (`web-7d98456675-*` or a pod name). */
      readonly name: string;
      readonly labels: Labels;
      readonly ip: string | undefined;
      readonly ports: readonly ContainerPort[] | undefined;
    }
  | {
      readonly kind: 'address';
      /** net/pvt, net/pub, net/aws, or host/<node>. */
      readonly name: string;
      readonly ip: string | undefined;
    };

/** Stands in for an address aggregation dropped, when an ipBlock must be tested on it. */
export const STAND_IN_ADDRESS: Readonly<Record<string, string>> = {
  pvt: '10.255.255.254',
  pub: '192.0.2.1',
  aws: '169.254.169.254',
};

export class UnknownLabelsError extends Error {}

export class Identities {
  private readonly byIp = new Map<string, PodInfo>();
  private readonly byName = new Map<string, PodInfo>();
  private readonly byAggregate = new Map<string, PodInfo[]>();
  private readonly byWorkload = new Map<string, PodInfo[]>();
  private readonly nodeIps = new Map<string, readonly string[]>();

  /**
   * `labelsInRecords`: the agent wrote labels (includeLabels), so a record's
   * `-` means a pod without labels; otherwise labels come from `directory`.
   */
  constructor(
    private readonly directory: Directory | undefined,
    private readonly labelsInRecords: boolean,
  ) {
    for (const p of directory?.pods ?? []) {
      if (p.hostNetwork) continue;
      for (const ip of p.ips) this.byIp.set(ip, p);
      this.byName.set(`${p.namespace}/${p.name}`, p);
      const push = (m: Map<string, PodInfo[]>, k: string) => m.set(k, [...(m.get(k) ?? []), p]);
      push(this.byAggregate, `${p.namespace}/${aggregatedName(p.name, p.generateName)}`);
      push(this.byWorkload, `${p.namespace}/${workloadOf(p.name)}`);
    }
    for (const n of directory?.nodes ?? []) this.nodeIps.set(n.name, n.ips);
  }

  /** Whether labels in the records can be trusted without a directory. */
  static labelsWritten(records: readonly FlowRecord[]): boolean {
    return records.some((r) => r.srcLabels !== '-' || r.dstLabels !== '-');
  }

  namespaces(): readonly PolicyNamespace[] {
    return this.directory?.namespaces ?? [];
  }

  nodes(): readonly PolicyNode[] {
    return this.directory?.nodes ?? [];
  }

  /** One end of a record. Throws UnknownLabelsError when a pod's labels cannot be known. */
  end(r: FlowRecord, side: 'src' | 'dst'): End {
    const type = side === 'src' ? r.srcType : r.dstType;
    const namespace = side === 'src' ? r.srcNamespace : r.dstNamespace;
    const name = side === 'src' ? r.srcName : r.dstName;
    const ipText = side === 'src' ? r.srcIP : r.dstIP;
    const ip = ipText === '-' ? undefined : ipText;
    if (type !== 'wep') {
      const nodeIp = type === 'hep' ? this.nodeIps.get(name)?.[0] : undefined;
      return {
        kind: 'address',
        name: type === 'net' ? `net/${name}` : `host/${name}`,
        ip: ip ?? nodeIp,
      };
    }
    const matches = this.podsFor(namespace, name, ip);
    let labels: Labels;
    if (this.labelsInRecords) {
      labels = parseRecordLabels(side === 'src' ? r.srcLabels : r.dstLabels);
    } else if (matches.length > 0) {
      labels = matches.map((p) => p.labels ?? {}).reduce(intersect);
    } else {
      throw new UnknownLabelsError(
        `labels of ${namespace}/${name} are not known: the records carry none (flowLogs.includeLabels is off) and the ${this.directory ? 'directory has no such pod' : 'command was given no --endpoints file or --kubernetes'}`,
      );
    }
    const ports = matches.find((p) => p.ports)?.ports;
    return { kind: 'pod', namespace, workload: workloadOf(name), name, labels, ip, ports };
  }

  private podsFor(namespace: string, name: string, ip: string | undefined): PodInfo[] {
    const byIp = ip ? this.byIp.get(ip) : undefined;
    if (byIp && byIp.namespace === namespace) return [byIp];
    const exact = this.byName.get(`${namespace}/${name}`);
    if (exact) return [exact];
    return (
      this.byAggregate.get(`${namespace}/${name}`) ??
      this.byWorkload.get(`${namespace}/${workloadOf(name)}`) ??
      []
    );
  }
}

function intersect(a: Labels, b: Labels): Labels {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(a)) if (b[k] === v) out[k] = v;
  return out;
}

/** An end as the evaluator takes it: a pod, or an address (a stand-in when aggregation dropped it). */
export function evaluatorEnd(e: End): PolicyPod | string {
  if (e.kind === 'pod')
    return {
      namespace: e.namespace,
      // An aggregated name stands for several pods: no name, so no 'same pod' exception.
      ...(e.name.endsWith('-*') ? {} : { name: e.name }),
      labels: e.labels,
      ...(e.ip ? { ips: [e.ip] } : {}),
      ...(e.ports ? { ports: e.ports } : {}),
    };
  return e.ip ?? STAND_IN_ADDRESS[e.name.slice(4)] ?? STAND_IN_ADDRESS.pvt!;
}

/** A stable text for an end, for grouping and tables: `ns/workload`, `net/pub 1.2.3.4`, `host/node-1`. */
export function endLabel(e: End): string {
  if (e.kind === 'pod') return `${e.namespace}/${e.workload}`;
  return e.ip && e.name.startsWith('net/') ? `${e.name} ${e.ip}` : e.name;
}
