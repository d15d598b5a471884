/**
 * The NetworkPolicy verdict on a connection, as networking.k8s.io/v1
 * defines it. A pod is isolated for a direction iff some policy in its
 * namespace selects it and has that direction in its policyTypes; an
 * isolated pod accepts (ingress) or opens (egress) only the connections
 * that some rule of those policies allows, the union of them all.
 * Non-isolated pods and addresses that are no pod are unrestricted. A
 * connection from one pod to another needs both: egress at the source and
 * ingress at the destination. Two exceptions from the API docs: a pod
 * cannot block itself, and traffic between a pod and its own node is always
 * allowed. Connections are judged by their first packet; replies follow.
 *
 * For protocols other than TCP, UDP and SCTP the API leaves the behaviour
 * to the plugin; here, as in the common iptables-based plugins, isolation
 * applies to them, a rule without ports allows them, and a rule with ports
 * never does.
 */
import { compilePeers, type PeerPredicate, type PeerQuery } from './peers.js';
import { compilePorts, type PortPredicate } from './ports.js';
import { compileSelector, type LabelPredicate } from './selectors.js';
import type { ClusterState, Labels, NetworkPolicy, PolicyPod, PolicyType } from './types.js';

export type Direction = 'ingress' | 'egress';

export interface PolicyRef {
  readonly namespace: string;
  readonly name: string;
}

/** One rule of a policy: its index in the policy's `ingress` or `egress` list. */
export interface RuleRef extends PolicyRef {
  readonly rule: number;
}

export type SideReason =
  /** This end is not a pod: no policy applies here. */
  | 'not-a-pod'
  /** No policy selects the pod for this direction. */
  | 'not-isolated'
  /** A pod cannot block itself. */
  | 'same-pod'
  /** Traffic between a pod and its own node is always allowed. */
  | 'own-node'
  /** Isolated, and at least one rule allows (allowedBy). */
  | 'rule'
  /** Isolated, and no rule allows (isolatedBy names the policies). */
  | 'isolated';

export interface SideVerdict {
  readonly direction: Direction;
  readonly allowed: boolean;
  readonly reason: SideReason;
  /** The policies that select this end's pod for this direction, sorted by namespace and name. */
  readonly isolatedBy: readonly PolicyRef[];
  /** The rules that allow the connection here (reason 'rule'), sorted. */
  readonly allowedBy: readonly RuleRef[];
}

export interface FlowVerdict {
  /** Egress at the source and ingress at the destination both allow. */
  readonly allowed: boolean;
  /** Judged at the source. */
  readonly egress: SideVerdict;
  /** Judged at the destination. */
  readonly ingress: SideVerdict;
}

/** An end of a connection: an address (looked up among the cluster's pods) or a pod itself. */
export type FlowEnd = string | PolicyPod;

export interface Flow {
  readonly src: FlowEnd;
  readonly dst: FlowEnd;
  /** IANA protocol number (6 TCP, 17 UDP, 132 SCTP, 1 ICMP …). */
  readonly proto: number;
  /** Destination port; absent for protocols without ports. */
  readonly dport?: number | undefined;
}

interface Rule {
  readonly index: number;
  readonly peers: PeerPredicate;
  readonly ports: PortPredicate;
}

interface Compiled {
  readonly ref: PolicyRef;
  readonly selects: LabelPredicate;
  readonly ingress: readonly Rule[] | undefined; // undefined: not an Ingress policy
  readonly egress: readonly Rule[] | undefined;
}

/** The API server's defaulting of policyTypes. */
export function effectivePolicyTypes(policy: NetworkPolicy): readonly PolicyType[] {
  const given = policy.spec.policyTypes;
  if (given && given.length > 0) return given;
  return (policy.spec.egress?.length ?? 0) > 0 ? ['Ingress', 'Egress'] : ['Ingress'];
}

export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

function compile(policy: NetworkPolicy): Compiled {
  const types = effectivePolicyTypes(policy);
  const ns = policy.namespace;
  return {
    ref: { namespace: ns, name: policy.name },
    selects: compileSelector(policy.spec.podSelector),
    ingress: types.includes('Ingress')
      ? (policy.spec.ingress ?? []).map((r, index) => ({
          index,
          peers: compilePeers(r.from, ns),
          ports: compilePorts(r.ports),
        }))
      : undefined,
    egress: types.includes('Egress')
      ? (policy.spec.egress ?? []).map((r, index) => ({
          index,
          peers: compilePeers(r.to, ns),
          ports: compilePorts(r.ports),
        }))
      : undefined,
  };
}

function byRef(a: PolicyRef, b: PolicyRef): number {
  return a.namespace < b.namespace
    ? -1
    : a.namespace > b.namespace
      ? 1
      : a.name < b.name
        ? -1
        : a.name > b.name
          ? 1
          : 0;
}

interface End {
  readonly pod: PolicyPod | undefined;
  readonly ip: string | undefined;
}

const NO_REFS: readonly never[] = Object.freeze([]);

/**
 * A cluster's policies compiled for evaluation. Build one per state of the
 * cluster (policies, pods, namespaces); evaluate() is pure.
 */
export class PolicyEvaluator {
  private readonly byNamespace = new Map<string, Compiled[]>();
  private readonly namespaceLabels = new Map<string, Labels>();
  private readonly podsByIp = new Map<string, PolicyPod>();
  private readonly nodeIps = new Map<string, ReadonlySet<string>>();

  constructor(state: ClusterState) {
    for (const ns of state.namespaces)
      this.namespaceLabels.set(ns.name, { [NAMESPACE_NAME_LABEL]: ns.name, ...(ns.labels ?? {}) });
    for (const pod of state.pods) for (const ip of pod.ips ?? []) this.podsByIp.set(ip, pod);
    for (const node of state.nodes ?? []) this.nodeIps.set(node.name, new Set(node.ips));
    const sorted = [...state.policies].sort(byRef);
    for (const p of sorted) {
      let list = this.byNamespace.get(p.namespace);
      if (!list) {
        list = [];
        this.byNamespace.set(p.namespace, list);
      }
      list.push(compile(p));
    }
  }

  /** The pod that has this address, if any. */
  podByIp(ip: string): PolicyPod | undefined {
    return this.podsByIp.get(ip);
  }

  /** A namespace's labels (its name label included, also for namespaces never listed). */
  labelsOfNamespace(namespace: string): Labels {
    return this.namespaceLabels.get(namespace) ?? { [NAMESPACE_NAME_LABEL]: namespace };
  }

  /** The policies that select `pod` for `direction` (isolate it), sorted. */
  isolating(pod: PolicyPod, direction: Direction): PolicyRef[] {
    return this.selecting(pod, direction).map((c) => c.ref);
  }

  private selecting(pod: PolicyPod, direction: Direction): Compiled[] {
    const out: Compiled[] = [];
    for (const c of this.byNamespace.get(pod.namespace) ?? []) {
      if ((direction === 'ingress' ? c.ingress : c.egress) !== undefined && c.selects(pod.labels))
        out.push(c);
    }
    return out;
  }

  evaluate(flow: Flow): FlowVerdict {
    const src = this.end(flow.src);
    const dst = this.end(flow.dst);
    const samePod =
      src.pod !== undefined &&
      dst.pod !== undefined &&
      (src.pod === dst.pod ||
        (src.pod.name !== undefined &&
          src.pod.namespace === dst.pod.namespace &&
          src.pod.name === dst.pod.name));
    const egress = this.side('egress', src, dst, flow, samePod);
    const ingress = this.side('ingress', dst, src, flow, samePod);
    return { allowed: egress.allowed && ingress.allowed, egress, ingress };
  }

  private end(e: FlowEnd): End {
    if (typeof e === 'string') return { pod: this.podsByIp.get(e), ip: e };
    return { pod: e, ip: e.ips?.[0] };
  }

  /** The verdict at `self` (the source for egress, the destination for ingress). */
  private side(
    direction: Direction,
    self: End,
    other: End,
    flow: Flow,
    samePod: boolean,
  ): SideVerdict {
    const pod = self.pod;
    if (pod === undefined)
      return {
        direction,
        allowed: true,
        reason: 'not-a-pod',
        isolatedBy: NO_REFS,
        allowedBy: NO_REFS,
      };
    const policies = this.selecting(pod, direction);
    if (policies.length === 0)
      return {
        direction,
        allowed: true,
        reason: 'not-isolated',
        isolatedBy: NO_REFS,
        allowedBy: NO_REFS,
      };
    const isolatedBy = policies.map((c) => c.ref);
    if (samePod)
      return { direction, allowed: true, reason: 'same-pod', isolatedBy, allowedBy: NO_REFS };
    if (
      other.ip !== undefined &&
      pod.nodeName !== undefined &&
      this.nodeIps.get(pod.nodeName)?.has(other.ip)
    )
      return { direction, allowed: true, reason: 'own-node', isolatedBy, allowedBy: NO_REFS };
    const peer: PeerQuery = {
      pod: other.pod,
      namespaceLabels: other.pod ? this.labelsOfNamespace(other.pod.namespace) : undefined,
      ip: other.ip,
    };
    const portQuery = {
      proto: flow.proto,
      dport: flow.dport,
      dstPod: direction === 'ingress' ? pod : other.pod,
    };
    const allowedBy: RuleRef[] = [];
    for (const c of policies) {
      for (const r of (direction === 'ingress' ? c.ingress : c.egress)!) {
        if (r.ports(portQuery) && r.peers(peer))
          allowedBy.push({ namespace: c.ref.namespace, name: c.ref.name, rule: r.index });
      }
    }
    return allowedBy.length > 0
      ? { direction, allowed: true, reason: 'rule', isolatedBy, allowedBy }
      : { direction, allowed: false, reason: 'isolated', isolatedBy, allowedBy: NO_REFS };
  }
}

/** One evaluation without keeping the compiled cluster (tests, one-off questions). */
export function evaluateFlow(state: ClusterState, flow: Flow): FlowVerdict {
  return new PolicyEvaluator(state).evaluate(flow);
}
