/**
 * Denied packets over time, split by what denied them. Records of the
 * 27-field variant (`flowLogs.includePolicies: true`) name the policies that
 * decided; 24-field records do not, so their denies are split by the
 * namespace of the reporting side instead (the namespace whose policy
 * dropped the packet: the destination's for ingress, the source's for
 * egress). Pure.
 */
import type { FlowRecord } from '../format/record.js';

export type DenySplit = 'policy' | 'namespace' | 'mixed' | 'none';

export interface DenySeries {
  /** `policy default.default-deny`, `namespace stars`, `host (no namespace)`. */
  readonly key: string;
  /** Denied packets per bucket, aligned with `DeniesByCause.buckets`. */
  readonly packets: number[];
  total: number;
}

export interface DeniesByCause {
  /** What the series are keyed by: policies, namespaces (24-field records), or both. */
  readonly split: DenySplit;
  /** Bucket starts, Unix seconds, every bucket from the first deny to the last. */
  readonly buckets: number[];
  readonly bucketSeconds: number;
  /** Largest total first; beyond `maxSeries`, the rest are summed into `other`. */
  readonly series: DenySeries[];
}

function hasPolicy(r: FlowRecord): boolean {
  return r.policies !== undefined && r.policies !== '-';
}

/** The series a deny record is counted in. */
export function denyCause(r: FlowRecord): string {
  // Several policies are '|'-joined on one record: the set is the cause, never split (no double count).
  if (hasPolicy(r)) return `policy ${r.policies!.split('|').join(' + ')}`;
  const ns = r.reporter === 'dst' ? r.dstNamespace : r.srcNamespace;
  return ns === '-' ? 'host (no namespace)' : `namespace ${ns}`;
}

export const OTHER_SERIES = 'other';

export function deniesByCause(
  records: readonly FlowRecord[],
  bucketSeconds: number,
  maxSeries = 8,
): DeniesByCause {
  if (!(bucketSeconds > 0)) throw new RangeError(`bucketSeconds must be > 0, got ${bucketSeconds}`);
  const denies = records.filter((r) => r.action === 'deny');
  if (denies.length === 0) return { split: 'none', buckets: [], bucketSeconds, series: [] };
  const withPolicy = denies.filter(hasPolicy).length;
  const split: DenySplit =
    withPolicy === denies.length ? 'policy' : withPolicy === 0 ? 'namespace' : 'mixed';
  const bucketOf = (r: FlowRecord) => Math.floor(r.endTime / bucketSeconds) * bucketSeconds;
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  for (const r of denies) {
    first = Math.min(first, bucketOf(r));
    last = Math.max(last, bucketOf(r));
  }
  const buckets: number[] = [];
  for (let t = first; t <= last; t += bucketSeconds) buckets.push(t);
  const byKey = new Map<string, DenySeries>();
  for (const r of denies) {
    const key = denyCause(r);
    let s = byKey.get(key);
    if (!s) {
      s = { key, packets: buckets.map(() => 0), total: 0 };
      byKey.set(key, s);
    }
    const packets = r.packetsIn + r.packetsOut;
    s.packets[(bucketOf(r) - first) / bucketSeconds]! += packets;
    s.total += packets;
  }
  const all = [...byKey.values()].sort(
    (a, b) => b.total - a.total || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0),
  );
  if (all.length <= maxSeries) return { split, buckets, bucketSeconds, series: all };
  const kept = all.slice(0, maxSeries - 1);
  const other: DenySeries = { key: OTHER_SERIES, packets: buckets.map(() => 0), total: 0 };
  for (const s of all.slice(maxSeries - 1)) {
    s.packets.forEach((p, i) => {
      other.packets[i]! += p;
    });
    other.total += s.total;
  }
  return { split, buckets, bucketSeconds, series: [...kept, other] };
}
