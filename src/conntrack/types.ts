/**
 * Typed conntrack events, as decoded from ctnetlink messages (events and dump
 * replies). Addresses are kept in numeric/raw form by the decoder and turned
 * into strings lazily by the `src`/`dst` accessors, because formatting every
 * address of every message dominates decode cost at high event rates.
 */

export type IpFamily = 4 | 6;

/** One direction of a connection (CTA_TUPLE_ORIG or CTA_TUPLE_REPLY). */
export interface ConntrackTuple {
  readonly family: IpFamily;
  /** IANA protocol number: 1 ICMP, 6 TCP, 17 UDP, 58 ICMPv6, 132 SCTP. */
  readonly proto: number;
  /** Dotted quad or RFC 5952 IPv6 text; computed on first access. */
  readonly src: string;
  readonly dst: string;
  /**
   * IPv4 addresses as unsigned 32-bit numbers, when the decoder gives them
   * (family 4): comparing these costs no text formatting.
   */
  readonly src4?: number;
  readonly dst4?: number;
  /** Ports for TCP/UDP/SCTP/UDPLITE/DCCP; 0 when the protocol has none. */
  readonly sport: number;
  readonly dport: number;
  /** ICMP/ICMPv6 type, code and id; undefined for other protocols. */
  readonly icmpType?: number;
  readonly icmpCode?: number;
  readonly icmpId?: number;
}

export interface ConntrackCounters {
  packets: number;
  bytes: number;
}

export type ConntrackEventType = 'new' | 'update' | 'destroy';

export interface ConntrackEvent {
  /** 'new'/'update'/'destroy' for multicast events; dump replies are 'update' with `fromDump`. */
  readonly type: ConntrackEventType;
  readonly fromDump: boolean;
  readonly orig: ConntrackTuple;
  readonly reply: ConntrackTuple | undefined;
  /** CTA_ID: a hash, not unique on its own; key by (id, orig tuple, zone). */
  readonly id: number;
  readonly zone: number;
  readonly mark: number;
  /** IPS_* status bits (CTA_STATUS). */
  readonly status: number;
  /** TCP state number (CTA_PROTOINFO_TCP_STATE), undefined for other protocols. */
  readonly tcpState: number | undefined;
  /** Present only with nf_conntrack_acct=1, on DESTROY events and in dumps. */
  readonly countersOrig: ConntrackCounters | undefined;
  readonly countersReply: ConntrackCounters | undefined;
  /** Nanoseconds since the epoch (CTA_TIMESTAMP_START/STOP), with nf_conntrack_timestamp=1. */
  readonly startNs: bigint | undefined;
  readonly stopNs: bigint | undefined;
  /**
   * The same instants in whole milliseconds since the epoch (rounded down),
   * without building a BigInt: what the flow table reads on every event.
   */
  readonly startMs: number | undefined;
  readonly stopMs: number | undefined;
}
