/**
 * Records into flows: one flow per (source, destination, protocol, port),
 * ends named by workload (`ns/web`) or address, with the latest verdict seen
 * (by the records' endTime; an allow and a deny in the same interval count
 * as allow: the traffic got through then) and what the records add up to.
 * Only TCP, UDP and SCTP: NetworkPolicy ports cannot name other protocols.
 */
import type { FlowRecord } from '../format/record.js';
import { protocolName } from '../policy/ports.js';
import { type End, endLabel, type Identities, UnknownLabelsError } from './identity.js';

export interface Flow {
  readonly key: string;
  readonly src: End;
  readonly dst: End;
  readonly proto: number;
  readonly port: number;
  /** The verdict of the latest record. */
  latest: 'allow' | 'deny';
  latestTime: number;
  /** Records, connections (numFlows), packets and bytes, all verdicts. */
  records: number;
  connections: number;
  packets: number;
  bytes: number;
  /** Records whose own verdict was not the latest (policy changed in the window). */
  superseded: number;
  /** The allow records alone: what justifies allowing the flow. */
  allowedRecords: number;
  allowedConnections: number;
}

export interface Observed {
  readonly flows: Map<string, Flow>;
  /** Each usable record with its flow (for replays, record by record). */
  readonly records: { record: FlowRecord; flow: Flow; src: End; dst: End }[];
  /** Records left out, by reason. */
  readonly skipped: Record<string, number>;
  /** The first few reasons a pod's labels were unknown. */
  readonly unknown: string[];
}

export function flowKey(src: End, dst: End, proto: number, port: number): string {
  return `${endLabel(src)}|${endLabel(dst)}|${proto}|${port}`;
}

export function observe(records: readonly FlowRecord[], ids: Identities): Observed {
  const flows = new Map<string, Flow>();
  const out: Observed['records'] = [];
  const skipped: Record<string, number> = {};
  const unknown: string[] = [];
  const skip = (why: string) => {
    skipped[why] = (skipped[why] ?? 0) + 1;
  };
  for (const r of records) {
    if (protocolName(r.proto) === undefined || r.dstPort === '-') {
      skip(`protocol ${r.proto} (NetworkPolicy ports name TCP, UDP and SCTP only)`);
      continue;
    }
    let src: End;
    let dst: End;
    try {
      src = ids.end(r, 'src');
      dst = ids.end(r, 'dst');
    } catch (err) {
      if (!(err instanceof UnknownLabelsError)) throw err;
      skip('labels unknown');
      if (unknown.length < 5 && !unknown.includes(err.message)) unknown.push(err.message);
      continue;
    }
    const key = flowKey(src, dst, r.proto, r.dstPort);
    let f = flows.get(key);
    if (!f) {
      f = {
        key,
        src,
        dst,
        proto: r.proto,
        port: r.dstPort,
        latest: r.action,
        latestTime: r.endTime,
        records: 0,
        connections: 0,
        packets: 0,
        bytes: 0,
        superseded: 0,
        allowedRecords: 0,
        allowedConnections: 0,
      };
      flows.set(key, f);
    } else if (r.endTime > f.latestTime || (r.endTime === f.latestTime && r.action === 'allow')) {
      f.latest = r.action;
      f.latestTime = r.endTime;
    }
    f.records++;
    f.connections += r.numFlows;
    f.packets += r.packetsIn + r.packetsOut;
    f.bytes += r.bytesIn + r.bytesOut;
    if (r.action === 'allow') {
      f.allowedRecords++;
      f.allowedConnections += r.numFlows;
    }
    out.push({ record: r, flow: f, src, dst });
  }
  for (const { record, flow } of out) if (record.action !== flow.latest) flow.superseded++;
  return { flows, records: out, skipped, unknown };
}
