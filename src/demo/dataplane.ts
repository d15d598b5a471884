/**
 * Where the demo's policy is enforced: `iptables` (NFLOG + ACCEPT/DROP rules
 * in the node's FORWARD path, the Calico iptables way; src/sim/policy.ts) or
 * `ebpf` (TC classifiers on each pod's host-side veth that drop with
 * TC_ACT_SHOT and log nothing, the VPC CNI network policy agent's way;
 * src/sim/tc-policy.ts), where flowtrail sees the denies through the
 * kernel's drop events.
 */
import { Policy } from '../sim/policy.js';
import type { SimNode } from '../sim/simnode.js';
import { TcPolicy } from '../sim/tc-policy.js';

export type DataplaneName = 'iptables' | 'ebpf';

export interface DemoDataplane {
  readonly name: DataplaneName;
  /** What the drop counters are called in the live status. */
  readonly counterLabel: string;
  defaultDeny(): void;
  /** Allows TCP from `from` to `to` on `port`; `name` is the policy (tier.policy). */
  allow(o: { from: string; to: string; port: number; name: string; egress: boolean }): void;
  /** Every dropping rule's or program's own counters. */
  counters(): { prefix: string; packets: number; bytes: number }[];
  dropped(): { packets: number; bytes: number };
}

class IptablesPlane implements DemoDataplane {
  readonly name = 'iptables';
  readonly counterLabel = 'iptables DROP';
  private readonly policy: Policy;

  constructor(node: SimNode) {
    this.policy = new Policy(node);
  }

  defaultDeny(): void {
    this.policy.defaultDeny();
  }

  allow(o: { from: string; to: string; port: number; name: string; egress: boolean }): void {
    this.policy.allow({
      from: o.from,
      to: o.to,
      proto: 'tcp',
      port: o.port,
      name: o.name,
      direction: o.egress ? 'egress' : 'ingress',
    });
  }

  counters() {
    return this.policy.counters().filter((c) => c.target === 'DROP');
  }

  dropped() {
    return this.policy.dropped();
  }
}

class EbpfPlane implements DemoDataplane {
  readonly name = 'ebpf';
  readonly counterLabel = 'TC drops';
  private readonly byIp = new Map<string, TcPolicy>();

  /** One classifier per destination (each pod, and the internet's veth for egress). */
  constructor(
    node: SimNode,
    destinations: readonly { ip: string; hostVeth: string; name: string }[],
  ) {
    for (const d of destinations) this.byIp.set(d.ip, TcPolicy.attach(node, d));
  }

  defaultDeny(): void {
    for (const tc of this.byIp.values()) tc.isolate();
  }

  allow(o: { from: string; to: string; port: number }): void {
    const tc = this.byIp.get(o.to);
    if (!tc) throw new Error(`ebpf dataplane: no classifier in front of ${o.to}`);
    tc.allow(o.from, 'tcp', o.port);
  }

  counters() {
    return [...this.byIp.values()].map((tc) => ({
      prefix: `tc:${tc.target.name}`,
      ...tc.counters(),
    }));
  }

  dropped() {
    let packets = 0;
    let bytes = 0;
    for (const c of this.counters()) {
      packets += c.packets;
      bytes += c.bytes;
    }
    return { packets, bytes };
  }
}

export function createDataplane(
  name: DataplaneName,
  node: SimNode,
  destinations: readonly { ip: string; hostVeth: string; name: string }[],
): DemoDataplane {
  return name === 'ebpf' ? new EbpfPlane(node, destinations) : new IptablesPlane(node);
}
