/** What an NFLOG rule prefix says about the packet (DESIGN.md "Rule prefixes"). */
export type RuleAction = 'allow' | 'deny' | 'pass';
export type RuleOwner = 'policy' | 'profile';
export type RuleDirection = 'ingress' | 'egress';

export interface RuleVerdict {
  readonly action: RuleAction;
  readonly owner: RuleOwner;
  readonly direction: RuleDirection;
  /** Rule index within the policy; undefined for a tier's or profile's default action. */
  readonly ruleIndex: number | undefined;
  /** `tier.policy` as written after the `|`. */
  readonly policyName: string;
  /** The raw prefix, for logs and the 27-field variant. */
  readonly prefix: string;
}

/** One packet as NFLOG delivered it, decoded to its 5-tuple. */
export interface NflogPacket {
  readonly group: number;
  readonly prefix: string;
  /** Parsed prefix, or undefined when the prefix does not follow the convention. */
  readonly verdict: RuleVerdict | undefined;
  readonly family: 4 | 6;
  readonly proto: number;
  readonly src: string;
  readonly dst: string;
  /** 0 for protocols without ports (ICMP). */
  readonly sport: number;
  readonly dport: number;
  readonly icmpType?: number;
  readonly icmpCode?: number;
  /** IP total length (IPv4 tot_len, IPv6 payload length + 40): the packet's bytes. */
  readonly bytes: number;
  /** IPv4 identification (0 for IPv6): with the 5-tuple and length, the packet's identity
   * when a kernel drop event is matched to it (src/flows/deny-join.ts). */
  readonly ipId?: number;
  /** Kernel timestamp in ms since the epoch when NFULA_TIMESTAMP was present. */
  readonly timestampMs: number | undefined;
  readonly indev: number | undefined;
  readonly outdev: number | undefined;
  readonly hwaddr: string | undefined;
}
