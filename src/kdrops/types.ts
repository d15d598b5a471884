/** One packet the kernel dropped, as the kfree_skb program reported it (native/bpf/kfree_skb.bpf.c). */
export interface KernelDrop {
  /** The kernel's enum skb_drop_reason value (numbers differ between kernels). */
  readonly reason: number;
  /** Its name without SKB_DROP_REASON_ (e.g. NETFILTER_DROP, TC_INGRESS), or `REASON_<n>` when unknown. */
  readonly reasonName: string;
  /** Inode of the network namespace of the packet's device (or socket). */
  readonly netns: number;
  /** The device the packet was on when dropped; 0 when it had none (e.g. OUTPUT before routing). */
  readonly ifindex: number;
  /** 4, 6, or 0 when not IP. Only IPv4 carries addresses and ports. */
  readonly ipVersion: 0 | 4 | 6;
  readonly proto: number;
  readonly src: string;
  readonly dst: string;
  /** 0 for protocols without ports and non-first fragments. */
  readonly sport: number;
  readonly dport: number;
  /** IPv4 total length: the packet's IP bytes, counted as NFLOG and iptables count them. */
  readonly bytes: number;
  /** IPv4 identification. */
  readonly ipId: number;
  /** skb->len at the drop (includes a link-layer header at TC egress). */
  readonly skbLen: number;
  /** skb->protocol (ETH_P_*). */
  readonly l3proto: number;
  /** The kernel text address that dropped it (symbolise with /proc/kallsyms). */
  readonly location: bigint;
}

/** What the kernel's drop reasons mean for flowtrail. */
export interface DropReasons {
  /** The name of a reason number (REASON_<n> when the kernel's BTF did not list it). */
  name(reason: number): string;
}
