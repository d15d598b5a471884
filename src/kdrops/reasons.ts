/**
 * The kernel's drop reasons, by name: numbers differ between kernels (5.17
 * started NOT_SPECIFIED at 0, 6.x at 2), so the running kernel's enum
 * skb_drop_reason is read from its BTF by the addon and matched by name.
 *
 * Policy reasons are the ones a policy engine's verdict produces; their drops
 * are denies for the pod endpoints. Every other reason is counted per reason.
 *   NETFILTER_DROP     an iptables/nftables DROP (Calico iptables/nftables,
 *                      kube-proxy, plain iptables rules)
 *   TC_INGRESS         a TC BPF program's TC_ACT_SHOT on a device's ingress
 *                      (VPC CNI network policy agent, Cilium, Calico eBPF:
 *                      on a pod's host-side veth, the pod's egress policy)
 *   TC_EGRESS          the same on egress (to the pod: its ingress policy)
 *   BPF_CGROUP_EGRESS  a cgroup/skb egress program's deny
 */
import type { DropReasons } from './types.js';

export type Reporter = 'src' | 'dst';

/** Which end a policy drop is reported against by preference: the end whose policy the hook enforces. */
export const POLICY_REASONS: ReadonlyMap<string, Reporter> = new Map([
  // The hook cannot tell ingress from egress rules: the destination's, as NFLOG's ingress group.
  ['NETFILTER_DROP', 'dst'],
  ['TC_INGRESS', 'src'],
  ['TC_EGRESS', 'dst'],
  ['BPF_CGROUP_EGRESS', 'src'],
]);

export function isPolicyReason(name: string): boolean {
  return POLICY_REASONS.has(name);
}

/** The reason table of one kernel, from the addon's reasons() (values and names side by side). */
export class ReasonTable implements DropReasons {
  private readonly names: string[] = [];

  constructor(table: { readonly values: readonly number[]; readonly names: readonly string[] }) {
    table.values.forEach((v, i) => {
      const n = table.names[i];
      if (n !== undefined && Number.isInteger(v) && v >= 0 && v < 65_536) this.names[v] = n;
    });
  }

  name(reason: number): string {
    return this.names[reason] ?? `REASON_${reason}`;
  }

  /** The number of a named reason on this kernel, if it has it. */
  value(name: string): number | undefined {
    const i = this.names.indexOf(name);
    return i < 0 ? undefined : i;
  }
}

/**
 * Drops counted per reason name: totals for /metrics
 * (flowtrail_kernel_drops_total{reason}) and the counts since the last take
 * for the CloudWatch DroppedPackets metric (dimension Reason).
 */
export class DropCounts {
  private readonly totals = new Map<string, number>();
  private pending = new Map<string, number>();

  add(reasonName: string, n = 1): void {
    this.totals.set(reasonName, (this.totals.get(reasonName) ?? 0) + n);
    this.pending.set(reasonName, (this.pending.get(reasonName) ?? 0) + n);
  }

  /** Totals per reason since start. */
  all(): ReadonlyMap<string, number> {
    return this.totals;
  }

  /** Counts since the last call, per reason. */
  take(): Map<string, number> {
    const out = this.pending;
    this.pending = new Map();
    return out;
  }
}
