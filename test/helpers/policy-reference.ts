/**
 * A deliberately naive NetworkPolicy reference, written from the API docs'
 * sentences and not from src/policy: it works on sets. Each selector
 * becomes a list of requirements (matchLabels as `In [value]`), each peer
 * the set of pod identities it picks out of the whole cluster (found by
 * enumerating every pod), an ipBlock a range test on BigInt addresses, and
 * each ports list the set of (protocol, number) pairs it allows on the
 * destination, named ports looked up and ranges expanded. The property test
 * compares src/policy/evaluate.ts with this on random clusters.
 */
import type {
  ClusterState,
  ContainerPort,
  IPBlock,
  LabelSelector,
  NetworkPolicy,
  NetworkPolicyEgressRule,
  NetworkPolicyIngressRule,
  NetworkPolicyPeer,
  NetworkPolicyPort,
  PolicyPod,
} from '../../src/policy/types.js';

type Req = { key: string; op: string; values: string[] };

function requirements(s: LabelSelector): Req[] {
  const out: Req[] = Object.entries(s.matchLabels ?? {}).map(([key, v]) => ({
    key,
    op: 'In',
    values: [v],
  }));
  for (const e of s.matchExpressions ?? [])
    out.push({ key: e.key, op: e.operator, values: [...(e.values ?? [])] });
  return out;
}

function labelsSatisfy(labels: Record<string, string>, reqs: Req[]): boolean {
  return reqs.every((r) => {
    const present = r.key in labels;
    if (r.op === 'Exists') return present;
    if (r.op === 'DoesNotExist') return !present;
    if (r.op === 'In') return present && r.values.includes(labels[r.key]!);
    if (r.op === 'NotIn') return !(present && r.values.includes(labels[r.key]!));
    throw new Error(`operator ${r.op}`);
  });
}

function ipToBig(ip: string): { v: bigint; bits: number } | undefined {
  if (/^\d+\.\d+\.\d+\.\d+$/.test(ip)) {
    return { v: ip.split('.').reduce((a, o) => (a << 8n) | BigInt(Number(o)), 0n), bits: 32 };
  }
  if (!ip.includes(':')) return undefined;
  const [h, t] = ip.includes('::') ? ip.split('::') : [ip, ''];
  const hs = h ? h.split(':') : [];
  const ts = t ? t.split(':') : [];
  const words = ip.includes('::')
    ? [...hs, ...Array(8 - hs.length - ts.length).fill('0'), ...ts]
    : hs;
  return { v: words.reduce((a, w) => (a << 16n) | BigInt(Number.parseInt(w, 16)), 0n), bits: 128 };
}

function inCidr(ip: string, cidr: string): boolean {
  const [a, p] = cidr.split('/');
  const x = ipToBig(ip);
  const net = ipToBig(a!);
  if (!x || !net || x.bits !== net.bits) return false;
  const shift = BigInt(net.bits - Number(p));
  return x.v >> shift === net.v >> shift;
}

function inBlock(ip: string, b: IPBlock): boolean {
  return inCidr(ip, b.cidr) && !(b.except ?? []).some((e) => inCidr(ip, e));
}

const PROTO: Record<string, number> = { TCP: 6, UDP: 17, SCTP: 132 };

/** Either 'all' or the explicit (proto:port) pairs a ports list allows towards `dst`. */
function allowedPorts(
  ports: readonly NetworkPolicyPort[] | undefined,
  dst: PolicyPod | undefined,
): 'all' | Set<string> {
  if (!ports || ports.length === 0) return 'all';
  const out = new Set<string>();
  for (const p of ports) {
    const proto = PROTO[p.protocol ?? 'TCP']!;
    if (p.port === undefined) {
      out.add(`${proto}:*`);
    } else if (typeof p.port === 'string') {
      const cps: readonly ContainerPort[] = dst?.ports ?? [];
      for (const c of cps)
        if (c.name === p.port && PROTO[c.protocol ?? 'TCP'] === proto)
          out.add(`${proto}:${c.containerPort}`);
    } else {
      for (let n = p.port; n <= (p.endPort ?? p.port); n++) out.add(`${proto}:${n}`);
    }
  }
  return out;
}

export interface RefSide {
  allowed: boolean;
  isolatedBy: string[];
  allowedBy: string[];
}

export interface RefVerdict {
  allowed: boolean;
  egress: RefSide;
  ingress: RefSide;
}

export type RefEnd = { pod: PolicyPod; ip: string | undefined } | { pod: undefined; ip: string };

export function referenceVerdict(
  c: ClusterState,
  src: RefEnd,
  dst: RefEnd,
  proto: number,
  dport: number | undefined,
): RefVerdict {
  const podId = (p: PolicyPod) => c.pods.indexOf(p);
  const nsLabels = (name: string) => {
    const ns = c.namespaces.find((n) => n.name === name);
    return { 'kubernetes.io/metadata.name': name, ...(ns?.labels ?? {}) };
  };
  const types = (p: NetworkPolicy) => {
    if (p.spec.policyTypes && p.spec.policyTypes.length > 0) return p.spec.policyTypes;
    // "Ingress will always be set and Egress will be set if the NetworkPolicy has any egress rules."
    return p.spec.egress && p.spec.egress.length > 0 ? ['Ingress', 'Egress'] : ['Ingress'];
  };
  /** Indexes (into c.pods) of every pod a peer selects. */
  const podsOf = (peer: NetworkPolicyPeer, policyNs: string): Set<number> => {
    const out = new Set<number>();
    if (peer.ipBlock) return out;
    c.pods.forEach((p, i) => {
      const nsOk = peer.namespaceSelector
        ? labelsSatisfy(nsLabels(p.namespace), requirements(peer.namespaceSelector))
        : p.namespace === policyNs;
      const podOk = peer.podSelector
        ? labelsSatisfy({ ...p.labels }, requirements(peer.podSelector))
        : true;
      if (nsOk && podOk) out.add(i);
    });
    return out;
  };
  const peersAdmit = (
    peers: readonly NetworkPolicyPeer[] | undefined,
    policyNs: string,
    other: RefEnd,
  ) => {
    if (!peers || peers.length === 0) return true;
    return peers.some((peer) => {
      if (peer.ipBlock) return other.ip !== undefined && inBlock(other.ip, peer.ipBlock);
      return other.pod !== undefined && podsOf(peer, policyNs).has(podId(other.pod));
    });
  };
  const portsAdmit = (
    ports: readonly NetworkPolicyPort[] | undefined,
    dstPod: PolicyPod | undefined,
  ) => {
    const set = allowedPorts(ports, dstPod);
    if (set === 'all') return true;
    if (dport === undefined) return false;
    return set.has(`${proto}:*`) || set.has(`${proto}:${dport}`);
  };
  const judge = (dir: 'Ingress' | 'Egress', self: RefEnd, other: RefEnd): RefSide => {
    if (!self.pod) return { allowed: true, isolatedBy: [], allowedBy: [] };
    const pod = self.pod;
    const applying = c.policies.filter(
      (p) =>
        p.namespace === pod.namespace &&
        labelsSatisfy({ ...pod.labels }, requirements(p.spec.podSelector)) &&
        types(p).includes(dir),
    );
    const names = applying.map((p) => `${p.namespace}/${p.name}`).sort();
    if (applying.length === 0) return { allowed: true, isolatedBy: [], allowedBy: [] };
    // "a pod cannot block access to itself"
    if (other.pod && podId(other.pod) === podId(pod))
      return { allowed: true, isolatedBy: names, allowedBy: [] };
    // "traffic to and from the node where a Pod is running is always allowed"
    const node = c.nodes?.find((n) => n.name === pod.nodeName);
    if (node && other.ip !== undefined && node.ips.includes(other.ip))
      return { allowed: true, isolatedBy: names, allowedBy: [] };
    const allowedBy: string[] = [];
    for (const p of applying) {
      const rules = dir === 'Ingress' ? (p.spec.ingress ?? []) : (p.spec.egress ?? []);
      rules.forEach((r, i) => {
        const peers =
          dir === 'Ingress'
            ? (r as NetworkPolicyIngressRule).from
            : (r as NetworkPolicyEgressRule).to;
        const dstPod = dir === 'Ingress' ? pod : other.pod;
        if (peersAdmit(peers, p.namespace, other) && portsAdmit(r.ports, dstPod))
          allowedBy.push(`${p.namespace}/${p.name}#${i}`);
      });
    }
    allowedBy.sort();
    return {
      allowed: allowedBy.length > 0,
      isolatedBy: names,
      allowedBy: allowedBy.length > 0 ? allowedBy : [],
    };
  };
  const egress = judge('Egress', src, dst);
  const ingress = judge('Ingress', dst, src);
  return { allowed: egress.allowed && ingress.allowed, egress, ingress };
}
