/**
 * Answers to the auditors' questions, computed from decoded records (pure).
 * Sums are exact over the records given: packets, bytes and numFlows.
 */
import type { FlowRecord } from '../format/record.js';

export interface PairRow {
  src: string;
  dst: string;
  dstPort: string;
  proto: number;
  records: number;
  flows: number;
  packets: number;
  bytes: number;
  /** The policies the records name (27-field records), sorted; none from 24-field ones. */
  policies: string[];
}

function who(type: string, ns: string, name: string, ip: string): string {
  if (type === 'net') return `net/${name}${ip !== '-' ? ` (${ip})` : ''}`;
  if (type === 'hep') return `host/${name}`;
  return `${ns}/${name}`;
}

function group(records: readonly FlowRecord[], filter: (r: FlowRecord) => boolean): PairRow[] {
  const rows = new Map<string, PairRow>();
  const policies = new Map<PairRow, Set<string>>();
  for (const r of records) {
    if (!filter(r)) continue;
    const src = who(r.srcType, r.srcNamespace, r.srcName, r.srcIP);
    const dst = who(r.dstType, r.dstNamespace, r.dstName, r.dstIP);
    const dstPort = String(r.dstPort);
    const key = `${src}|${dst}|${dstPort}|${r.proto}`;
    let row = rows.get(key);
    if (!row) {
      row = {
        src,
        dst,
        dstPort,
        proto: r.proto,
        records: 0,
        flows: 0,
        packets: 0,
        bytes: 0,
        policies: [],
      };
      rows.set(key, row);
    }
    row.records++;
    row.flows += r.numFlows;
    row.packets += r.packetsIn + r.packetsOut;
    row.bytes += r.bytesIn + r.bytesOut;
    if (r.policies !== undefined && r.policies !== '-') {
      let set = policies.get(row);
      if (!set) {
        set = new Set();
        policies.set(row, set);
      }
      for (const p of r.policies.split('|')) set.add(p);
    }
  }
  for (const [row, set] of policies) row.policies = [...set].sort();
  return [...rows.values()].sort((a, b) => b.packets - a.packets || b.bytes - a.bytes);
}

/** Whether any row names a policy (then the tables show them). */
export function namesPolicies(rows: readonly PairRow[]): boolean {
  return rows.some((r) => r.policies.length > 0);
}

/**
 * A flow between two local pods is reported twice (once per reporter); the
 * answers count each flow once, from the reporter nearest the question:
 * dst for denied ingress and cross-namespace ingress, src for egress.
 */
export function deniedFlows(records: readonly FlowRecord[]): PairRow[] {
  return group(records, (r) => r.action === 'deny');
}

export function egressToInternet(records: readonly FlowRecord[]): PairRow[] {
  return group(records, (r) => r.reporter === 'src' && r.dstType === 'net' && r.dstName === 'pub');
}

export function crossNamespaceIngress(
  records: readonly FlowRecord[],
  namespace: string,
): PairRow[] {
  return group(
    records,
    (r) =>
      r.reporter === 'dst' &&
      r.dstNamespace === namespace &&
      r.srcNamespace !== namespace &&
      r.action === 'allow',
  );
}

export function namespaceTalkers(records: readonly FlowRecord[], namespace: string): PairRow[] {
  return group(
    records,
    (r) =>
      (r.reporter === 'src' && r.srcNamespace === namespace) ||
      (r.reporter === 'dst' && r.dstNamespace === namespace && r.srcNamespace !== namespace),
  );
}

export function topTalkers(records: readonly FlowRecord[], limit = 10): PairRow[] {
  return group(
    records,
    (r) => r.action === 'allow' && r.reporter === (r.srcType === 'wep' ? 'src' : 'dst'),
  )
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, limit);
}

export interface Totals {
  records: number;
  allowRecords: number;
  denyRecords: number;
  deniedPackets: number;
  firstTime: number | undefined;
  lastTime: number | undefined;
}

export function totals(records: readonly FlowRecord[]): Totals {
  const t: Totals = {
    records: 0,
    allowRecords: 0,
    denyRecords: 0,
    deniedPackets: 0,
    firstTime: undefined,
    lastTime: undefined,
  };
  for (const r of records) {
    t.records++;
    if (r.action === 'allow') t.allowRecords++;
    else {
      t.denyRecords++;
      t.deniedPackets += r.packetsIn + r.packetsOut;
    }
    t.firstTime = t.firstTime === undefined ? r.startTime : Math.min(t.firstTime, r.startTime);
    t.lastTime = t.lastTime === undefined ? r.endTime : Math.max(t.lastTime, r.endTime);
  }
  return t;
}

/** A bucket size giving at most ~`maxBuckets` buckets over [first, last], in round units. */
export function bucketFor(spanSeconds: number, maxBuckets = 60): number {
  const steps = [60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86_400, 7 * 86_400];
  for (const s of steps) if (spanSeconds / s <= maxBuckets) return s;
  return steps.at(-1)!;
}
