/**
 * Aggregation: merging per-connection contributions of one interval into
 * records. The kind decides which fields are kept in the key (Felix's
 * aggregation levels):
 *   0 Full          the 5-tuple and pod names
 *   1 NoSourcePort  source port dropped ('-')
 *   2 PrefixName    also pod names replaced by their aggregated name
 *                   (generateName + '*') and IPs dropped ('-')
 * numFlows counts distinct 5-tuples; labels, when on, are the intersection
 * of the members' labels.
 */
import type { Endpoint } from '../endpoints/types.js';
import { formatLabels, intersectLabels } from '../format/codec.js';
import type { FlowRecord } from '../format/record.js';

export const AggregationKind = {
  Full: 0,
  NoSourcePort: 1,
  PrefixName: 2,
} as const;
export type AggregationKind = (typeof AggregationKind)[keyof typeof AggregationKind];

/** One connection's (or denied 5-tuple's) share of an interval, from one reporter's side. */
export interface Contribution {
  readonly src: Endpoint;
  readonly dst: Endpoint;
  readonly srcIP: string;
  readonly dstIP: string;
  readonly proto: number;
  /** undefined for protocols without ports (ICMP). */
  readonly srcPort: number | undefined;
  readonly dstPort: number | undefined;
  readonly reporter: 'src' | 'dst';
  readonly action: 'allow' | 'deny';
  readonly started: boolean;
  readonly completed: boolean;
  readonly packetsIn: number;
  readonly packetsOut: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly policies?: readonly string[] | undefined;
  /** The 5-tuple's identity for numFlows, when the caller keeps it precomputed. */
  readonly tuple?: string | undefined;
  /**
   * false when the caller knows no other contribution of this aggregation
   * can carry the same 5-tuple (one connection owns it): it then counts
   * towards numFlows without a set lookup.
   */
  readonly tupleShared?: boolean | undefined;
  /** A per-connection cache of its record key (valid while kind and endpoints stay the same). */
  readonly memo?: KeyMemo | undefined;
}

/**
 * The record key a connection had at its last flush. Reused when the kind
 * and the endpoint objects (by identity) are unchanged, so a long-lived
 * connection's key is built once, not every interval; the stored string is
 * the bucket's own key, shared by all members of the bucket. The flow table
 * keeps these fields on the connection itself (one object less per connection).
 */
export interface KeyMemo {
  memoKind: AggregationKind | -1;
  memoSrc: Endpoint | undefined;
  memoDst: Endpoint | undefined;
  memoKeySrc: string | undefined;
  memoKeyDst: string | undefined;
}

function memoKey(
  m: KeyMemo | undefined,
  c: Contribution,
  kind: AggregationKind,
): string | undefined {
  if (m === undefined || m.memoKind !== kind || m.memoSrc !== c.src || m.memoDst !== c.dst) {
    return undefined;
  }
  return c.reporter === 'src' ? m.memoKeySrc : m.memoKeyDst;
}

function remember(
  m: KeyMemo | undefined,
  c: Contribution,
  kind: AggregationKind,
  key: string,
): void {
  if (m === undefined) return;
  if (m.memoKind !== kind || m.memoSrc !== c.src || m.memoDst !== c.dst) {
    m.memoKind = kind;
    m.memoSrc = c.src;
    m.memoDst = c.dst;
    m.memoKeySrc = undefined;
    m.memoKeyDst = undefined;
  }
  if (c.reporter === 'src') m.memoKeySrc = key;
  else m.memoKeyDst = key;
}

interface Bucket {
  /** The bucket's key string (shared with the members' memos). */
  key: string;
  record: FlowRecord;
  /** Shared 5-tuples, made on first need (most buckets have none). */
  tuples: Set<string> | undefined;
  /** Contributions whose 5-tuple no other contribution has (see tupleShared). */
  uniqueTuples: number;
  srcLabels: Record<string, string> | undefined;
  dstLabels: Record<string, string> | undefined;
  policies: Set<string> | undefined;
  srcAggr: string;
  dstAggr: string;
}

export interface AggregateOptions {
  kind: AggregationKind;
  includeLabels: boolean;
  includePolicies: boolean;
  startTime: number;
  endTime: number;
}

function name(e: Endpoint, kind: AggregationKind): string {
  return kind === AggregationKind.PrefixName ? e.aggregatedName : e.name;
}

/** A bucket's labels become those it shares with the contribution's endpoints. */
function intersectInto(b: Bucket, c: Contribution): void {
  b.srcLabels = intersectLabels(b.srcLabels ?? {}, c.src.labels);
  b.dstLabels = intersectLabels(b.dstLabels ?? {}, c.dst.labels);
}

/**
 * Merges contributions into records, one at a time (nothing per connection is
 * held beyond its bucket); records follow the order of first appearance.
 */
export class Aggregator {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly o: AggregateOptions) {}

  add(c: Contribution): void {
    const o = this.o;
    const memo = memoKey(c.memo, c, o.kind);
    // A long-lived connection's bucket is found by its remembered key alone.
    let b = memo === undefined ? undefined : this.buckets.get(memo);
    if (b === undefined) b = this.bucketFor(c, memo);
    else if (o.includeLabels) intersectInto(b, c);
    if (memo === undefined) remember(c.memo, c, o.kind, b.key);
    const r = b.record;
    if (c.tupleShared === false) b.uniqueTuples++;
    else {
      b.tuples ??= new Set();
      b.tuples.add(
        c.tuple ?? `${c.proto}|${c.srcIP}|${c.dstIP}|${c.srcPort ?? '-'}|${c.dstPort ?? '-'}`,
      );
    }
    if (c.started) r.numFlowsStarted++;
    if (c.completed) r.numFlowsCompleted++;
    r.packetsIn += c.packetsIn;
    r.packetsOut += c.packetsOut;
    r.bytesIn += c.bytesIn;
    r.bytesOut += c.bytesOut;
    if (c.policies && c.policies.length > 0) {
      b.policies ??= new Set();
      for (const p of c.policies) b.policies.add(p);
    }
  }

  /** The bucket of a contribution whose key is not remembered (or whose bucket is new this flush). */
  private bucketFor(c: Contribution, memo: string | undefined): Bucket {
    const o = this.o;
    const hasPorts = c.srcPort !== undefined;
    const srcPort: number | '-' = !hasPorts || o.kind !== AggregationKind.Full ? '-' : c.srcPort!;
    const dstPort: number | '-' = c.dstPort === undefined ? '-' : c.dstPort;
    const dropIps = o.kind === AggregationKind.PrefixName;
    const srcIP = dropIps ? '-' : c.srcIP;
    const dstIP = dropIps ? '-' : c.dstIP;
    const srcName = name(c.src, o.kind);
    const dstName = name(c.dst, o.kind);
    const key =
      memo ??
      // Flat (join): connections keep their bucket's key between flushes.
      [
        c.reporter,
        c.action,
        c.proto,
        c.src.type,
        c.src.namespace,
        srcName,
        c.dst.type,
        c.dst.namespace,
        dstName,
        srcIP,
        dstIP,
        srcPort,
        dstPort,
      ].join('|');
    let b = memo === undefined ? this.buckets.get(key) : undefined;
    if (b !== undefined) {
      if (o.includeLabels) intersectInto(b, c);
      return b;
    }
    b = {
      key,
      record: {
        startTime: o.startTime,
        endTime: o.endTime,
        srcType: c.src.type,
        srcNamespace: c.src.namespace,
        srcName,
        srcLabels: '-',
        dstType: c.dst.type,
        dstNamespace: c.dst.namespace,
        dstName,
        dstLabels: '-',
        srcIP,
        dstIP,
        proto: c.proto,
        srcPort,
        dstPort,
        numFlows: 0,
        numFlowsStarted: 0,
        numFlowsCompleted: 0,
        reporter: c.reporter,
        packetsIn: 0,
        packetsOut: 0,
        bytesIn: 0,
        bytesOut: 0,
        action: c.action,
      },
      tuples: undefined,
      uniqueTuples: 0,
      srcLabels: o.includeLabels ? { ...c.src.labels } : undefined,
      dstLabels: o.includeLabels ? { ...c.dst.labels } : undefined,
      policies: undefined,
      srcAggr: c.src.aggregatedName,
      dstAggr: c.dst.aggregatedName,
    };
    this.buckets.set(key, b);
    return b;
  }

  records(): FlowRecord[] {
    const o = this.o;
    const buckets = this.buckets;
    const out: FlowRecord[] = [];
    for (const b of buckets.values()) {
      const r = b.record;
      r.numFlows = b.uniqueTuples + (b.tuples?.size ?? 0);
      if (o.includeLabels) {
        r.srcLabels = formatLabels(b.srcLabels, true);
        r.dstLabels = formatLabels(b.dstLabels, true);
      }
      if (o.includePolicies) {
        r.srcNameAggr = b.srcAggr;
        r.dstNameAggr = b.dstAggr;
        r.policies = b.policies !== undefined ? [...b.policies].sort().join('|') : '-';
      }
      out.push(r);
    }
    return out;
  }
}

/** Merges contributions into records; order of output follows first appearance. */
export function aggregate(
  contributions: Iterable<Contribution>,
  o: AggregateOptions,
): FlowRecord[] {
  const agg = new Aggregator(o);
  for (const c of contributions) agg.add(c);
  return agg.records();
}
