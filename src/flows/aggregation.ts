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
import { doubled } from '../util/typed-arrays.js';
import { HashCells, mix } from './hash-cells.js';

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

/** A bucket's key fields: the same in every record it gives (fixed when it is made). */
type BucketKey = Pick<
  FlowRecord,
  | 'srcType'
  | 'srcNamespace'
  | 'srcName'
  | 'dstType'
  | 'dstNamespace'
  | 'dstName'
  | 'srcIP'
  | 'dstIP'
  | 'proto'
  | 'srcPort'
  | 'dstPort'
  | 'reporter'
  | 'action'
> & { readonly srcAggr: string; readonly dstAggr: string };

function name(e: Endpoint, kind: AggregationKind): string {
  return kind === AggregationKind.PrefixName ? e.aggregatedName : e.name;
}

function bucketKey(c: Contribution, kind: AggregationKind): BucketKey {
  const dropIps = kind === AggregationKind.PrefixName;
  return {
    srcType: c.src.type,
    srcNamespace: c.src.namespace,
    srcName: name(c.src, kind),
    dstType: c.dst.type,
    dstNamespace: c.dst.namespace,
    dstName: name(c.dst, kind),
    srcIP: dropIps ? '-' : c.srcIP,
    dstIP: dropIps ? '-' : c.dstIP,
    proto: c.proto,
    srcPort: c.srcPort === undefined || kind !== AggregationKind.Full ? '-' : c.srcPort,
    dstPort: c.dstPort === undefined ? '-' : c.dstPort,
    reporter: c.reporter,
    action: c.action,
    srcAggr: c.src.aggregatedName,
    dstAggr: c.dst.aggregatedName,
  };
}

// A bucket's sums in one Float64Array: bucket × SW + field.
const S_PACKETS_IN = 0;
const S_PACKETS_OUT = 1;
const S_BYTES_IN = 2;
const S_BYTES_OUT = 3;
const S_STARTED = 4;
const S_COMPLETED = 5;
/** Contributions whose 5-tuple no other contribution has (see tupleShared). */
const S_UNIQUE = 6;
const SW = 8;
// Its bookkeeping in one Int32Array: bucket × MW + field.
/** The flush that last used it (its sums belong to that flush). */
const M_GEN = 0;
/** Raised whenever the bucket is dropped: memos made before no longer match. */
const M_INCARNATION = 1;
/** Kind 2: its key in the index (source id, destination id, the rest). */
const M_SRC_ID = 2;
const M_DST_ID = 3;
const M_TAIL = 4;
const MW = 5;

/**
 * Merges per-connection contributions into records, one flush at a time:
 * begin(), add() per contribution (nothing per connection is held beyond its
 * bucket), records(). Records follow the order of first appearance. The
 * flow table keeps one across flushes, with its buckets and endpoint ids.
 *
 * A bucket is a number: its sums and bookkeeping live in typed arrays (one
 * flush adds to the same few thousand buckets from 100,000 connections, so
 * they stay in cache), its key fields and rarely used sets in arrays by
 * bucket. A caller may keep a memo of the bucket a contribution went to
 * (see add()): passed with a contribution of the same key fields (a
 * connection whose endpoints did not change, from the same reporter side),
 * it skips finding the bucket. A memo holds while its bucket is kept (it is
 * dropped after a flush that did not use it); memos are this aggregator's only.
 */
export class Aggregator {
  private sums = new Float64Array(64 * SW);
  private meta = new Int32Array(64 * MW);
  /** Key fields by bucket (undefined: a free bucket number). */
  private readonly keys: (BucketKey | undefined)[] = [];
  /** Kinds 0 and 1: the key string by bucket. */
  private readonly keyText: (string | undefined)[] = [];
  /** Shared 5-tuples by bucket, made on first need (most buckets have none). */
  private readonly tuples: (Set<string> | undefined)[] = [];
  private readonly srcLabels: (Record<string, string> | undefined)[] = [];
  private readonly dstLabels: (Record<string, string> | undefined)[] = [];
  private readonly policies: (Set<string> | undefined)[] = [];
  private readonly free: number[] = [];
  /** Buckets used in the current flush, in order of first appearance. */
  private used: number[] = [];
  /** Buckets used in the flush before: dropped by records() unless used again. */
  private before: number[] = [];
  /** Kinds 0 and 1: buckets by key string. */
  private readonly byKey = new Map<string, number>();
  /** Kind 2: bucket + 1 by the hash of (source id, destination id, tail). */
  private readonly byIds = new HashCells(256);
  private readonly ids: EndpointIds;
  private gen = 0;
  private at: Interval = { startTime: 0, endTime: 0 };

  constructor(private readonly o: AggregateOptions) {
    this.ids = new EndpointIds(o.maxEndpointIds);
  }

  /** Buckets in the index (those the last flush used, until the next one ends). */
  get size(): number {
    return this.byKey.size + this.byIds.size;
  }

  /** Starts the records of one interval. */
  begin(at: Interval): void {
    this.gen++;
    this.at = at;
    // Pod churn keeps adding identities: start over between flushes, never within one.
    if (this.ids.full) {
      for (const b of this.before) this.drop(b);
      this.before = [];
      this.ids.clear();
    }
  }

  /**
   * Adds one contribution. `memo[at]`, `memo[at + 1]`: two cells the caller
   * keeps for contributions with the same key fields (one reporter side of a
   * connection whose endpoints did not change), which add() reads and writes:
   * the bucket used last (+1; 0: none) and its incarnation. A stale memo is
   * recognised and ignored. Ints, so nothing is boxed per contribution.
   */
  add(c: Contribution, memo?: Int32Array, at = 0): void {
    let b = memo !== undefined ? this.remembered(memo, at) : -1;
    if (b < 0) {
      b = this.o.kind === AggregationKind.PrefixName ? this.bucketByIds(c) : this.bucketByKey(c);
      if (memo !== undefined) {
        memo[at] = b + 1;
        memo[at + 1] = this.meta[b * MW + M_INCARNATION]!;
      }
    }
    if (this.meta[b * MW + M_GEN] !== this.gen) this.restart(b, c);
    else if (this.o.includeLabels) {
      this.srcLabels[b] = intersectLabels(this.srcLabels[b] ?? {}, c.src.labels);
      this.dstLabels[b] = intersectLabels(this.dstLabels[b] ?? {}, c.dst.labels);
    }
    const s = this.sums;
    const k = b * SW;
    if (c.tupleShared === false) s[k + S_UNIQUE] = s[k + S_UNIQUE]! + 1;
    else {
      let set = this.tuples[b];
      if (set === undefined) {
        set = new Set();
        this.tuples[b] = set;
      }
      set.add(
        c.tuple ?? `${c.proto}|${c.srcIP}|${c.dstIP}|${c.srcPort ?? '-'}|${c.dstPort ?? '-'}`,
      );
    }
    if (c.started) s[k + S_STARTED] = s[k + S_STARTED]! + 1;
    if (c.completed) s[k + S_COMPLETED] = s[k + S_COMPLETED]! + 1;
    s[k + S_PACKETS_IN] = s[k + S_PACKETS_IN]! + c.packetsIn;
    s[k + S_PACKETS_OUT] = s[k + S_PACKETS_OUT]! + c.packetsOut;
    s[k + S_BYTES_IN] = s[k + S_BYTES_IN]! + c.bytesIn;
    s[k + S_BYTES_OUT] = s[k + S_BYTES_OUT]! + c.bytesOut;
    if (c.policies && c.policies.length > 0) {
      let set = this.policies[b];
      if (set === undefined) {
        set = new Set();
        this.policies[b] = set;
      }
      for (const p of c.policies) set.add(p);
    }
  }

  /** The records of the flush begun last; buckets it did not use are dropped. */
  records(): FlowRecord[] {
    const o = this.o;
    const meta = this.meta;
    // (No bucket is dropped between begin() and here, so these are all still theirs.)
    for (const b of this.before) if (meta[b * MW + M_GEN] !== this.gen) this.drop(b);
    const out: FlowRecord[] = [];
    const s = this.sums;
    const { startTime, endTime } = this.at;
    for (const b of this.used) {
      const t = this.keys[b]!;
      const k = b * SW;
      const r: FlowRecord = {
        startTime,
        endTime,
        srcType: t.srcType,
        srcNamespace: t.srcNamespace,
        srcName: t.srcName,
        srcLabels: o.includeLabels ? formatLabels(this.srcLabels[b], true) : '-',
        dstType: t.dstType,
        dstNamespace: t.dstNamespace,
        dstName: t.dstName,
        dstLabels: o.includeLabels ? formatLabels(this.dstLabels[b], true) : '-',
        srcIP: t.srcIP,
        dstIP: t.dstIP,
        proto: t.proto,
        srcPort: t.srcPort,
        dstPort: t.dstPort,
        numFlows: small(s[k + S_UNIQUE]! + (this.tuples[b]?.size ?? 0)),
        numFlowsStarted: small(s[k + S_STARTED]!),
        numFlowsCompleted: small(s[k + S_COMPLETED]!),
        reporter: t.reporter,
        packetsIn: small(s[k + S_PACKETS_IN]!),
        packetsOut: small(s[k + S_PACKETS_OUT]!),
        bytesIn: small(s[k + S_BYTES_IN]!),
        bytesOut: small(s[k + S_BYTES_OUT]!),
        action: t.action,
      };
      if (o.includePolicies) {
        const policies = this.policies[b];
        r.srcNameAggr = t.srcAggr;
        r.dstNameAggr = t.dstAggr;
        r.policies = policies !== undefined ? [...policies].sort().join('|') : '-';
      }
      out.push(r);
      // This flush's sets are done with (the bucket may wait a flush for its next use).
      this.tuples[b] = undefined;
      this.policies[b] = undefined;
      this.srcLabels[b] = undefined;
      this.dstLabels[b] = undefined;
    }
    this.before = this.used;
    this.used = [];
    return out;
  }

  /** The bucket a memo names, if it is still the one the memo was made for; else -1. */
  private remembered(memo: Int32Array, at: number): number {
    const b = memo[at]! - 1;
    const incarnation = memo[at + 1];
    return b >= 0 &&
      b < this.keys.length &&
      this.meta[b * MW + M_INCARNATION] === incarnation &&
      this.keys[b] !== undefined
      ? b
      : -1;
  }

  /** A bucket's first contribution in this flush: its sums start at zero. */
  private restart(b: number, c: Contribution): void {
    this.meta[b * MW + M_GEN] = this.gen;
    this.sums.fill(0, b * SW, b * SW + SW);
    this.tuples[b] = undefined;
    this.policies[b] = undefined;
    this.srcLabels[b] = this.o.includeLabels ? { ...c.src.labels } : undefined;
    this.dstLabels[b] = this.o.includeLabels ? { ...c.dst.labels } : undefined;
    this.used.push(b);
  }

  /** Kind 2: the key is the endpoints' ids, the destination port, protocol, reporter and action. */
  private bucketByIds(c: Contribution): number {
    const srcId = this.ids.aggregateId(c.src);
    const dstId = this.ids.aggregateId(c.dst);
    // Port + 1 (0: none) above protocol (8 bits), reporter and action bits: a small integer.
    const tail =
      ((c.dstPort === undefined ? 0 : c.dstPort + 1) * 256 + c.proto) * 4 +
      (c.reporter === 'dst' ? 2 : 0) +
      (c.action === 'deny' ? 1 : 0);
    const hash = idsHash(srcId, dstId, tail);
    const ix = this.byIds;
    const meta = this.meta;
    for (let p = ix.first(hash); p >= 0; p = ix.next(p, hash)) {
      const b = ix.value(p) - 1;
      const m = b * MW;
      if (
        meta[m + M_SRC_ID] === srcId &&
        meta[m + M_DST_ID] === dstId &&
        meta[m + M_TAIL] === tail
      ) {
        return b;
      }
    }
    const b = this.newBucket(c);
    const m = b * MW;
    this.meta[m + M_SRC_ID] = srcId;
    this.meta[m + M_DST_ID] = dstId;
    this.meta[m + M_TAIL] = tail;
    ix.insert(hash, b + 1);
    return b;
  }

  /** Kinds 0 and 1: the key string of the record's key fields. */
  private bucketByKey(c: Contribution): number {
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
      b = this.newBucket(c);
      this.keyText[b] = key;
      this.byKey.set(key, b);
    }
    return b;
  }

  /** A bucket number for a key not in the index; add() starts its sums (restart). */
  private newBucket(c: Contribution): number {
    let b = this.free.pop();
    if (b === undefined) {
      b = this.keys.length;
      this.keys.push(undefined);
      this.keyText.push(undefined);
      this.tuples.push(undefined);
      this.srcLabels.push(undefined);
      this.dstLabels.push(undefined);
      this.policies.push(undefined);
      if ((b + 1) * MW > this.meta.length) this.grow();
    }
    this.keys[b] = bucketKey(c, this.o.kind);
    this.meta[b * MW + M_GEN] = -1;
    return b;
  }

  private grow(): void {
    this.meta = doubled(this.meta);
    this.sums = doubled(this.sums);
  }

  /** Removes a bucket from the index and frees its number; its tickets no longer match. */
  private drop(b: number): void {
    const m = b * MW;
    const key = this.keyText[b];
    if (key !== undefined) this.byKey.delete(key);
    else {
      const hash = idsHash(
        this.meta[m + M_SRC_ID]!,
        this.meta[m + M_DST_ID]!,
        this.meta[m + M_TAIL]!,
      );
      this.byIds.remove(hash, b + 1);
    }
    this.meta[m + M_INCARNATION] = (this.meta[m + M_INCARNATION]! + 1) | 0;
    this.keys[b] = undefined;
    this.keyText[b] = undefined;
    this.tuples[b] = undefined;
    this.policies[b] = undefined;
    this.srcLabels[b] = undefined;
    this.dstLabels[b] = undefined;
    this.free.push(b);
  }
}

/**
 * The same number, as an int32 when it is one. Read from a Float64Array, a
 * sum is a double, and a record field holding doubles boxes each (a third
 * of a record's bytes); as int32s V8 keeps them in the record itself.
 */
function small(v: number): number {
  const i = v | 0;
  return i === v ? i : v;
}

function idsHash(srcId: number, dstId: number, tail: number): number {
  return mix(Math.imul(mix(srcId), 0x9e3779b1) ^ mix(dstId ^ Math.imul(tail, 0x85ebca6b)));
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
