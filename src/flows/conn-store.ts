/**
 * The tracked connections and the completed ones still remembered
 * (tombstones), as a struct of arrays: each is a slot number. Its numbers
 * live in one Float64Array (counters, baselines, times) and one Int32Array
 * (identity, phase, flags), its strings and object references in plain
 * arrays indexed by slot; the index finding a slot by the event's identity
 * is an open-addressing table of slot numbers. A connection that completes
 * becomes a tombstone in its own slot: same identity, same index cell.
 *
 * Why: with 100,000 connections, an object per connection (and a Map entry,
 * and boxed doubles) made creating one cost more than decoding ten events,
 * most of it allocation and the collector copying and marking the objects.
 * Here a connection allocates nothing once the arrays have grown, and the
 * collector sees a few arrays instead of 100,000 objects.
 *
 * Slots are reused after release; the arrays grow by doubling and never
 * shrink: their size follows the most slots ever held at once (tracked
 * connections, at most maxFlows, plus the tombstones still remembered).
 */
import type { ConntrackEvent } from '../conntrack/types.js';
import type { Endpoint } from '../endpoints/types.js';
import { doubled } from '../util/typed-arrays.js';
import { PhaseKind } from './connection-state.js';
import { HashCells, mix } from './hash-cells.js';

// --- doubles per slot ---------------------------------------------------------
/** Latest kernel counters. */
export const PO = 0;
export const BO = 1;
export const PR = 2;
export const BR = 3;
/** What was already reported (the baseline). */
export const RPO = 4;
export const RBO = 5;
export const RPR = 6;
export const RBR = 7;
/** Start time (ms), the endpoint lookup time. */
export const START = 8;
/** The kernel's start time (ms), NaN when the kernel gave none. */
export const KSTART = 9;
/** The endpoint cache's version when srcEp/dstEp were looked up (-1: never). */
export const EP_VERSION = 10;
/** Tombstones: forgotten after this instant (ms), whatever happens (kept across restarts). */
export const UNTIL = 11;
/** Tombstones: since when dumps no longer list it (NaN: listed, or no dump since). */
export const ABSENT_SINCE = 12;
export const DW = 13;

// --- int32s per slot ----------------------------------------------------------
/** CTA_ID (a u32, stored as its int32 bits). */
export const ID = 0;
export const ZONE = 1;
export const PROTO = 2;
/** Original source and destination as IPv4 u32 bits (when F_V4). */
export const SRC4 = 3;
export const DST4 = 4;
/** sport or ICMP type, dport or ICMP id (-1 when absent). */
export const A = 5;
export const B = 6;
/** The reply tuple's source port: the real destination port (-1: none). */
export const DPORT = 7;
/** The 5-tuple's hash in the table's TupleCounts. */
export const TUPLE_HASH = 8;
/** The dump generation that last listed it (or created it; for a tombstone, completed it). */
export const DUMP_GEN = 9;
/** Its PhaseKind. */
export const PHASE = 10;
export const FLAGS = 11;
/** The real destination (reply tuple's source) as IPv4 u32 bits (when F_RDST4). */
export const RDST4 = 12;
export const IW = 13;

// --- memo int32s per slot (an array of their own: only flushes read them) ----
/**
 * The aggregator's memo of the buckets of its last flush, two cells per
 * reporter side (see Aggregator.add): valid while its endpoints stay the
 * same objects (srcEp/dstEp). Zero: none.
 */
export const MEMO_SRC = 0;
export const MEMO_DST = 2;
export const MEMO_W = 4;

// --- FLAGS bits ---------------------------------------------------------------
/** The slot holds a connection. */
export const F_LIVE = 1;
/** Its DESTROY was received. */
export const F_DESTROYED = 2;
/** Its NEW was received (a connection first seen in a dump may still have one queued). */
export const F_SAW_NEW = 4;
/** Ended before its start was reported (the next flush reports both). */
export const F_START_PENDING = 8;
/** SRC4/DST4 hold the addresses (IPv4 known as numbers). */
export const F_V4 = 16;
/** A completed connection remembered (its baseline in RPO..RBR), not a tracked one. */
export const F_TOMB = 32;
/** Tombstones: gone from the kernel without its DESTROY reaching us (counted once). */
export const F_GONE = 64;
/** RDST4 holds the real destination (IPv4 known as a number). */
export const F_RDST4 = 128;
/** With srcEp/dstEp: the source, the destination is a local endpoint. */
export const F_SRC_LOCAL = 256;
export const F_DST_LOCAL = 512;
/**
 * Another slot had its CTA_ID when either was indexed (it may be gone
 * since): only such a slot can have a twin, so entombing any other skips
 * the search for one.
 */
export const F_ID_SHARED = 1024;
/**
 * Listed by the agent's start-up dump, begun before its event socket opened:
 * the kernel never sends this connection's NEW to us.
 */
export const F_PREEXISTING = 2048;

/** What identifies a connection besides its id (events, slots, parsed snapshot keys). */
export interface ConnIdentity {
  readonly id: number;
  readonly zone: number;
  readonly proto: number;
  readonly origSrc: string;
  readonly origDst: string;
  /** The same IPv4 addresses as numbers, -1 when not IPv4 or not known (then the text is compared). */
  readonly origSrc4: number;
  readonly origDst4: number;
  /** sport, or the ICMP type (-1 when absent). */
  readonly origA: number;
  /** dport, or the ICMP id (-1 when absent). */
  readonly origB: number;
}

/** The original tuple's ports, or the ICMP type and id (-1 when absent). */
export function portsOrIcmp(ev: ConntrackEvent, ports: boolean): [number, number] {
  return [portA(ev, ports), portB(ev, ports)];
}

/** The first of portsOrIcmp, without the array (the per-event path). */
export function portA(ev: ConntrackEvent, ports: boolean): number {
  return ports ? ev.orig.sport : (ev.orig.icmpType ?? -1);
}

export function portB(ev: ConntrackEvent, ports: boolean): number {
  return ports ? ev.orig.dport : (ev.orig.icmpId ?? -1);
}

/** What add() needs to fill a slot (besides the numbers the caller writes). */
export interface SlotIdentity {
  id: number;
  zone: number;
  proto: number;
  origSrc: string;
  origDst: string;
  /** IPv4 addresses as u32, or -1 (then the text is compared). */
  origSrc4: number;
  origDst4: number;
  a: number;
  b: number;
  /** The real destination (reply tuple's source), as a u32 when IPv4 (else -1), and its port (-1: none). */
  dst: string;
  dst4: number;
  dport: number;
  tupleHash: number;
}

/** `a` copied into an array of `capacity` elements, the rest `fill` (no holes left). */
function extended<T>(a: readonly T[], capacity: number, fill: T): T[] {
  const b = new Array<T>(capacity).fill(fill);
  for (let k = 0; k < a.length; k++) b[k] = a[k]!;
  return b;
}

export class ConnStore {
  /** Doubles: slot × DW + field. Read through this after add(): growing replaces it. */
  d: Float64Array;
  /** Int32s: slot × IW + field. Read through this after add(). */
  i: Int32Array;
  /** Bucket memos: slot × MEMO_W + MEMO_SRC/MEMO_DST. Read through this after add(). */
  memo: Int32Array;
  origSrc: string[] = [];
  origDst: string[] = [];
  /** The reply tuple's source: the real destination (the backend after DNAT). */
  dst: string[] = [];
  /** The 5-tuple as text (numFlows of a shared 5-tuple, the policy join), built on first need. */
  tuple: (string | undefined)[] = [];
  /**
   * Endpoint lookups at the start: reused while the cache's version is
   * EP_VERSION; the endpoints MEMO_SRC/MEMO_DST were made for.
   */
  srcEp: (Endpoint | undefined)[] = [];
  dstEp: (Endpoint | undefined)[] = [];

  /** Slots handed out so far (live or free). */
  private slots = 0;
  private readonly free: number[] = [];
  private count = 0;
  private tombCount = 0;
  /** Slots by mix(CTA_ID): (hash, slot + 1) cells. */
  private readonly index: HashCells;
  /** What gather() found: slots with one identity (valid until the next gather or find). */
  hits = new Int32Array(4);

  /** `initialSlots`: a power of two (tests use small ones to wrap the index). */
  constructor(initialSlots = 1024) {
    this.d = new Float64Array(initialSlots * DW);
    this.i = new Int32Array(initialSlots * IW);
    this.memo = new Int32Array(initialSlots * MEMO_W);
    this.extendReferences();
    this.index = new HashCells(initialSlots * 2);
  }

  /** Tracked connections (tombstones not counted). */
  get size(): number {
    return this.count;
  }

  /** Tombstones. */
  get tombs(): number {
    return this.tombCount;
  }

  /** The number of slots ever handed out: live ones are below it (see isLive). */
  get extent(): number {
    return this.slots;
  }

  isLive(s: number): boolean {
    return this.hasFlag(s, F_LIVE);
  }

  isTomb(s: number): boolean {
    return this.hasFlag(s, F_TOMB);
  }

  hasFlag(s: number, bit: number): boolean {
    return (this.i[s * IW + FLAGS]! & bit) !== 0;
  }

  setFlags(s: number, bits: number): void {
    this.i[s * IW + FLAGS] = this.i[s * IW + FLAGS]! | bits;
  }

  clearFlags(s: number, bits: number): void {
    this.i[s * IW + FLAGS] = this.i[s * IW + FLAGS]! & ~bits;
  }

  /** A new connection's slot, numbers zeroed but for its identity, indexed. */
  add(x: SlotIdentity): number {
    const s = this.alloc();
    const i = this.i;
    const ib = s * IW;
    i[ib + ID] = x.id;
    i[ib + ZONE] = x.zone;
    i[ib + PROTO] = x.proto;
    const v4 = x.origSrc4 >= 0 && x.origDst4 >= 0;
    i[ib + SRC4] = v4 ? x.origSrc4 : 0;
    i[ib + DST4] = v4 ? x.origDst4 : 0;
    i[ib + A] = x.a;
    i[ib + B] = x.b;
    i[ib + DPORT] = x.dport;
    i[ib + TUPLE_HASH] = x.tupleHash;
    i[ib + RDST4] = Math.max(x.dst4, 0);
    i[ib + FLAGS] = F_LIVE | (v4 ? F_V4 : 0) | (x.dst4 >= 0 ? F_RDST4 : 0);
    this.d[s * DW + KSTART] = Number.NaN;
    this.d[s * DW + EP_VERSION] = -1;
    this.d[s * DW + ABSENT_SINCE] = Number.NaN;
    this.origSrc[s] = x.origSrc;
    this.origDst[s] = x.origDst;
    this.dst[s] = x.dst;
    this.insert(s);
    this.count++;
    return s;
  }

  /** Frees a slot (its object references dropped, so endpoints and buckets can be collected). */
  remove(s: number): void {
    if (!this.isLive(s)) return;
    this.unindex(s);
    if (this.isTomb(s)) this.tombCount--;
    else this.count--;
    this.i[s * IW + FLAGS] = 0;
    this.dropReferences(s);
    this.free.push(s);
  }

  /**
   * Makes a tracked connection a tombstone in place (same identity, same
   * index cell): its baseline stays in RPO..RBR, its start time in KSTART.
   * One tombstone per identity: the kernel holds one connection per tuple,
   * so only the newest can still be listed or destroyed. An older one than
   * the tombstone already there is freed instead.
   */
  entomb(s: number, untilMs: number, gen: number, gone: boolean): void {
    if (this.tombCount > 0 && this.hasFlag(s, F_ID_SHARED)) {
      const old = this.findTwin(s, true);
      if (old >= 0) {
        if (this.startOf(old) > this.startOf(s)) {
          this.remove(s);
          return;
        }
        this.remove(old);
      }
    }
    const ib = s * IW;
    this.i[ib + FLAGS] = this.i[ib + FLAGS]! | F_TOMB | (gone ? F_GONE : 0);
    this.i[ib + PHASE] = PhaseKind.Ended;
    this.i[ib + DUMP_GEN] = gen;
    this.d[s * DW + UNTIL] = untilMs;
    this.d[s * DW + ABSENT_SINCE] = Number.NaN;
    this.dropReferences(s);
    this.count--;
    this.tombCount++;
  }

  /** When slot `s` began: the kernel's start time, else when the table first saw it. */
  startOf(s: number): number {
    const kstart = this.d[s * DW + KSTART]!;
    return Number.isNaN(kstart) ? this.d[s * DW + START]! : kstart;
  }

  /** A new tombstone's slot (a completed connection restored after a restart), replacing one with its identity. */
  addTomb(x: SlotIdentity, untilMs: number, gone: boolean): number {
    const s = this.add(x);
    this.entomb(s, untilMs, 0, gone);
    return s;
  }

  /**
   * The slot of the tracked connection (tomb false) or tombstone (tomb true)
   * with the event's identity (`a`/`b` as portsOrIcmp), or -1. When the
   * kernel reopened the 5-tuple under the same id several may match: this
   * is the first; gather() gives them all.
   */
  find(ev: ConntrackEvent, a: number, b: number, tomb: boolean): number {
    const n = this.gather(ev, a, b);
    const want = tomb ? F_TOMB : 0;
    for (let k = 0; k < n; k++) {
      const s = this.hits[k]!;
      if ((this.i[s * IW + FLAGS]! & F_TOMB) === want) return s;
    }
    return -1;
  }

  /**
   * Every slot (connections and tombstones) with the event's identity, into
   * `hits`; returns how many. Usually none or one: more only where the
   * kernel reopened the 5-tuple under the same CTA_ID (the same slab slot).
   */
  gather(ev: ConntrackEvent, a: number, b: number): number {
    const o = ev.orig;
    // Numbers when the event has them: reading a decoder view's address text would format it.
    const v4 = o.family === 4 && o.src4 !== undefined && o.dst4 !== undefined;
    return this.collectBy(ev.id, ev.zone, o.proto, a, b, v4, o.src4 ?? 0, o.dst4 ?? 0, o, -1);
  }

  /** Another slot with the same identity as slot `s`, a tombstone or not, or -1. */
  findTwin(s: number, tomb: boolean): number {
    const ib = s * IW;
    const i = this.i;
    const v4 = (i[ib + FLAGS]! & F_V4) !== 0;
    const text = { src: this.origSrc[s]!, dst: this.origDst[s]! };
    const n = this.collectBy(
      i[ib + ID]!,
      i[ib + ZONE]!,
      i[ib + PROTO]!,
      i[ib + A]!,
      i[ib + B]!,
      v4,
      i[ib + SRC4]!,
      i[ib + DST4]!,
      text,
      s,
    );
    const want = tomb ? F_TOMB : 0;
    for (let k = 0; k < n; k++) {
      const t = this.hits[k]!;
      if ((i[t * IW + FLAGS]! & F_TOMB) === want) return t;
    }
    return -1;
  }

  /** The slots with an identity into `hits` (growing it when needed); returns how many. */
  private collectBy(
    id: number,
    zone: number,
    proto: number,
    a: number,
    b: number,
    v4: boolean,
    src4: number,
    dst4: number,
    text: { readonly src: string; readonly dst: string },
    /** A slot not to answer (findTwin's own; -1: none). */
    except: number,
  ): number {
    const id32 = id | 0;
    const s4 = src4 | 0;
    const d4 = dst4 | 0;
    const ix = this.index;
    const i = this.i;
    const hash = mix(id32);
    let n = 0;
    for (let p = ix.first(hash); p >= 0; p = ix.next(p, hash)) {
      const s = ix.value(p) - 1;
      const ib = s * IW;
      const flags = i[ib + FLAGS]!;
      if (
        s === except ||
        i[ib + ID] !== id32 ||
        i[ib + ZONE] !== zone ||
        i[ib + PROTO] !== proto ||
        i[ib + A] !== a ||
        i[ib + B] !== b
      ) {
        continue;
      }
      // Address text only when a side lacks the numbers (reading a view's text formats it).
      const same =
        v4 && (flags & F_V4) !== 0
          ? i[ib + SRC4] === s4 && i[ib + DST4] === d4
          : this.origSrc[s] === text.src && this.origDst[s] === text.dst;
      if (!same) continue;
      if (n === this.hits.length) this.hits = doubled(this.hits);
      this.hits[n++] = s;
    }
    return n;
  }

  private dropReferences(s: number): void {
    this.tuple[s] = undefined;
    this.srcEp[s] = undefined;
    this.dstEp[s] = undefined;
  }

  /** A slot's identity (CTA_ID and IPv4 addresses as the kernel's u32s; -1 where not numbers). */
  identity(s: number): ConnIdentity {
    const ib = s * IW;
    const i = this.i;
    const v4 = this.hasFlag(s, F_V4);
    return {
      id: i[ib + ID]! >>> 0,
      zone: i[ib + ZONE]!,
      proto: i[ib + PROTO]!,
      origSrc: this.origSrc[s]!,
      origDst: this.origDst[s]!,
      origSrc4: v4 ? i[ib + SRC4]! >>> 0 : -1,
      origDst4: v4 ? i[ib + DST4]! >>> 0 : -1,
      origA: i[ib + A]!,
      origB: i[ib + B]!,
    };
  }

  private alloc(): number {
    let s = this.free.pop();
    if (s === undefined) {
      s = this.slots++;
      if (this.slots * DW > this.d.length) this.grow();
    } else {
      this.d.fill(0, s * DW, (s + 1) * DW);
      this.i.fill(0, s * IW, (s + 1) * IW);
      this.memo.fill(0, s * MEMO_W, (s + 1) * MEMO_W);
    }
    return s;
  }

  private grow(): void {
    this.d = doubled(this.d);
    this.i = doubled(this.i);
    this.memo = doubled(this.memo);
    this.extendReferences();
  }

  /**
   * The reference arrays to the typed arrays' capacity, in one go when they
   * grow rather than a push per new slot (a tenth of a NEW's cost): one
   * allocation each, where pushing reallocates a large array several times.
   */
  private extendReferences(): void {
    const capacity = this.d.length / DW;
    this.tuple = extended(this.tuple, capacity, undefined);
    this.srcEp = extended(this.srcEp, capacity, undefined);
    this.dstEp = extended(this.dstEp, capacity, undefined);
    this.origSrc = extended(this.origSrc, capacity, '');
    this.origDst = extended(this.origDst, capacity, '');
    this.dst = extended(this.dst, capacity, '');
  }

  private insert(s: number): void {
    // mix() is a bijection: the same hash is the same CTA_ID.
    const other = this.index.insert(mix(this.i[s * IW + ID]!), s + 1);
    if (other !== 0) {
      this.setFlags(s, F_ID_SHARED);
      this.setFlags(other - 1, F_ID_SHARED);
    }
  }

  private unindex(s: number): void {
    this.index.remove(mix(this.i[s * IW + ID]!), s + 1);
  }
}
