/**
 * The endpoint cache: who owned an IP address at a given time.
 *
 * Each IP keeps a short history of owners, each with the interval
 * [fromMs, toMs) it held the address. A pod that is deleted keeps its entry
 * for a grace period, so a flow that closes after the deletion, or that is
 * flushed after the IP was given to a new pod, is still attributed to the pod
 * that owned the IP when the traffic happened. Unknown addresses are
 * classified (net/pvt, net/aws, net/pub).
 */
import type { ContainerPort, PolicyNode, PolicyPod } from '../policy/types.js';
import { classifyAddress } from './classify.js';
import type { Endpoint, EndpointLookup, EndpointSpan } from './types.js';

export interface PodInfo {
  uid?: string;
  namespace: string;
  name: string;
  generateName?: string;
  ips: readonly string[];
  nodeName?: string;
  labels?: Readonly<Record<string, string>>;
  hostNetwork?: boolean;
  /** Succeeded/Failed pods no longer hold their IP. */
  phase?: string;
  /** Container ports (NetworkPolicy named ports resolve against them). */
  ports?: readonly ContainerPort[];
}

export interface NodeInfo {
  name: string;
  ips: readonly string[];
  labels?: Readonly<Record<string, string>>;
}

interface Owner {
  readonly key: string;
  readonly endpoint: Endpoint;
  readonly fromMs: number;
  toMs: number; // Infinity while current
}

export interface EndpointCacheOptions {
  nodeName: string;
  /** How long a departed owner stays attributable (default 5 min). */
  graceMs?: number;
  /** Owners kept per IP (bounds churn on one address). */
  maxHistoryPerIp?: number;
}

const NET: Record<string, Endpoint> = {};
function netEndpoint(ip: string): Endpoint {
  const cls = classifyAddress(ip);
  let e = NET[cls];
  if (!e) {
    e = { type: 'net', namespace: '-', name: cls, aggregatedName: cls, labels: {}, local: false };
    NET[cls] = e;
  }
  return e;
}

/**
 * The name a record shows at aggregation kind 2: generateName + '*' when the
 * pod has one; otherwise the name with its replica suffix cut — Deployment
 * pods `web-7d98456675-x2x7q` → `web-7d98456675-*`, StatefulSet pods
 * `db-0` → `db-*`; a name without such a suffix stays as it is.
 */
export function aggregatedName(name: string, generateName?: string): string {
  if (generateName) return `${generateName}*`;
  const deploy = /^(.*-[a-z0-9]{6,10}-)[a-z0-9]{5}$/.exec(name);
  if (deploy) return `${deploy[1]}*`;
  const ordinal = /^(.*-)\d+$/.exec(name);
  if (ordinal) return `${ordinal[1]}*`;
  return name;
}

export class EndpointCache implements EndpointLookup {
  private readonly byIp = new Map<string, Owner[]>();
  private readonly ipsByKey = new Map<string, string[]>();
  private readonly graceMs: number;
  private readonly maxHistory: number;
  private syncedFlag = false;
  private changes = 0;
  /** What policies need of a pod beyond the endpoint (kept off Endpoint: the flow table's hot path reads it). */
  private readonly podExtras = new WeakMap<
    Endpoint,
    { ports: readonly ContainerPort[] | undefined; nodeName: string | undefined }
  >();

  /** Bumped by every change of owners or metadata (EndpointLookup.version). */
  get version(): number {
    return this.changes;
  }

  constructor(private readonly options: EndpointCacheOptions) {
    this.graceMs = options.graceMs ?? 5 * 60_000;
    this.maxHistory = options.maxHistoryPerIp ?? 8;
  }

  get synced(): boolean {
    return this.syncedFlag;
  }

  markSynced(): void {
    this.syncedFlag = true;
  }

  get size(): number {
    return this.ipsByKey.size;
  }

  upsertPod(pod: PodInfo, timeMs: number): void {
    const key = `pod/${pod.uid ?? `${pod.namespace}/${pod.name}`}`;
    if (pod.hostNetwork || pod.phase === 'Succeeded' || pod.phase === 'Failed') {
      // A host-network pod's IP is its node's; a finished pod holds no IP.
      this.release(key, timeMs);
      return;
    }
    const endpoint: Endpoint = {
      type: 'wep',
      namespace: pod.namespace,
      name: pod.name,
      aggregatedName: aggregatedName(pod.name, pod.generateName),
      labels: { ...(pod.labels ?? {}) },
      local: pod.nodeName === this.options.nodeName,
    };
    this.podExtras.set(endpoint, { ports: pod.ports, nodeName: pod.nodeName });
    this.assign(key, endpoint, pod.ips, timeMs);
  }

  deletePod(pod: Pick<PodInfo, 'uid' | 'namespace' | 'name'>, timeMs: number): void {
    this.release(`pod/${pod.uid ?? `${pod.namespace}/${pod.name}`}`, timeMs);
  }

  upsertNode(node: NodeInfo, timeMs: number): void {
    const endpoint: Endpoint = {
      type: 'hep',
      namespace: '-',
      name: node.name,
      aggregatedName: node.name,
      labels: { ...(node.labels ?? {}) },
      local: node.name === this.options.nodeName,
    };
    this.assign(`node/${node.name}`, endpoint, node.ips, timeMs);
  }

  deleteNode(name: string, timeMs: number): void {
    this.release(`node/${name}`, timeMs);
  }

  /** Replaces the whole state (a relist or a file reload): what vanished ends at timeMs. */
  replaceAll(
    snapshot: { pods: readonly PodInfo[]; nodes: readonly NodeInfo[] },
    timeMs: number,
  ): void {
    const keep = new Set<string>();
    for (const n of snapshot.nodes) {
      keep.add(`node/${n.name}`);
      this.upsertNode(n, timeMs);
    }
    for (const p of snapshot.pods) {
      keep.add(`pod/${p.uid ?? `${p.namespace}/${p.name}`}`);
      this.upsertPod(p, timeMs);
    }
    for (const key of [...this.ipsByKey.keys()]) if (!keep.has(key)) this.release(key, timeMs);
  }

  private assign(key: string, endpoint: Endpoint, ips: readonly string[], timeMs: number): void {
    this.changes++;
    const previous = this.ipsByKey.get(key) ?? [];
    for (const ip of previous) if (!ips.includes(ip)) this.endOwnership(ip, key, timeMs);
    for (const ip of ips) {
      const owners = this.byIp.get(ip) ?? [];
      const current = owners.at(-1);
      if (current && current.key === key && current.toMs === Number.POSITIVE_INFINITY) {
        // Same owner: refresh metadata (labels may change) without a new interval.
        owners[owners.length - 1] = { ...current, endpoint };
        continue;
      }
      // Another current owner loses the address now (IP reused).
      if (current && current.toMs === Number.POSITIVE_INFINITY) current.toMs = timeMs;
      owners.push({ key, endpoint, fromMs: timeMs, toMs: Number.POSITIVE_INFINITY });
      if (owners.length > this.maxHistory) owners.splice(0, owners.length - this.maxHistory);
      this.byIp.set(ip, owners);
    }
    this.ipsByKey.set(key, [...ips]);
  }

  private release(key: string, timeMs: number): void {
    for (const ip of this.ipsByKey.get(key) ?? []) this.endOwnership(ip, key, timeMs);
    this.ipsByKey.delete(key);
  }

  private endOwnership(ip: string, key: string, timeMs: number): void {
    this.changes++;
    const owners = this.byIp.get(ip);
    if (!owners) return;
    for (const o of owners)
      if (o.key === key && o.toMs === Number.POSITIVE_INFINITY) o.toMs = timeMs;
  }

  /** Drops owners whose grace period has passed. */
  prune(nowMs: number): void {
    for (const [ip, owners] of this.byIp) {
      const kept = owners.filter(
        (o) => o.toMs === Number.POSITIVE_INFINITY || nowMs - o.toMs <= this.graceMs,
      );
      if (kept.length === owners.length) continue;
      this.changes++;
      if (kept.length === 0) this.byIp.delete(ip);
      else this.byIp.set(ip, kept);
    }
  }

  /**
   * The pod that owned `ip` at `timeMs`, as NetworkPolicies see it (labels,
   * container ports, node), or undefined when the owner is no pod.
   */
  policyPod(ip: string, timeMs: number): PolicyPod | undefined {
    const e = this.lookup(ip, timeMs);
    if (e.type !== 'wep') return undefined;
    const extras = this.podExtras.get(e);
    return {
      namespace: e.namespace,
      name: e.name,
      labels: e.labels,
      ips: [ip],
      ...(extras?.ports ? { ports: extras.ports } : {}),
      ...(extras?.nodeName ? { nodeName: extras.nodeName } : {}),
    };
  }

  /** The nodes and their current addresses (NetworkPolicy's own-node exception). */
  policyNodes(): PolicyNode[] {
    const out: PolicyNode[] = [];
    for (const [key, ips] of this.ipsByKey)
      if (key.startsWith('node/')) out.push({ name: key.slice(5), ips });
    return out;
  }

  lookup(ip: string, timeMs: number): Endpoint {
    const owners = this.byIp.get(ip);
    if (owners) {
      // Newest first: the owner whose interval contains the time.
      for (let i = owners.length - 1; i >= 0; i--) {
        const o = owners[i]!;
        if (timeMs >= o.fromMs && timeMs < o.toMs) return o.endpoint;
      }
      // Traffic before the first known owner (e.g. a pod seen late): the earliest owner.
      const first = owners[0]!;
      if (timeMs < first.fromMs) return first.endpoint;
      // Between owners or after the last left: the one that left most recently, within the grace period.
      let recent: Owner | undefined;
      for (const o of owners) {
        if (
          o.toMs <= timeMs &&
          timeMs - o.toMs <= this.graceMs &&
          (!recent || o.toMs > recent.toMs)
        )
          recent = o;
      }
      if (recent) return recent.endpoint;
    }
    return netEndpoint(ip);
  }

  /**
   * lookup(), and the span of times over which its answer for `ip` holds
   * while the version stays the same: all time for an address nobody owns;
   * the owner's interval when the answer is an owner whose interval contains
   * the time and no newer owner's overlaps it (newer owners are asked
   * first); otherwise only this instant (an empty span: nothing to cache).
   */
  lookupSpan(ip: string, timeMs: number, out: EndpointSpan): void {
    out.endpoint = this.lookup(ip, timeMs);
    out.fromMs = timeMs;
    out.toMs = timeMs;
    const owners = this.byIp.get(ip);
    if (owners === undefined) {
      out.fromMs = Number.NEGATIVE_INFINITY;
      out.toMs = Number.POSITIVE_INFINITY;
      return;
    }
    for (let i = owners.length - 1; i >= 0; i--) {
      const o = owners[i]!;
      if (timeMs < o.fromMs || timeMs >= o.toMs) continue;
      for (let k = i + 1; k < owners.length; k++) {
        if (owners[k]!.fromMs < o.toMs && owners[k]!.toMs > o.fromMs) return;
      }
      out.fromMs = o.fromMs;
      out.toMs = o.toMs;
      return;
    }
  }
}
