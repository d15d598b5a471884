/** Decoded conntrack events as the flow table receives them, for unit tests. */
import type { ConntrackEvent, ConntrackEventType } from '../../src/conntrack/types.js';

export interface TestTuple {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  /** The reply's source when DNAT rewrote the destination (default: dst). */
  replySrc?: string;
  /** CTA_ID (default 1). */
  id?: number;
  /** Default TCP. */
  proto?: number;
}

/** An IPv4 event; counters are [packetsOrig, bytesOrig, packetsReply, bytesReply]. */
export function conntrackEvent(
  type: ConntrackEventType,
  t: TestTuple,
  counters?: readonly [number, number, number, number],
  extra: Partial<ConntrackEvent> = {},
): ConntrackEvent {
  const proto = t.proto ?? 6;
  return {
    type,
    fromDump: false,
    orig: { family: 4, proto, src: t.src, dst: t.dst, sport: t.sport, dport: t.dport },
    reply: {
      family: 4,
      proto,
      src: t.replySrc ?? t.dst,
      dst: t.src,
      sport: t.dport,
      dport: t.sport,
    },
    id: t.id ?? 1,
    zone: 0,
    mark: 0,
    status: 0,
    tcpState: undefined,
    countersOrig: counters ? { packets: counters[0], bytes: counters[1] } : undefined,
    countersReply: counters ? { packets: counters[2], bytes: counters[3] } : undefined,
    startNs: undefined,
    stopNs: undefined,
    startMs: undefined,
    stopMs: undefined,
    ...extra,
  };
}
