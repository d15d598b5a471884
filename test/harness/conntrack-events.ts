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

/** The table's conntrack input, as the agent feeds it: one event at a time, a dump entry by entry. */
interface StreamedTable {
  onConntrackEvent(ev: ConntrackEvent, nowMs: number): void;
  beginDump(): void;
  onDumpEvent(ev: ConntrackEvent, nowMs: number): void;
  endDump(nowMs: number): void;
}

/** Events from the event socket, in order, as the agent delivers them (AgentCore start handlers). */
export function feedEvents(
  t: StreamedTable,
  events: readonly ConntrackEvent[],
  nowMs: number,
): void {
  for (const ev of events) t.onConntrackEvent(ev, nowMs);
}

/** One complete dump listing `entries`, as AgentCore streams it: begin, each entry, end. */
export function feedDump(
  t: StreamedTable,
  entries: readonly ConntrackEvent[],
  nowMs: number,
): void {
  t.beginDump();
  for (const ev of entries) t.onDumpEvent(ev, nowMs);
  t.endDump(nowMs);
}
