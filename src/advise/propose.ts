/**
 * Least-privilege NetworkPolicies from observed flows: one policy per
 * workload, isolating it both ways and allowing exactly the peers and ports
 * whose latest verdict was allow. Peers are pods by namespace and their
 * workload's stable labels; other addresses become ipBlocks (collapsed to
 * /24, /64 for IPv6, or to a CIDR the caller gives), flagged for review.
 * Every rule says which flows justified it. Pure.
 */
import { isIPv6 } from 'node:net';
import { NAMESPACE_NAME_LABEL } from '../policy/evaluate.js';
import { compileIpBlock } from '../policy/peers.js';
import { protocolName } from '../policy/ports.js';
import type {
  IPBlock,
  Labels,
  NetworkPolicy,
  NetworkPolicyPeer,
  NetworkPolicyPort,
} from '../policy/types.js';
import { type End, endLabel, VOLATILE_LABELS } from './identity.js';
import type { Flow } from './observe.js';

export interface AdviseOptions {
  /** Only workloads of this namespace get a policy. */
  readonly namespace?: string | undefined;
  /** External addresses inside one of these become that CIDR instead of a /24. */
  readonly cidrs?: readonly string[];
  /** Add an egress rule to kube-dns (UDP and TCP 53) to every policy (default true). */
  readonly dns?: boolean;
}

export interface Justification {
  /** `src → dst port/PROTO`, one per flow. */
  readonly flows: string[];
  readonly records: number;
  readonly connections: number;
}

export interface ProposedRule {
  readonly direction: 'ingress' | 'egress';
  readonly index: number;
  /** Who the rule admits, in words. */
  readonly peer: string;
  /** Why a person should look at it before applying (ipBlocks, broad selectors). */
  readonly review: string | undefined;
  readonly justification: Justification;
}

export interface ProposedPolicy {
  readonly workload: string;
  readonly policy: NetworkPolicy;
  readonly rules: ProposedRule[];
}

export interface Proposal {
  /** By namespace, sorted by name. */
  readonly policies: ProposedPolicy[];
  readonly notes: string[];
}

const PRIVATE_V4 = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'];
const KUBE_DNS: NetworkPolicyPeer = {
  namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: 'kube-system' } },
  podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
};

function stableLabels(labels: Labels): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(labels).sort()) if (!VOLATILE_LABELS.has(k)) out[k] = labels[k]!;
  return out;
}

function intersect(a: Labels, b: Labels): Labels {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(a)) if (b[k] === v) out[k] = v;
  return out;
}

/** The block an external address is allowed as. */
function blockFor(ip: string, cidrs: readonly string[]): { block: IPBlock; review: string } {
  for (const c of cidrs)
    if (compileIpBlock({ cidr: c })(ip))
      return { block: { cidr: c }, review: `external: ${ip} in the given ${c}` };
  if (isIPv6(ip)) {
    const cidr = slash64(ip);
    return { block: { cidr }, review: `external: ${ip} widened to ${cidr}` };
  }
  const cidr = `${ip.split('.').slice(0, 3).join('.')}.0/24`;
  return { block: { cidr }, review: `external: ${ip} widened to ${cidr}` };
}

/** The /64 an IPv6 address is in. */
function slash64(ip: string): string {
  const [h, t] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const head = h ? h.split(':') : [];
  const tail = t ? t.split(':') : [];
  const words =
    t === undefined ? head : [...head, ...Array(8 - head.length - tail.length).fill('0'), ...tail];
  return `${words
    .slice(0, 4)
    .map((w) => Number.parseInt(w || '0', 16).toString(16))
    .join(':')}::/64`;
}

interface PeerChoice {
  readonly key: string;
  readonly peers: NetworkPolicyPeer[];
  readonly text: string;
  readonly review: string | undefined;
}

export class Proposer {
  private readonly labelsOf = new Map<string, Labels>();

  constructor(
    private readonly flows: readonly Flow[],
    private readonly options: AdviseOptions,
  ) {
    // A workload's labels: what all its pods (and records) share.
    for (const f of flows)
      for (const e of [f.src, f.dst]) {
        if (e.kind !== 'pod') continue;
        const k = `${e.namespace}/${e.workload}`;
        const had = this.labelsOf.get(k);
        this.labelsOf.set(k, had ? intersect(had, e.labels) : e.labels);
      }
  }

  private peerFor(e: End, policyNamespace: string): PeerChoice {
    if (e.kind === 'pod') {
      const labels = stableLabels(this.labelsOf.get(`${e.namespace}/${e.workload}`) ?? {});
      const empty = Object.keys(labels).length === 0;
      const podSelector = empty ? {} : { matchLabels: labels };
      const peer: NetworkPolicyPeer =
        e.namespace === policyNamespace
          ? { podSelector }
          : {
              namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: e.namespace } },
              podSelector,
            };
      return {
        key: `pod ${e.namespace}/${JSON.stringify(labels)}`,
        peers: [peer],
        text: `${e.namespace}/${e.workload}`,
        review: empty
          ? `${e.namespace}/${e.workload} has no stable labels: the rule admits every pod of namespace ${e.namespace}`
          : undefined,
      };
    }
    if (e.ip) {
      const { block, review } = blockFor(e.ip, this.options.cidrs ?? []);
      return { key: `block ${block.cidr}`, peers: [{ ipBlock: block }], text: block.cidr, review };
    }
    // The records dropped the address (aggregation kind 2): the whole class.
    const cls = e.name;
    if (cls === 'net/pub')
      return {
        key: 'class pub',
        peers: [{ ipBlock: { cidr: '0.0.0.0/0', except: PRIVATE_V4 } }],
        text: 'the internet',
        review: 'the records have no addresses (aggregation kind 2): any public IPv4 address',
      };
    if (cls === 'net/aws')
      return {
        key: 'class aws',
        peers: [{ ipBlock: { cidr: '169.254.169.254/32' } }],
        text: 'instance metadata',
        review: undefined,
      };
    return {
      key: `class ${cls}`,
      peers: PRIVATE_V4.map((cidr) => ({ ipBlock: { cidr } })),
      text: `${cls} (private ranges)`,
      review: `the records have no address for ${cls} (aggregation kind 2): every private IPv4 range`,
    };
  }

  propose(): Proposal {
    const notes: string[] = [];
    const workloads = new Map<string, { namespace: string; workload: string }>();
    for (const f of this.flows)
      for (const e of [f.src, f.dst])
        if (e.kind === 'pod' && (!this.options.namespace || e.namespace === this.options.namespace))
          workloads.set(`${e.namespace}/${e.workload}`, {
            namespace: e.namespace,
            workload: e.workload,
          });
    const policies: ProposedPolicy[] = [];
    for (const [key, w] of [...workloads].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const labels = stableLabels(this.labelsOf.get(key) ?? {});
      if (Object.keys(labels).length === 0) {
        notes.push(
          `${key}: no stable labels to select it by; no policy proposed (its flows stay unrestricted)`,
        );
        continue;
      }
      const ingress = this.rules(
        this.flows.filter(
          (f) =>
            f.latest === 'allow' &&
            f.dst.kind === 'pod' &&
            `${f.dst.namespace}/${f.dst.workload}` === key,
        ),
        (f) => f.src,
        w.namespace,
        'ingress',
      );
      const egress = this.rules(
        this.flows.filter(
          (f) =>
            f.latest === 'allow' &&
            f.src.kind === 'pod' &&
            `${f.src.namespace}/${f.src.workload}` === key,
        ),
        (f) => f.dst,
        w.namespace,
        'egress',
      );
      if (this.options.dns !== false) this.addDns(egress, w.namespace);
      const name = `flowtrail-${w.workload}`.slice(0, 253).replace(/[-.]+$/, '');
      policies.push({
        workload: key,
        policy: {
          namespace: w.namespace,
          name,
          spec: {
            podSelector: { matchLabels: labels },
            policyTypes: ['Ingress', 'Egress'],
            ingress: ingress.map((r) => r.rule),
            egress: egress.map((r) => r.rule),
          },
        },
        rules: [
          ...ingress.map((r, index) => ({ ...r.about, direction: 'ingress' as const, index })),
          ...egress.map((r, index) => ({ ...r.about, direction: 'egress' as const, index })),
        ],
      });
    }
    return { policies, notes };
  }

  private rules(
    flows: Flow[],
    peerEnd: (f: Flow) => End,
    namespace: string,
    direction: 'ingress' | 'egress',
  ): {
    rule: { from?: NetworkPolicyPeer[]; to?: NetworkPolicyPeer[]; ports: NetworkPolicyPort[] };
    about: Omit<ProposedRule, 'direction' | 'index'>;
    key: string;
  }[] {
    const groups = new Map<
      string,
      { choice: PeerChoice; ports: Map<string, NetworkPolicyPort>; flows: Flow[] }
    >();
    for (const f of flows) {
      const choice = this.peerFor(peerEnd(f), namespace);
      let g = groups.get(choice.key);
      if (!g) {
        g = { choice, ports: new Map(), flows: [] };
        groups.set(choice.key, g);
      }
      const protocol = protocolName(f.proto)!;
      g.ports.set(`${protocol}/${f.port}`, { protocol, port: f.port });
      g.flows.push(f);
    }
    return [...groups.values()]
      .sort((a, b) => (a.choice.key < b.choice.key ? -1 : a.choice.key > b.choice.key ? 1 : 0))
      .map((g) => {
        const ports = [...g.ports.values()].sort((a, b) =>
          a.protocol! < b.protocol!
            ? -1
            : a.protocol! > b.protocol!
              ? 1
              : (a.port as number) - (b.port as number),
        );
        const peers = g.choice.peers;
        return {
          key: g.choice.key,
          rule: direction === 'ingress' ? { from: peers, ports } : { to: peers, ports },
          about: {
            peer: g.choice.text,
            review: g.choice.review,
            justification: {
              flows: g.flows
                .map(
                  (f) =>
                    `${endLabel(f.src)} → ${endLabel(f.dst)} ${f.port}/${protocolName(f.proto)}`,
                )
                .sort(),
              records: g.flows.reduce((n, f) => n + f.allowedRecords, 0),
              connections: g.flows.reduce((n, f) => n + f.allowedConnections, 0),
            },
          },
        };
      });
  }

  private addDns(egress: ReturnType<Proposer['rules']>, namespace: string): void {
    const ports: NetworkPolicyPort[] = [
      { protocol: 'TCP', port: 53 },
      { protocol: 'UDP', port: 53 },
    ];
    const seen = egress.find(
      (r) =>
        JSON.stringify(r.rule.to) === JSON.stringify([KUBE_DNS]) ||
        (namespace === 'kube-system' &&
          JSON.stringify(r.rule.to) === JSON.stringify([{ podSelector: KUBE_DNS.podSelector }])),
    );
    if (seen) {
      for (const p of ports)
        if (!seen.rule.ports.some((q) => q.protocol === p.protocol && q.port === p.port))
          seen.rule.ports.push(p);
      return;
    }
    egress.push({
      key: 'dns',
      rule: { to: [KUBE_DNS], ports },
      about: {
        peer: 'kube-system/kube-dns',
        review: undefined,
        justification: {
          flows: ['name resolution, added to every policy (--no-dns leaves it out)'],
          records: 0,
          connections: 0,
        },
      },
    });
  }
}

export function propose(flows: readonly Flow[], options: AdviseOptions = {}): Proposal {
  return new Proposer(flows, options).propose();
}
