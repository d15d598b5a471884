/**
 * Denied traffic: NFLOG packets whose prefix says deny, and kernel drops with
 * a policy reason (addDeny, src/flows/kernel-denies.ts), counted per reporter
 * and 5-tuple for one interval. The ingress group reports dst (packetsIn),
 * the egress group src (packetsOut). A 5-tuple with no denied packet in an
 * interval yields nothing (no stale zero-count deny flows); a 5-tuple counts
 * as started when the previous interval did not see it. Allowed packets only
 * remember their policy names per 5-tuple (for the 27-field `policies`
 * field); pass verdicts and unparsed prefixes are not counted here (the
 * caller counts them).
 */
import type { EndpointLookup } from '../endpoints/types.js';
import type { KernelDrop } from '../kdrops/types.js';
import type { NflogPacket } from '../nflog/types.js';
import { hasPorts } from '../util/ip-proto.js';
import type { Contribution } from './aggregation.js';

/** The 5-tuple key used to join NFLOG packets with connections. */
export function tupleKey(
  proto: number,
  src: string,
  dst: string,
  sport: number | undefined,
  dport: number | undefined,
): string {
  // join() builds one flat string; a template literal builds a rope of ~8
  // cons cells (~250 bytes more per tracked connection, measured).
  return [proto, src, dst, sport ?? '', dport ?? ''].join('|');
}

interface DenyEntry {
  readonly reporter: 'src' | 'dst';
  readonly proto: number;
  readonly src: string;
  readonly dst: string;
  readonly sport: number | undefined;
  readonly dport: number | undefined;
  packets: number;
  bytes: number;
  /** Time of the first packet: the owner lookup time. */
  readonly firstMs: number;
  /** The deciding policy (tier.policy) when known. */
  policy: string | undefined;
}

/** One denied packet from a source other than NFLOG (the kernel's drop events); bytes are IP bytes. */
export type DeniedPacket = Pick<
  KernelDrop,
  'proto' | 'src' | 'dst' | 'sport' | 'dport' | 'bytes'
> & {
  readonly reporter: 'src' | 'dst';
  readonly timeMs: number;
  readonly policy: string | undefined;
};

export interface DenyCounterOptions {
  ingressGroup: number;
  egressGroup: number;
  /** Remember allow-policy names per 5-tuple (27-field variant). */
  includePolicies: boolean;
}

export class DenyCounter {
  private entries = new Map<string, DenyEntry>();
  private previous = new Set<string>();
  private readonly allowPolicies = new Map<string, Set<string>>();
  /** 5-tuples (tupleKey) the kernel dropped packets of in this interval. */
  private kernelTuples = new Set<string>();
  /**
   * The same for the interval before. A drop drained just before a flush can be
   * of a packet (a retransmitted SYN) that conntrack counted after that flush's
   * dump read the entry: its count lands in the next interval, its drop in this one.
   */
  private kernelTuplesBefore = new Set<string>();
  private sinceTake = 0;
  /** Denied packets ever counted. */
  total = 0;
  /** Deny packets from a group that is neither the ingress nor the egress group. */
  otherGroup = 0;

  constructor(private readonly o: DenyCounterOptions) {}

  add(packets: readonly NflogPacket[], nowMs: number): void {
    for (const p of packets) {
      const v = p.verdict;
      if (v === undefined) continue;
      const ports = hasPorts(p.proto);
      const sport = ports ? p.sport : undefined;
      const dport = ports ? p.dport : undefined;
      if (v.action === 'allow') {
        if (!this.o.includePolicies) continue;
        const k = tupleKey(p.proto, p.src, p.dst, sport, dport);
        let set = this.allowPolicies.get(k);
        if (set === undefined) {
          set = new Set();
          this.allowPolicies.set(k, set);
        }
        set.add(v.policyName);
        continue;
      }
      if (v.action !== 'deny') continue;
      const reporter =
        p.group === this.o.ingressGroup
          ? 'dst'
          : p.group === this.o.egressGroup
            ? 'src'
            : undefined;
      if (reporter === undefined) {
        this.otherGroup++;
        continue;
      }
      this.count(
        reporter,
        p.proto,
        p.src,
        p.dst,
        sport,
        dport,
        p.bytes,
        p.timestampMs ?? nowMs,
        v.policyName,
      );
    }
  }

  /** One denied packet from the kernel's drop events (reporter and policy already decided). */
  addDeny(d: DeniedPacket): void {
    const ports = hasPorts(d.proto);
    this.kernelTuples.add(
      tupleKey(d.proto, d.src, d.dst, ports ? d.sport : undefined, ports ? d.dport : undefined),
    );
    this.count(
      d.reporter,
      d.proto,
      d.src,
      d.dst,
      ports ? d.sport : undefined,
      ports ? d.dport : undefined,
      d.bytes,
      d.timeMs,
      d.policy,
    );
  }

  private count(
    reporter: 'src' | 'dst',
    proto: number,
    src: string,
    dst: string,
    sport: number | undefined,
    dport: number | undefined,
    bytes: number,
    timeMs: number,
    policy: string | undefined,
  ): void {
    this.total++;
    this.sinceTake++;
    const k = `${reporter}|${tupleKey(proto, src, dst, sport, dport)}`;
    const e = this.entries.get(k);
    if (e !== undefined) {
      e.packets++;
      e.bytes += bytes;
      e.policy ??= policy;
    } else {
      this.entries.set(k, {
        reporter,
        proto,
        src,
        dst,
        sport,
        dport,
        packets: 1,
        bytes,
        firstMs: timeMs,
        policy,
      });
    }
  }

  /** 5-tuples with kernel denies in this interval or the one before. */
  get kernelDenied(): number {
    return this.kernelTuples.size + this.kernelTuplesBefore.size;
  }

  kernelDeniedTuple(key: string): boolean {
    return this.kernelTuples.has(key) || this.kernelTuplesBefore.has(key);
  }

  /** Whether any allowed packet named its policy in this interval. */
  get hasAllowPolicies(): boolean {
    return this.allowPolicies.size > 0;
  }

  /** Allow-policy names seen for a 5-tuple in this interval. */
  policiesFor(key: string): readonly string[] | undefined {
    const s = this.allowPolicies.get(key);
    return s === undefined ? undefined : [...s];
  }

  /** Denied packets since the last call (the DeniedPackets metric). */
  takeDeniedPackets(): number {
    const n = this.sinceTake;
    this.sinceTake = 0;
    return n;
  }

  /** The interval's denied contributions; resets the interval. */
  drain(endpoints: EndpointLookup): Contribution[] {
    const out: Contribution[] = [];
    const seen = new Set<string>();
    for (const [key, e] of this.entries) {
      seen.add(key);
      const isDst = e.reporter === 'dst';
      out.push({
        src: endpoints.lookup(e.src, e.firstMs),
        dst: endpoints.lookup(e.dst, e.firstMs),
        srcIP: e.src,
        dstIP: e.dst,
        proto: e.proto,
        srcPort: e.sport,
        dstPort: e.dport,
        reporter: e.reporter,
        action: 'deny',
        started: !this.previous.has(key),
        completed: false,
        packetsIn: isDst ? e.packets : 0,
        packetsOut: isDst ? 0 : e.packets,
        bytesIn: isDst ? e.bytes : 0,
        bytesOut: isDst ? 0 : e.bytes,
        policies: e.policy === undefined ? undefined : [e.policy],
      });
    }
    this.previous = seen;
    this.entries = new Map();
    this.allowPolicies.clear();
    const before = this.kernelTuplesBefore;
    this.kernelTuplesBefore = this.kernelTuples;
    before.clear();
    this.kernelTuples = before;
    return out;
  }
}
