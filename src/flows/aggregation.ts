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
 * The buckets a connection went to at its last flush, one per reporter side.
 * Valid while the kind and the endpoint objects (by identity) are unchanged
 * and the bucket is still kept: a long-lived connection finds its bucket with
 * no key built and no lookup. The flow table keeps these fields on the
 * connection itself (one object less per connection).
 */
export interface KeyMemo {
  memoKind: AggregationKind | -1;
  memoSrc: Endpoint | undefined;
  memoDst: Endpoint | undefined;
  memoBucketSrc: Bucket | undefined;
  memoBucketDst: Bucket | undefined;
}

/** A KeyMemo that remembers nothing yet. */
export function emptyMemo(): KeyMemo {
  return {
    memoKind: -1,
    memoSrc: undefined,
    memoDst: undefined,
    memoBucketSrc: undefined,
    memoBucketDst: undefined,
  };
}

/**
 * Small-integer ids for endpoints' kind-2 identities (type, namespace,
 * aggregated name), cached per endpoint object: kind 2 finds a bucket by
 * numbers, with no key string per connection.
 */
export class EndpointIds {
  private byEndpoint = new WeakMap<Endpoint, number>();
  private readonly byIdentity = new Map<string, number>();

  constructor(private readonly max = 65_536) {}

  aggregateId(e: Endpoint): number {
    let id = this.byEndpoint.get(e);
    if (id === undefined) {
      const identity = [e.type, e.namespace, e.aggregatedName].join('|');
      id = this.byIdentity.get(identity);
      if (id === undefined) {
        id = this.byIdentity.size;
        this.byIdentity.set(identity, id);
      }
      this.byEndpoint.set(e, id);
    }
    return id;
  }

  /** Whether as many identities as allowed are known (the owner then calls clear()). */
  get full(): boolean {
    return this.byIdentity.size >= this.max;
  }

  /** Starts over (pod churn keeps adding identities); ids given before mean nothing after. */
  clear(): void {
    this.byIdentity.clear();
    this.byEndpoint = new WeakMap();
  }
}

/**
 * One record key's bucket. Kept across flushes while in use, so connections
 * remember it; its record and sums are started afresh in each flush it is
 * used in, and it is dropped after a flush that did not use it.
 */
export interface Bucket {
  /** The aggregator whose index holds it (a memo may have met another one). */
  readonly owner: Aggregator;
  /** Kinds 0 and 1: its key string in the index. */
  readonly key: string | undefined;
  /** Kind 2: its place in the index (source id, destination id, the rest). */
  readonly srcId: number;
  readonly dstId: number;
  readonly tail: number;
  /** The flush that last used it; its record belongs to that flush. */
  gen: number;
  /** Dropped from the index: a memo pointing here is stale. */
  dropped: boolean;
  /** This flush's record, from the bucket's first use in it until records() hands it out. */
  record: FlowRecord | undefined;
  /** Shared 5-tuples, made on first need (most buckets have none). */
  tuples: Set<string> | undefined;
  /** Contributions whose 5-tuple no other contribution has (see tupleShared). */
  uniqueTuples: number;
  srcLabels: Record<string, string> | undefined;
  dstLabels: Record<string, string> | undefined;
  policies: Set<string> | undefined;
  readonly srcAggr: string;
  readonly dstAggr: string;
}

export interface AggregateOptions {
  kind: AggregationKind;
  includeLabels: boolean;
  includePolicies: boolean;
  /** Kind 2's endpoint identities remembered at most (default 65,536; then started over). */
  maxEndpointIds?: number;
}

export interface Interval {
  startTime: number;
  endTime: number;
}

function name(e: Endpoint, kind: AggregationKind): string {
  return kind === AggregationKind.PrefixName ? e.aggregatedName : e.name;
}

/** The bucket `m` remembers for `c` in `owner`, when still valid. */
function remembered(
  m: KeyMemo | undefined,
  c: Contribution,
  kind: AggregationKind,
  owner: Aggregator,
): Bucket | undefined {
  if (m === undefined || m.memoKind !== kind || m.memoSrc !== c.src || m.memoDst !== c.dst) {
    return undefined;
  }
  const b = c.reporter === 'src' ? m.memoBucketSrc : m.memoBucketDst;
  return b === undefined || b.dropped || b.owner !== owner ? undefined : b;
}

function remember(m: KeyMemo | undefined, c: Contribution, kind: AggregationKind, b: Bucket): void {
  if (m === undefined) return;
  if (m.memoKind !== kind || m.memoSrc !== c.src || m.memoDst !== c.dst) {
    m.memoKind = kind;
    m.memoSrc = c.src;
    m.memoDst = c.dst;
    m.memoBucketSrc = undefined;
    m.memoBucketDst = undefined;
  }
  if (c.reporter === 'src') m.memoBucketSrc = b;
  else m.memoBucketDst = b;
}

/** The record of a bucket's first contribution in a flush: its key fields from `c`, sums zero. */
function freshRecord(c: Contribution, kind: AggregationKind, at: Interval): FlowRecord {
  const dropIps = kind === AggregationKind.PrefixName;
  return {
    startTime: at.startTime,
    endTime: at.endTime,
    srcType: c.src.type,
    srcNamespace: c.src.namespace,
    srcName: name(c.src, kind),
    srcLabels: '-',
    dstType: c.dst.type,
    dstNamespace: c.dst.namespace,
    dstName: name(c.dst, kind),
    dstLabels: '-',
    srcIP: dropIps ? '-' : c.srcIP,
    dstIP: dropIps ? '-' : c.dstIP,
    proto: c.proto,
    srcPort: c.srcPort === undefined || kind !== AggregationKind.Full ? '-' : c.srcPort,
    dstPort: c.dstPort === undefined ? '-' : c.dstPort,
    numFlows: 0,
    numFlowsStarted: 0,
    numFlowsCompleted: 0,
    reporter: c.reporter,
    packetsIn: 0,
    packetsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    action: c.action,
  };
}

/**
 * Merges per-connection contributions into records, one flush at a time:
 * begin(), add() per contribution (nothing per connection is held beyond its
 * bucket), records(). Records follow the order of first appearance. The
 * flow table keeps one across flushes (its buckets and endpoint ids too).
 */
export class Aggregator {
  /** Buckets used in the current flush, in order of first appearance. */
  private used: Bucket[] = [];
  /** Buckets used in the flush before: dropped by records() unless used again. */
  private before: Bucket[] = [];
  /** Kinds 0 and 1: buckets by key string. */
  private readonly byKey = new Map<string, Bucket>();
  /** Kind 2: buckets by source id, destination id, then port/protocol/reporter/action. */
  private readonly byIds = new Map<number, Map<number, Map<number, Bucket>>>();
  private readonly ids: EndpointIds;
  private gen = 0;
  private at: Interval = { startTime: 0, endTime: 0 };

  constructor(private readonly o: AggregateOptions) {
    this.ids = new EndpointIds(o.maxEndpointIds);
  }

  /** Buckets in the index (those the last flush used, until the next one ends). */
  get size(): number {
    let n = this.byKey.size;
    for (const bySrc of this.byIds.values()) for (const byDst of bySrc.values()) n += byDst.size;
    return n;
  }

  /** Starts the records of one interval. */
  begin(at: Interval): void {
    this.gen++;
    this.at = at;
    // Pod churn keeps adding identities: start over between flushes, never within one.
    if (this.ids.full) {
      for (const b of this.before) b.dropped = true;
      this.before = [];
      this.byIds.clear();
      this.ids.clear();
    }
  }

  add(c: Contribution): void {
    const o = this.o;
    let b = remembered(c.memo, c, o.kind, this);
    if (b === undefined) {
      b = o.kind === AggregationKind.PrefixName ? this.bucketByIds(c) : this.bucketByKey(c);
      remember(c.memo, c, o.kind, b);
    }
    if (b.gen !== this.gen) this.restart(b, c);
    else if (o.includeLabels) {
      b.srcLabels = intersectLabels(b.srcLabels ?? {}, c.src.labels);
      b.dstLabels = intersectLabels(b.dstLabels ?? {}, c.dst.labels);
    }
    const r = b.record!; // set by restart() in this flush
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

  /** A bucket's first contribution in this flush: a fresh record and sums. */
  private restart(b: Bucket, c: Contribution): void {
    b.gen = this.gen;
    b.record = freshRecord(c, this.o.kind, this.at);
    b.tuples = undefined;
    b.uniqueTuples = 0;
    b.srcLabels = this.o.includeLabels ? { ...c.src.labels } : undefined;
    b.dstLabels = this.o.includeLabels ? { ...c.dst.labels } : undefined;
    b.policies = undefined;
    this.used.push(b);
  }

  /** Kind 2: the key is the endpoints' ids, the destination port, protocol, reporter and action. */
  private bucketByIds(c: Contribution): Bucket {
    const srcId = this.ids.aggregateId(c.src);
    const dstId = this.ids.aggregateId(c.dst);
    // Port + 1 (0: none) above protocol (8 bits), reporter and action bits: a small integer.
    const tail =
      ((c.dstPort === undefined ? 0 : c.dstPort + 1) * 256 + c.proto) * 4 +
      (c.reporter === 'dst' ? 2 : 0) +
      (c.action === 'deny' ? 1 : 0);
    let bySrc = this.byIds.get(srcId);
    if (bySrc === undefined) {
      bySrc = new Map();
      this.byIds.set(srcId, bySrc);
    }
    let byDst = bySrc.get(dstId);
    if (byDst === undefined) {
      byDst = new Map();
      bySrc.set(dstId, byDst);
    }
    let b = byDst.get(tail);
    if (b === undefined) {
      b = this.newBucket(c, undefined, srcId, dstId, tail);
      byDst.set(tail, b);
    }
    return b;
  }

  /** Kinds 0 and 1: the key string of the record's key fields. */
  private bucketByKey(c: Contribution): Bucket {
    // Flat (join): the bucket keeps it across flushes.
    const key = [
      c.reporter,
      c.action,
      c.proto,
      c.src.type,
      c.src.namespace,
      c.src.name,
      c.dst.type,
      c.dst.namespace,
      c.dst.name,
      c.srcIP,
      c.dstIP,
      this.o.kind === AggregationKind.Full && c.srcPort !== undefined ? c.srcPort : '-',
      c.dstPort ?? '-',
    ].join('|');
    let b = this.byKey.get(key);
    if (b === undefined) {
      b = this.newBucket(c, key, -1, -1, -1);
      this.byKey.set(key, b);
    }
    return b;
  }

  /** A bucket for a key not in the index; add() starts its record (restart). */
  private newBucket(
    c: Contribution,
    key: string | undefined,
    srcId: number,
    dstId: number,
    tail: number,
  ): Bucket {
    return {
      owner: this,
      key,
      srcId,
      dstId,
      tail,
      gen: -1,
      dropped: false,
      record: undefined,
      tuples: undefined,
      uniqueTuples: 0,
      srcLabels: undefined,
      dstLabels: undefined,
      policies: undefined,
      srcAggr: c.src.aggregatedName,
      dstAggr: c.dst.aggregatedName,
    };
  }

  /** Removes a bucket from the index; memos pointing to it see it dropped. */
  private drop(b: Bucket): void {
    b.dropped = true;
    if (b.key !== undefined) {
      this.byKey.delete(b.key);
      return;
    }
    const bySrc = this.byIds.get(b.srcId);
    const byDst = bySrc?.get(b.dstId);
    if (bySrc === undefined || byDst === undefined) return;
    byDst.delete(b.tail);
    if (byDst.size === 0) bySrc.delete(b.dstId);
    if (bySrc.size === 0) this.byIds.delete(b.srcId);
  }

  /** The records of the flush begun last; buckets it did not use are dropped. */
  records(): FlowRecord[] {
    const o = this.o;
    for (const b of this.before) if (b.gen !== this.gen && !b.dropped) this.drop(b);
    const out: FlowRecord[] = [];
    for (const b of this.used) {
      const r = b.record!;
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
      // The record is the caller's now, and this flush's sets are done with
      // (the bucket may wait a flush for its next use).
      b.record = undefined;
      b.tuples = undefined;
      b.policies = undefined;
      b.srcLabels = undefined;
      b.dstLabels = undefined;
    }
    this.before = this.used;
    this.used = [];
    return out;
  }
}

/** Merges contributions into records (one interval); order of output follows first appearance. */
export function aggregate(
  contributions: Iterable<Contribution>,
  o: AggregateOptions & Interval,
): FlowRecord[] {
  const agg = new Aggregator(o);
  agg.begin(o);
  for (const c of contributions) agg.add(c);
  return agg.records();
}
