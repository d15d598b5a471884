/**
 * Who talked to whom, by workload: the records folded into nodes (a
 * workload in a namespace, a host, an outside address class) and directed
 * edges per action, for the report's map and namespace matrix. Pure.
 *
 * A flow between two pods of one node is reported twice; an edge counts it
 * once, as the rest of the report does: allowed traffic from the source's
 * report when the source is a pod, else from the destination's; denied
 * traffic from every deny record (each is a drop at one side).
 */
import { aggregatedName } from '../endpoints/cache.js';
import type { EndpointType } from '../endpoints/types.js';
import type { FlowRecord } from '../format/record.js';

/** Characters of Kubernetes' generated name suffixes (no vowels, no 0/1/3: never a word). */
const GENERATED = '[bcdfghjklmnpqrstvwxz2456789]';
const POD_TEMPLATE_HASH = new RegExp(`^(.+)-${GENERATED}{6,10}$`);
const POD_SUFFIX = new RegExp(`^(.+)-${GENERATED}{5}$`);

/**
 * The workload a pod belongs to, from its name or aggregated name:
 * `frontend-5d9b7c8f4-h2x8k` and `frontend-5d9b7c8f4-*` → `frontend`
 * (Deployment: replica suffix and pod-template-hash dropped), `db-0` → `db`
 * (StatefulSet), `fluentd-x7k2p` → `fluentd` (DaemonSet, Job). A name
 * without a generated suffix is its own workload.
 */
export function workloadOf(name: string, nameAggr?: string): string {
  let base = nameAggr !== undefined && nameAggr !== '-' ? nameAggr : aggregatedName(name);
  if (base.endsWith('*')) base = base.slice(0, -1).replace(/-$/, '');
  else {
    const suffix = POD_SUFFIX.exec(base);
    if (suffix) base = suffix[1]!;
  }
  const hash = POD_TEMPLATE_HASH.exec(base);
  return hash ? hash[1]! : base;
}

export type GroupKind = 'namespace' | 'hosts' | 'netsets' | 'external';

export interface MapNode {
  /** Stable id: `wep:<namespace>/<workload>`, `hep:<node>`, `ns:<namespace>/<name>`, `net:<name>`. */
  readonly id: string;
  readonly type: EndpointType;
  /** A namespace name, or `(hosts)`, `(network sets)`, `(external)`. */
  readonly group: string;
  readonly label: string;
  /** Traffic this node sent and received on the map's edges. */
  sentBytes: number;
  receivedBytes: number;
  deniedFlows: number;
}

export interface PortUse {
  readonly port: number | '-';
  readonly proto: number;
  flows: number;
  bytes: number;
  packets: number;
}

export interface MapEdge {
  readonly src: string;
  readonly dst: string;
  readonly action: 'allow' | 'deny';
  records: number;
  flows: number;
  packets: number;
  bytes: number;
  /** Destination ports and protocols, most flows first. */
  readonly ports: PortUse[];
}

export interface MapGroup {
  readonly name: string;
  readonly kind: GroupKind;
  /** Sorted by label. */
  readonly nodes: MapNode[];
}

export interface FlowGraph {
  /** Namespaces by name, then hosts, network sets, outside addresses. */
  readonly groups: MapGroup[];
  readonly nodes: ReadonlyMap<string, MapNode>;
  /** Sorted by source, destination, action. */
  readonly edges: MapEdge[];
}

export const GROUP_HOSTS = '(hosts)';
export const GROUP_NETSETS = '(network sets)';
export const GROUP_EXTERNAL = '(external)';

const NET_LABELS: Readonly<Record<string, string>> = {
  pub: 'pub (internet)',
  pvt: 'pvt (private)',
  aws: 'aws (metadata)',
};

interface Side {
  id: string;
  type: EndpointType;
  group: string;
  label: string;
}

/** The node one end of a record belongs to. */
export function endpointNode(
  type: EndpointType,
  namespace: string,
  name: string,
  nameAggr?: string,
): Side {
  switch (type) {
    case 'wep': {
      const w = workloadOf(name, nameAggr);
      return { id: `wep:${namespace}/${w}`, type, group: namespace, label: w };
    }
    case 'hep':
      return { id: `hep:${name}`, type, group: GROUP_HOSTS, label: name };
    case 'ns':
      return {
        id: `ns:${namespace}/${name}`,
        type,
        group: GROUP_NETSETS,
        label: namespace === '-' ? name : `${namespace}/${name}`,
      };
    default:
      return { id: `net:${name}`, type, group: GROUP_EXTERNAL, label: NET_LABELS[name] ?? name };
  }
}

const GROUP_ORDER: Readonly<Record<string, number>> = {
  [GROUP_HOSTS]: 1,
  [GROUP_NETSETS]: 2,
  [GROUP_EXTERNAL]: 3,
};

function groupKind(name: string): GroupKind {
  if (name === GROUP_HOSTS) return 'hosts';
  if (name === GROUP_NETSETS) return 'netsets';
  if (name === GROUP_EXTERNAL) return 'external';
  return 'namespace';
}

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Whether a record is the one report of its flow the map counts (see the module comment). */
export function countedOnce(r: FlowRecord): boolean {
  return r.action === 'deny' || r.reporter === (r.srcType === 'wep' ? 'src' : 'dst');
}

export function buildGraph(records: readonly FlowRecord[]): FlowGraph {
  const nodes = new Map<string, MapNode>();
  const edges = new Map<string, MapEdge>();
  const node = (s: Side): MapNode => {
    let n = nodes.get(s.id);
    if (!n) {
      n = { ...s, sentBytes: 0, receivedBytes: 0, deniedFlows: 0 };
      nodes.set(s.id, n);
    }
    return n;
  };
  // Records repeat a few names many times: name each endpoint once.
  const sides = new Map<string, MapNode>();
  const side = (type: EndpointType, ns: string, name: string, aggr: string | undefined) => {
    const key = `${type}\n${ns}\n${name}\n${aggr}`;
    let n = sides.get(key);
    if (!n) {
      n = node(endpointNode(type, ns, name, aggr));
      sides.set(key, n);
    }
    return n;
  };
  for (const r of records) {
    if (!countedOnce(r)) continue;
    const src = side(r.srcType, r.srcNamespace, r.srcName, r.srcNameAggr);
    const dst = side(r.dstType, r.dstNamespace, r.dstName, r.dstNameAggr);
    const key = `${src.id}\n${dst.id}\n${r.action}`;
    let e = edges.get(key);
    if (!e) {
      e = {
        src: src.id,
        dst: dst.id,
        action: r.action,
        records: 0,
        flows: 0,
        packets: 0,
        bytes: 0,
        ports: [],
      };
      edges.set(key, e);
    }
    const packets = r.packetsIn + r.packetsOut;
    const bytes = r.bytesIn + r.bytesOut;
    e.records++;
    e.flows += r.numFlows;
    e.packets += packets;
    e.bytes += bytes;
    let p = e.ports.find((u) => u.port === r.dstPort && u.proto === r.proto);
    if (!p) {
      p = { port: r.dstPort, proto: r.proto, flows: 0, bytes: 0, packets: 0 };
      e.ports.push(p);
    }
    p.flows += r.numFlows;
    p.bytes += bytes;
    p.packets += packets;
    if (r.action === 'allow') {
      src.sentBytes += bytes;
      dst.receivedBytes += bytes;
    } else {
      src.deniedFlows += r.numFlows;
      if (dst !== src) dst.deniedFlows += r.numFlows;
    }
  }
  for (const e of edges.values())
    e.ports.sort(
      (a, b) => b.flows - a.flows || b.bytes - a.bytes || byText(String(a.port), String(b.port)),
    );
  const groups = new Map<string, MapGroup>();
  for (const n of nodes.values()) {
    let g = groups.get(n.group);
    if (!g) {
      g = { name: n.group, kind: groupKind(n.group), nodes: [] };
      groups.set(n.group, g);
    }
    g.nodes.push(n);
  }
  for (const g of groups.values()) g.nodes.sort((a, b) => byText(a.label, b.label));
  return {
    groups: [...groups.values()].sort(
      (a, b) => (GROUP_ORDER[a.name] ?? 0) - (GROUP_ORDER[b.name] ?? 0) || byText(a.name, b.name),
    ),
    nodes,
    edges: [...edges.values()].sort(
      (a, b) => byText(a.src, b.src) || byText(a.dst, b.dst) || byText(a.action, b.action),
    ),
  };
}

export interface MatrixCell {
  allowBytes: number;
  allowFlows: number;
  denyBytes: number;
  denyFlows: number;
  denyPackets: number;
}

export interface NamespaceMatrix {
  /** Row and column names (the graph's groups, in order). */
  readonly names: string[];
  /** cells[i][j]: from names[i] to names[j]. */
  readonly cells: MatrixCell[][];
}

/** Group × group sums of the graph's edges (rows: source, columns: destination). */
export function namespaceMatrix(g: FlowGraph): NamespaceMatrix {
  const names = g.groups.map((x) => x.name);
  const index = new Map(names.map((n, i) => [n, i]));
  const cells = names.map(() =>
    names.map(() => ({ allowBytes: 0, allowFlows: 0, denyBytes: 0, denyFlows: 0, denyPackets: 0 })),
  );
  for (const e of g.edges) {
    const c = cells[index.get(g.nodes.get(e.src)!.group)!]![index.get(g.nodes.get(e.dst)!.group)!]!;
    if (e.action === 'allow') {
      c.allowBytes += e.bytes;
      c.allowFlows += e.flows;
    } else {
      c.denyBytes += e.bytes;
      c.denyFlows += e.flows;
      c.denyPackets += e.packets;
    }
  }
  return { names, cells };
}
