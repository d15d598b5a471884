/**
 * The `ports` of a rule: protocol (default TCP), a numeric port or range
 * (port..endPort), or a named port resolved from the destination pod's
 * container ports (same name and protocol). A rule without ports matches
 * every port and every protocol; an entry never matches a packet without
 * ports (ICMP and the like), for which the API defines no port.
 */
import type { ContainerPort, NetworkPolicyPort, PolicyPod, PortProtocol } from './types.js';

/** IANA protocol numbers of the protocols a NetworkPolicy port can name. */
export const PROTOCOL_NUMBERS: Readonly<Record<PortProtocol, number>> = {
  TCP: 6,
  UDP: 17,
  SCTP: 132,
};

export function protocolName(proto: number): PortProtocol | undefined {
  return proto === 6 ? 'TCP' : proto === 17 ? 'UDP' : proto === 132 ? 'SCTP' : undefined;
}

/** The packet side a port entry looks at. */
export interface PortQuery {
  readonly proto: number;
  /** Destination port; undefined for protocols without ports. */
  readonly dport: number | undefined;
  /** The destination pod (named ports resolve on it); undefined when the destination is no pod. */
  readonly dstPod: PolicyPod | undefined;
}

export type PortPredicate = (q: PortQuery) => boolean;

const ANY: PortPredicate = () => true;

function namedPortIs(
  ports: readonly ContainerPort[] | undefined,
  name: string,
  proto: PortProtocol,
  port: number,
): boolean {
  for (const p of ports ?? [])
    if (p.name === name && (p.protocol ?? 'TCP') === proto && p.containerPort === port) return true;
  return false;
}

function entry(p: NetworkPolicyPort): PortPredicate {
  const protoName = p.protocol ?? 'TCP';
  const proto = PROTOCOL_NUMBERS[protoName];
  const port = p.port;
  if (port === undefined) return (q) => q.proto === proto && q.dport !== undefined;
  if (typeof port === 'string')
    return (q) =>
      q.proto === proto &&
      q.dport !== undefined &&
      namedPortIs(q.dstPod?.ports, port, protoName, q.dport);
  const end = p.endPort ?? port;
  return (q) => q.proto === proto && q.dport !== undefined && q.dport >= port && q.dport <= end;
}

export function compilePorts(ports: readonly NetworkPolicyPort[] | undefined): PortPredicate {
  if (!ports || ports.length === 0) return ANY;
  const entries = ports.map(entry);
  return (q) => {
    for (const e of entries) if (e(q)) return true;
    return false;
  };
}
