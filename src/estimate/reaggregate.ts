/**
 * Re-aggregates records to a coarser kind (0 → 1 → 2), as the agent would
 * have written them at that kind: kind 1 drops the source port, kind 2 also
 * replaces pod names by their prefix and drops the IPs. Counters and flow
 * counts add up (distinct 5-tuples stay distinct); labels intersect; the
 * policies of 27-field records unite, as the agent unites them.
 *
 * From 24-field records, a pod's generateName is unknown: its prefix is cut
 * from the name (src/endpoints/cache.ts aggregatedName), which is what the
 * agent writes for Deployment, ReplicaSet and StatefulSet pods. A 27-field
 * record says it (srcNameAggr, dstNameAggr).
 */
import { aggregatedName } from '../endpoints/cache.js';
import { addCounts, type FlowRecord } from '../format/record.js';
import { hasPorts } from '../util/ip-proto.js';

export type Kind = 0 | 1 | 2;

/** The finest kind a set of records can be re-aggregated from. */
export function kindOf(records: readonly FlowRecord[]): Kind {
  let kind: Kind = 0;
  for (const r of records) {
    // Kind 2 drops every IP; kind 1 every source port (ICMP has none at any kind).
    if (r.srcIP === '-' && r.dstIP === '-') return 2;
    if (r.srcPort === '-' && hasPorts(r.proto)) kind = 1;
  }
  return kind;
}

function parseLabels(text: string): Map<string, string> | undefined {
  if (text === '-') return undefined;
  const out = new Map<string, string>();
  for (const kv of text.slice(1, -1).split(',')) {
    const eq = kv.indexOf('=');
    if (eq > 0) out.set(kv.slice(0, eq), kv.slice(eq + 1));
  }
  return out;
}

function intersect(a: string, b: string): string {
  if (a === b) return a;
  const x = parseLabels(a);
  const y = parseLabels(b);
  if (!x || !y) return '-';
  const keys = [...x.keys()].filter((k) => y.get(k) === x.get(k)).sort();
  return keys.length === 0 ? '-' : `[${keys.map((k) => `${k}=${x.get(k)}`).join(',')}]`;
}

/** The endpoint's aggregated name: the record's own (27 fields), else cut from the name. */
export function aggregatedOf(
  type: FlowRecord['srcType'],
  name: string,
  fromRecord: string | undefined,
): string {
  if (fromRecord !== undefined && fromRecord !== '-') return fromRecord;
  return type === 'wep' ? aggregatedName(name) : name;
}

function nameAt(
  type: FlowRecord['srcType'],
  name: string,
  aggr: string | undefined,
  kind: Kind,
): string {
  return kind === 2 && type === 'wep' ? aggregatedOf(type, name, aggr) : name;
}

/** Two '|'-joined policy lists united, sorted as the agent writes them ('-' for none). */
function unitePolicies(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined || b === undefined) return a ?? b;
  if (a === b) return a;
  const names = new Set([...a.split('|'), ...b.split('|')]);
  names.delete('-');
  return names.size === 0 ? '-' : [...names].sort().join('|');
}

/** `records` re-aggregated to `kind` (≥ the records' own kind), in order of first appearance. */
export function reaggregate(records: readonly FlowRecord[], kind: Kind): FlowRecord[] {
  if (kind === 0) return records.map((r) => ({ ...r }));
  const out = new Map<string, FlowRecord>();
  for (const r of records) {
    const srcName = nameAt(r.srcType, r.srcName, r.srcNameAggr, kind);
    const dstName = nameAt(r.dstType, r.dstName, r.dstNameAggr, kind);
    const srcIP = kind === 2 ? '-' : r.srcIP;
    const dstIP = kind === 2 ? '-' : r.dstIP;
    const key = [
      r.startTime,
      r.endTime,
      r.srcType,
      r.srcNamespace,
      srcName,
      r.dstType,
      r.dstNamespace,
      dstName,
      srcIP,
      dstIP,
      r.proto,
      r.dstPort,
      r.reporter,
      r.action,
    ].join(' ');
    const b = out.get(key);
    if (!b) {
      out.set(key, { ...r, srcName, dstName, srcIP, dstIP, srcPort: '-' });
      continue;
    }
    addCounts(b, r);
    b.srcLabels = intersect(b.srcLabels, r.srcLabels);
    b.dstLabels = intersect(b.dstLabels, r.dstLabels);
    const policies = unitePolicies(b.policies, r.policies);
    if (policies !== undefined) b.policies = policies;
  }
  return [...out.values()];
}
