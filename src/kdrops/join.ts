/**
 * With `denies.source: both`, a packet that an NFLOG deny rule logged and
 * then dropped reaches us twice: as an NFLOG packet and as a kfree_skb event
 * with reason NETFILTER_DROP. It must count once. The two arrive on
 * different sockets, in either order, within a few drain ticks of each other
 * (both happen in the same softirq; the longest wait of a pair measured here
 * was 15, 21 and 158 ms in three runs with the 10 ms drain tick, on a busy
 * 2-core machine: the 1 s default leaves room).
 *
 * So NETFILTER_DROP events are matched to NFLOG deny packets by the packet's
 * identity: protocol, addresses, ports, IPv4 id and IP length. The match is
 * a multiset (two identical datagrams, e.g. UDP with id 0, match two NFLOG
 * packets), and waits `windowMs` for the other side:
 *  - an NFLOG deny is remembered for windowMs; a kernel drop arriving in
 *    that time consumes one remembered copy and is not counted again;
 *  - a kernel drop with no NFLOG copy is held for windowMs; an NFLOG deny
 *    arriving in that time consumes it; after windowMs it is released and
 *    counted as a kernel deny (a DROP rule without NFLOG, or an NFLOG message
 *    the socket lost).
 * Pure: time is passed in.
 */
import type { KernelDrop } from './types.js';

/** The fields of a packet (an NFLOG packet's or a drop event's) that make its identity. */
export type PacketIdentity = Pick<
  KernelDrop,
  'proto' | 'src' | 'dst' | 'sport' | 'dport' | 'bytes'
> & {
  readonly ipId?: number | undefined;
};

function identity(p: PacketIdentity): string {
  return [p.proto, p.src, p.dst, p.sport, p.dport, p.ipId ?? 0, p.bytes].join('|');
}

interface Timed<T> {
  readonly key: string;
  readonly atMs: number;
  readonly value: T;
  /** Consumed by the other side before it expired. */
  gone: boolean;
}

/** A multiset of values by key with arrival order (oldest first), for expiry. */
class TimedBag<T> {
  private readonly byKey = new Map<string, Timed<T>[]>();
  private readonly order: Timed<T>[] = [];
  private head = 0;

  get size(): number {
    return this.order.length - this.head;
  }

  add(key: string, atMs: number, value: T): void {
    const t: Timed<T> = { key, atMs, value, gone: false };
    const list = this.byKey.get(key);
    if (list === undefined) this.byKey.set(key, [t]);
    else list.push(t);
    this.order.push(t);
  }

  /** Removes the oldest entry with this key and returns when it arrived; undefined when there was none. */
  take(key: string): number | undefined {
    const list = this.byKey.get(key);
    if (list === undefined) return undefined;
    const t = list.shift()!;
    if (list.length === 0) this.byKey.delete(key);
    t.gone = true;
    return t.atMs;
  }

  /** Removes and returns the values that arrived at or before `untilMs`, oldest first. */
  expire(untilMs: number): T[] {
    const out: T[] = [];
    while (this.head < this.order.length) {
      const t = this.order[this.head]!;
      if (!t.gone && t.atMs > untilMs) break;
      this.head++;
      if (t.gone) continue;
      this.take(t.key);
      out.push(t.value);
    }
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order.splice(0, this.head);
      this.head = 0;
    }
    return out;
  }
}

export interface DenyJoinStats {
  /** Kernel NETFILTER_DROP events matched to an NFLOG deny (counted once, by NFLOG). */
  matched: number;
  /** Kernel drops released unmatched (counted as kernel denies). */
  unmatched: number;
  /** The longest wait of a matched pair for its other half, ms (how much of the window is used). */
  maxLagMs: number;
}

export class DenyJoin {
  private readonly nflog = new TimedBag<true>();
  private readonly held = new TimedBag<KernelDrop>();
  readonly stats: DenyJoinStats = { matched: 0, unmatched: 0, maxLagMs: 0 };

  constructor(private readonly windowMs: number) {}

  /** NFLOG deny packets (only denies: an allowed packet is never dropped by its rule). */
  noteNflogDenies(packets: readonly PacketIdentity[], nowMs: number): void {
    for (const p of packets) {
      const key = identity(p);
      const at = this.held.take(key);
      if (at !== undefined) this.matched(nowMs - at);
      else this.nflog.add(key, nowMs, true);
    }
  }

  /** NETFILTER_DROP events: those already logged by NFLOG are consumed, the rest held. */
  offerKernel(drops: readonly KernelDrop[], nowMs: number): void {
    for (const d of drops) {
      const key = identity(d);
      const at = this.nflog.take(key);
      if (at !== undefined) this.matched(nowMs - at);
      else this.held.add(key, nowMs, d);
    }
  }

  private matched(lagMs: number): void {
    this.stats.matched++;
    if (lagMs > this.stats.maxLagMs) this.stats.maxLagMs = lagMs;
  }

  /** Kernel drops held for windowMs with no NFLOG copy (all of them with `all`): count these. */
  release(nowMs: number, all = false): KernelDrop[] {
    const until = all ? Number.POSITIVE_INFINITY : nowMs - this.windowMs;
    this.nflog.expire(until);
    const out = this.held.expire(until);
    this.stats.unmatched += out.length;
    return out;
  }

  /** Kernel drops waiting for their window. */
  get holding(): number {
    return this.held.size;
  }
}
