/**
 * The `from`/`to` peers of a rule. A peer is an ipBlock (the address is in
 * cidr and in none of its excepts), or pods chosen by selectors:
 * podSelector alone picks pods in the policy's namespace, namespaceSelector
 * alone every pod in the namespaces it picks, both together the pods it
 * picks in those namespaces. A rule without peers matches every source or
 * destination. Selectors only ever match pods; ipBlocks match addresses,
 * pods' included (as most plugins do), when the address is known.
 */
import { BlockList, isIP } from 'node:net';
import { compileSelector, type LabelPredicate } from './selectors.js';
import type { IPBlock, Labels, NetworkPolicyPeer, PolicyPod } from './types.js';

/** The other end of the connection, as the peer sees it. */
export interface PeerQuery {
  /** The pod at that end, with its namespace's labels; undefined for an address that is no pod. */
  readonly pod: PolicyPod | undefined;
  readonly namespaceLabels: Labels | undefined;
  /** The address at that end, when known. */
  readonly ip: string | undefined;
}

export type PeerPredicate = (q: PeerQuery) => boolean;

const ANY: PeerPredicate = () => true;

function family(ip: string): 'ipv4' | 'ipv6' | undefined {
  const v = isIP(ip);
  return v === 4 ? 'ipv4' : v === 6 ? 'ipv6' : undefined;
}

/** `a.b.c.d/n` or `x::/n` into its parts; parse.ts has validated it. */
export function splitCidr(cidr: string): {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
} {
  const slash = cidr.indexOf('/');
  const address = cidr.slice(0, slash);
  const f = family(address);
  if (slash < 0 || f === undefined) throw new Error(`not a CIDR: ${JSON.stringify(cidr)}`);
  return { address, prefix: Number(cidr.slice(slash + 1)), family: f };
}

function blockList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const c of cidrs) {
    const { address, prefix, family: f } = splitCidr(c);
    list.addSubnet(address, prefix, f);
  }
  return list;
}

export function compileIpBlock(block: IPBlock): (ip: string) => boolean {
  const inside = blockList([block.cidr]);
  const except = blockList(block.except ?? []);
  const cidrFamily = splitCidr(block.cidr).family;
  return (ip) => {
    const f = family(ip);
    // A v4 address never falls in a v6 block and the other way round.
    if (f !== cidrFamily) return false;
    return inside.check(ip, f) && !except.check(ip, f);
  };
}

function peer(p: NetworkPolicyPeer, policyNamespace: string): PeerPredicate {
  if (p.ipBlock) {
    const inBlock = compileIpBlock(p.ipBlock);
    return (q) => q.ip !== undefined && inBlock(q.ip);
  }
  const pods = p.podSelector ? compileSelector(p.podSelector) : undefined;
  const namespaces: LabelPredicate | undefined = p.namespaceSelector
    ? compileSelector(p.namespaceSelector)
    : undefined;
  return (q) => {
    const pod = q.pod;
    if (pod === undefined) return false;
    if (namespaces === undefined) {
      if (pod.namespace !== policyNamespace) return false;
    } else if (!namespaces(q.namespaceLabels ?? {})) return false;
    return pods === undefined || pods(pod.labels);
  };
}

export function compilePeers(
  peers: readonly NetworkPolicyPeer[] | undefined,
  policyNamespace: string,
): PeerPredicate {
  if (!peers || peers.length === 0) return ANY;
  const each = peers.map((p) => peer(p, policyNamespace));
  return (q) => {
    for (const e of each) if (e(q)) return true;
    return false;
  };
}
