/**
 * A kernel drop with a policy reason as a denied packet: which end reports it
 * and which policy decided. Pure.
 *
 * Reporter: the end whose policy the dropping hook enforces (POLICY_REASONS):
 * TC_EGRESS on a pod's host-side veth is the pod's ingress policy (dst),
 * TC_INGRESS there its egress policy (src); NETFILTER_DROP cannot tell and
 * prefers dst, as NFLOG's ingress group does. When the preferred end is not on
 * this node and the other is, the other end reports (a drop on the node's
 * uplink of traffic to a local pod is that pod's). When a DenyPolicyNamer is
 * given it may name the policy and settle the reporter (issue #20 item 3).
 */
import type { Endpoint, EndpointLookup } from '../endpoints/types.js';
import { POLICY_REASONS, type Reporter } from '../kdrops/reasons.js';
import type { KernelDrop } from '../kdrops/types.js';
import type { DeniedPacket } from './deny-counter.js';

/** What a policy namer is asked about one dropped packet. */
export interface DropQuery {
  readonly src: Endpoint;
  readonly dst: Endpoint;
  readonly srcIP: string;
  readonly dstIP: string;
  readonly proto: number;
  readonly sport: number;
  readonly dport: number;
  /** The reporter chosen from the hook and locality. */
  readonly reporter: Reporter;
  readonly reasonName: string;
}

/** Names the policy that denied a packet the data plane dropped without saying why. */
export interface DenyPolicyNamer {
  /**
   * The deciding policy as `tier.policy` (the rule-prefix convention of
   * docs/architecture.md), and the reporter whose side it isolates; undefined
   * when no policy explains the drop.
   */
  name(q: DropQuery, timeMs: number): { policy: string; reporter: Reporter } | undefined;
}

export function chooseReporter(
  preferred: Reporter,
  srcLocal: boolean,
  dstLocal: boolean,
): Reporter {
  const preferredLocal = preferred === 'src' ? srcLocal : dstLocal;
  const otherLocal = preferred === 'src' ? dstLocal : srcLocal;
  if (!preferredLocal && otherLocal) return preferred === 'src' ? 'dst' : 'src';
  return preferred;
}

export function kernelDeny(
  d: KernelDrop,
  endpoints: EndpointLookup,
  namer: DenyPolicyNamer | undefined,
  nowMs: number,
): DeniedPacket {
  const src = endpoints.lookup(d.src, nowMs);
  const dst = endpoints.lookup(d.dst, nowMs);
  let reporter = chooseReporter(POLICY_REASONS.get(d.reasonName) ?? 'dst', src.local, dst.local);
  let policy: string | undefined;
  if (namer !== undefined) {
    const named = namer.name(
      {
        src,
        dst,
        srcIP: d.src,
        dstIP: d.dst,
        proto: d.proto,
        sport: d.sport,
        dport: d.dport,
        reporter,
        reasonName: d.reasonName,
      },
      nowMs,
    );
    if (named !== undefined) {
      policy = named.policy;
      reporter = named.reporter;
    }
  }
  return {
    reporter,
    proto: d.proto,
    src: d.src,
    dst: d.dst,
    sport: d.sport,
    dport: d.dport,
    bytes: d.bytes,
    timeMs: nowMs,
    policy,
  };
}
