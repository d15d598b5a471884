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
 * The arrays are this module's: callers hold slot numbers and change a slot
 * through named transitions (end, entomb, raise, baselines; the phases in
 * connection-state.ts), never through the layout.
 *
 * Slots are reused after release; the arrays grow by doubling and never
 * shrink: their size follows the most slots ever held at once (tracked
 * connections, at most maxFlows, plus the tombstones still remembered).
 */
import type { ConntrackEvent } from '../conntrack/types.js';
import type { Endpoint } from '../endpoints/types.js';
import { hasPorts } from '../util/ip-proto.js';
import { doubled } from '../util/typed-arrays.js';
import {
  type BaselineRows,
  R_A,
  R_B,
  R_BO,
  R_BR,
  R_COMPLETED,
  R_DST4,
  R_FLAGS,
  R_ID,
  R_KSTART,
  R_PO,
  R_PR,
  R_PROTO,
  R_SRC4,
  R_UNTIL,
  R_V4,
  R_ZONE,
  RI,
  RN,
} from './baseline-snapshot.js';
import {
  type Counters,
  decideFlush,
  endedPhase,
  type FlushStep,
  isOpenPhase,
  isTombPhase,
  Phase,
} from './connection-state.js';
import { HashCells, mix } from './hash-cells.js';

// --- doubles per slot ---------------------------------------------------------
/** Latest kernel counters. */
const PO = 0;
const BO = 1;
const PR = 2;
const BR = 3;
/** What was already reported (the baseline). */
const RPO = 4;
const RBO = 5;
const RPR = 6;
const RBR = 7;
/** Start time (ms), the endpoint lookup time. */
const START = 8;
/** The kernel's start time (ms), NaN when the kernel gave none. */
const KSTART = 9;
/** The endpoint cache's version when srcEp/dstEp were looked up (-1: never). */
const EP_VERSION = 10;
/** Tombstones: forgotten after this instant (ms), whatever happens (kept across restarts). */
const UNTIL = 11;
/** Tombstones: since when dumps no longer list it (NaN: listed, or no dump since). */
const ABSENT_SINCE = 12;
const DW = 13;

// --- int32s per slot ----------------------------------------------------------
/** CTA_ID (a u32, stored as its int32 bits). */
const ID = 0;
const ZONE = 1;
const PROTO = 2;
/** Original source and destination as IPv4 u32 bits (when F_V4). */
const SRC4 = 3;
const DST4 = 4;
/** sport or ICMP type, dport or ICMP id (-1 when absent). */
const A = 5;
const B = 6;
/** The reply tuple's source port: the real destination port (-1: none). */
const DPORT = 7;
/** The 5-tuple's hash in the table's TupleCounts. */
const TUPLE_HASH = 8;
/** The dump generation that last listed it (or created it; for a tombstone, completed it). */
const DUMP_GEN = 9;
/** Its Phase (Free: the slot holds nothing). */
const PHASE = 10;
const FLAGS = 11;
/** The real destination (reply tuple's source) as IPv4 u32 bits (when F_RDST4). */
const RDST4 = 12;
const IW = 13;

// --- memo int32s per slot (an array of their own: only flushes read them) ----
/**
 * The aggregator's memo of the buckets of its last flush, two cells per
 * reporter side (see Aggregator.add): valid while its endpoints stay the
 * same objects (srcEp/dstEp). Zero: none.
 */
const MEMO_SRC = 0;
const MEMO_DST = 2;
const MEMO_W = 4;

// --- FLAGS bits ---------------------------------------------------------------
// Which of its events were read: facts beside the phase, that place later events.
/** Its NEW was received (a connection first seen in a dump may still have one queued). */
export const HEARD_NEW = 1;
/** Its DESTROY was received. */
export const HEARD_DESTROY = 2;
/**
 * Listed by the agent's start-up dump, begun before its event socket opened:
 * the kernel never sends this connection's NEW to us.
 */
export const NO_NEW_COMING = 4;
// What the slot's numbers hold, and what the index saw.
/** SRC4/DST4 hold the addresses (IPv4 known as numbers). */
const F_V4 = 8;
/** RDST4 holds the real destination (IPv4 known as a number). */
const F_RDST4 = 16;
/** With srcEp/dstEp: the source, the destination is a local endpoint (LOCAL_SRC/LOCAL_DST shifted). */
const F_LOCAL_SHIFT = 5;
/**
 * Another slot had its CTA_ID when either was indexed (it may be gone
 * since): only such a slot can have a twin, so entombing any other skips
 * the search for one.
 */
const F_ID_SHARED = 128;

/** Which ends of a connection are local endpoints (see setEndpoints). */
export const LOCAL_SRC = 1;
export const LOCAL_DST = 2;
const F_LOCAL = (LOCAL_SRC | LOCAL_DST) << F_LOCAL_SHIFT;

/** The first port of the original tuple, or the ICMP type (-1 when absent). */
export function portA(ev: ConntrackEvent, ports: boolean): number {
  return ports ? ev.orig.sport : (ev.orig.icmpType ?? -1);
}

/** The second port of the original tuple, or the ICMP id (-1 when absent). */
export function portB(ev: ConntrackEvent, ports: boolean): number {
  return ports ? ev.orig.dport : (ev.orig.icmpId ?? -1);
}

/** What add() fills a slot with (callers keep one and refill it: no object per connection). */
export interface NewSlot {
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
  phase: Phase;
  /** When the table first saw it (the endpoint lookup time). */
  startMs: number;
  /** The kernel's start time, NaN when the event gave none. */
  kernelStartMs: number;
  /** The dump generation it is created in. */
  gen: number;
}

/** The identity collect() looks for: one object, refilled per lookup (no allocation). */
interface Probe {
  id: number;
  zone: number;
  proto: number;
  a: number;
  b: number;
  /** Whether src4/dst4 hold the addresses; else only `text` has them. */
  v4: boolean;
  src4: number;
  dst4: number;
  /** Read only when a side lacks the numbers (reading a decoder view's text formats it). */
  text: { readonly src: string; readonly dst: string };
  /** A slot not to answer (findTwin's own; -1: none). */
  except: number;
}

/** `a` copied into an array of `capacity` elements, the rest `fill` (no holes left). */
function extended<T>(a: readonly T[], capacity: number, fill: T): T[] {
  const b = new Array<T>(capacity).fill(fill);
  for (let k = 0; k < a.length; k++) b[k] = a[k]!;
  return b;
}

export class ConnStore {
  /** Doubles: slot × DW + field. Growing replaces it. */
  private d: Float64Array;
  /** Int32s: slot × IW + field. */
  private i: Int32Array;
  /** Bucket memos: slot × MEMO_W + MEMO_SRC/MEMO_DST. */
  private memo: Int32Array;
  private origSrc: string[] = [];
  private origDst: string[] = [];
  /** The reply tuple's source: the real destination (the backend after DNAT). */
  private dst: string[] = [];
  /** The 5-tuple as text (numFlows of a shared 5-tuple, the policy join), built on first need. */
  private tuple: (string | undefined)[] = [];
  /**
   * Endpoint lookups at the start: reused while the cache's version is
   * EP_VERSION; the endpoints MEMO_SRC/MEMO_DST were made for.
   */
  private srcEp: (Endpoint | undefined)[] = [];
  private dstEp: (Endpoint | undefined)[] = [];

  /** Slots handed out so far (live or free). */
  private slots = 0;
  private readonly free: number[] = [];
  private count = 0;
  private tombCount = 0;
  /** Slots by mix(CTA_ID): (hash, slot + 1) cells. */
  private readonly index: HashCells;
  private readonly probe: Probe = {
    id: 0,
    zone: 0,
    proto: 0,
    a: 0,
    b: 0,
    v4: false,
    src4: 0,
    dst4: 0,
    text: { src: '', dst: '' },
    except: -1,
  };
  /** findTwin's probe text: the slot's own addresses. */
  private readonly twinText = { src: '', dst: '' };
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

  // --- phase ------------------------------------------------------------------

  phase(s: number): Phase {
    return this.i[s * IW + PHASE] as Phase;
  }

  setPhase(s: number, p: Phase): void {
    this.i[s * IW + PHASE] = p;
  }

  isLive(s: number): boolean {
    return this.phase(s) !== Phase.Free;
  }

  isTomb(s: number): boolean {
    return isTombPhase(this.phase(s));
  }

  /** Starting or open: its traffic still counts. */
  isOpen(s: number): boolean {
    return isOpenPhase(this.phase(s));
  }

  /** Ends slot `s` (an ended, remainder or tombstone slot stays as it is); whether it was open. */
  end(s: number): boolean {
    const p = this.phase(s);
    this.setPhase(s, endedPhase(p));
    return isOpenPhase(p);
  }

  /** Whether any of the HEARD_NEW / HEARD_DESTROY / NO_NEW_COMING `bits` is set. */
  heard(s: number, bits: number): boolean {
    return (this.i[s * IW + FLAGS]! & bits) !== 0;
  }

  hear(s: number, bits: number): void {
    this.setFlags(s, bits);
  }

  private setFlags(s: number, bits: number): void {
    this.i[s * IW + FLAGS] = this.i[s * IW + FLAGS]! | bits;
  }

  // --- slots in and out -------------------------------------------------------

  /** A new connection's slot: numbers zeroed but for those `x` gives, indexed. */
  add(x: NewSlot): number {
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
    i[ib + PHASE] = x.phase;
    i[ib + DUMP_GEN] = x.gen;
    i[ib + FLAGS] = (v4 ? F_V4 : 0) | (x.dst4 >= 0 ? F_RDST4 : 0);
    const d = this.d;
    const db = s * DW;
    d[db + START] = x.startMs;
    d[db + KSTART] = x.kernelStartMs;
    d[db + EP_VERSION] = -1;
    d[db + ABSENT_SINCE] = Number.NaN;
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
    this.i[s * IW + PHASE] = Phase.Free;
    this.i[s * IW + FLAGS] = 0;
    this.dropReferences(s);
    this.free.push(s);
  }

  /**
   * Makes a tracked connection a tombstone in place (same identity, same
   * index cell): its baseline stays, its start time too; `gone`: TombGone.
   * One tombstone per identity: the kernel holds one connection per tuple,
   * so only the newest can still be listed or destroyed. An older one than
   * the tombstone already there is freed instead.
   */
  entomb(s: number, untilMs: number, gen: number, gone: boolean): void {
    if (this.tombCount > 0 && (this.i[s * IW + FLAGS]! & F_ID_SHARED) !== 0) {
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
    this.i[ib + PHASE] = gone ? Phase.TombGone : Phase.Tomb;
    this.i[ib + DUMP_GEN] = gen;
    this.d[s * DW + UNTIL] = untilMs;
    this.d[s * DW + ABSENT_SINCE] = Number.NaN;
    this.dropReferences(s);
    this.count--;
    this.tombCount++;
  }

  /**
   * A completed connection restored after a restart: a tombstone (gone: not
   * this run's to account for until a dump lists it) with the baseline and
   * kernel start time it had, its NEW heard (it came before the restart).
   * Replaces one with its identity, as entomb; -1 when that one is kept.
   * `x.phase`: Ended (entombed at once; a tombstone phase would be counted as
   * one before it is).
   */
  restoreTomb(x: NewSlot, untilMs: number, reported: Counters, kernelStartMs: number): number {
    const s = this.add(x);
    this.entomb(s, untilMs, x.gen, true);
    // Freed: an identical tombstone of a later connection is kept.
    if (!this.isLive(s)) return -1;
    this.setReported(s, reported);
    this.d[s * DW + KSTART] = kernelStartMs;
    this.hear(s, HEARD_NEW);
    return s;
  }

  // --- times ------------------------------------------------------------------

  /** When slot `s` began: the kernel's start time, else when the table first saw it. */
  startOf(s: number): number {
    const kstart = this.d[s * DW + KSTART]!;
    return Number.isNaN(kstart) ? this.d[s * DW + START]! : kstart;
  }

  /** When the table first saw it (or the kernel's start given then): the endpoint lookup time. */
  firstSeenMs(s: number): number {
    return this.d[s * DW + START]!;
  }

  /** The kernel's start time, NaN when no event gave it. */
  kernelStartMs(s: number): number {
    return this.d[s * DW + KSTART]!;
  }

  /** Keeps the kernel's start time once an event gives it. */
  learnStart(s: number, ev: ConntrackEvent): void {
    const k = s * DW + KSTART;
    if (Number.isNaN(this.d[k]!)) {
      const start = ev.startMs;
      if (start !== undefined) this.d[k] = start;
    }
  }

  // --- counters and baselines -------------------------------------------------

  /**
   * Raises a connection's counters to the event's: kernel counters only
   * grow, a stale reading never moves them back. Returns whether the
   * event's counters were below the connection's (the table took two
   * connections for one). Each getter of `ev` may allocate: read each once.
   */
  raise(s: number, ev: ConntrackEvent): boolean {
    const n = this.d;
    const b = s * DW;
    const o = ev.countersOrig;
    const r = ev.countersReply;
    let below = false;
    if (o !== undefined) {
      if (o.packets > n[b + PO]!) n[b + PO] = o.packets;
      else if (o.packets < n[b + PO]!) below = true;
      if (o.bytes > n[b + BO]!) n[b + BO] = o.bytes;
      else if (o.bytes < n[b + BO]!) below = true;
    }
    if (r !== undefined) {
      if (r.packets > n[b + PR]!) n[b + PR] = r.packets;
      else if (r.packets < n[b + PR]!) below = true;
      if (r.bytes > n[b + BR]!) n[b + BR] = r.bytes;
      else if (r.bytes < n[b + BR]!) below = true;
    }
    return below;
  }

  /** The latest kernel counters (a new object: not for the per-event path). */
  counters(s: number): Counters {
    const b = s * DW;
    const d = this.d;
    return { po: d[b + PO]!, bo: d[b + BO]!, pr: d[b + PR]!, br: d[b + BR]! };
  }

  /** What it has reported, its baseline (a new object: not for the per-event path). */
  reported(s: number): Counters {
    const b = s * DW;
    const d = this.d;
    return { po: d[b + RPO]!, bo: d[b + RBO]!, pr: d[b + RPR]!, br: d[b + RBR]! };
  }

  setReported(s: number, c: Counters): void {
    const b = s * DW;
    const d = this.d;
    d[b + RPO] = c.po;
    d[b + RBO] = c.bo;
    d[b + RPR] = c.pr;
    d[b + RBR] = c.br;
  }

  /** Whether the reply direction has carried nothing (never answered). */
  unanswered(s: number): boolean {
    return this.d[s * DW + PR] === 0;
  }

  /**
   * The flush decision for open or ended slot `s` in the interval starting
   * at `intervalStartMs`, into `out` (see decideFlush), its delta the
   * counters above the baseline. Returns whether a counter was below the
   * baseline (two connections taken for one): that delta counts as zero,
   * never negative.
   */
  flushStep(s: number, intervalStartMs: number, out: FlushStep): boolean {
    const n = this.d;
    const b = s * DW;
    const delta = out.delta;
    delta.po = n[b + PO]! - n[b + RPO]!;
    delta.bo = n[b + BO]! - n[b + RBO]!;
    delta.pr = n[b + PR]! - n[b + RPR]!;
    delta.br = n[b + BR]! - n[b + RBR]!;
    const below = delta.po < 0 || delta.bo < 0 || delta.pr < 0 || delta.br < 0;
    if (below) {
      delta.po = Math.max(0, delta.po);
      delta.bo = Math.max(0, delta.bo);
      delta.pr = Math.max(0, delta.pr);
      delta.br = Math.max(0, delta.br);
    }
    decideFlush(out, this.phase(s), n[b + START]!, intervalStartMs);
    return below;
  }

  /** Adds what a flush reported to the baseline. */
  addReported(s: number, d: Counters): void {
    const n = this.d;
    const b = s * DW;
    n[b + RPO] = n[b + RPO]! + d.po;
    n[b + RBO] = n[b + RBO]! + d.bo;
    n[b + RPR] = n[b + RPR]! + d.pr;
    n[b + RBR] = n[b + RBR]! + d.br;
  }

  // --- dumps ------------------------------------------------------------------

  /** The dump generation that last listed it (or created it; for a tombstone, completed it). */
  listedGen(s: number): number {
    return this.i[s * IW + DUMP_GEN]!;
  }

  listed(s: number, gen: number): void {
    this.i[s * IW + DUMP_GEN] = gen;
  }

  /**
   * Dump `gen` lists tombstone `s` (TIME_WAIT): it is no longer absent. One
   * restored after a restart (listed by no dump yet) and not destroyed is
   * no longer gone: it sends its DESTROY to this run.
   */
  tombListed(s: number, gen: number): void {
    const ib = s * IW;
    if (this.i[ib + DUMP_GEN] === 0 && !this.heard(s, HEARD_DESTROY)) {
      this.i[ib + PHASE] = Phase.Tomb;
    }
    this.i[ib + DUMP_GEN] = gen;
    this.d[s * DW + ABSENT_SINCE] = Number.NaN;
  }

  /**
   * A dump did not list tombstone `s`: absent since `nowMs` (unless already),
   * gone. Returns whether it was not gone yet (its DESTROY lost).
   */
  tombUnlisted(s: number, nowMs: number): boolean {
    const k = s * DW + ABSENT_SINCE;
    if (Number.isNaN(this.d[k]!)) this.d[k] = nowMs;
    if (this.phase(s) === Phase.TombGone) return false;
    this.setPhase(s, Phase.TombGone);
    return true;
  }

  /** A tombstone's expiry (ms). */
  tombUntil(s: number): number {
    return this.d[s * DW + UNTIL]!;
  }

  /** Whether tombstone `s` is forgotten: expired before `endMs`, or absent from dumps since before `absentBeforeMs`. */
  tombExpired(s: number, endMs: number, absentBeforeMs: number): boolean {
    const b = s * DW;
    // NaN (listed) compares false.
    return this.d[b + UNTIL]! < endMs || this.d[b + ABSENT_SINCE]! < absentBeforeMs;
  }

  // --- identity and endpoints -------------------------------------------------

  proto(s: number): number {
    return this.i[s * IW + PROTO]!;
  }

  /** The original source address as text. */
  src(s: number): string {
    return this.origSrc[s]!;
  }

  /** The real destination (reply tuple's source) as text. */
  realDst(s: number): string {
    return this.dst[s]!;
  }

  /** The source port, undefined for protocols without ports. */
  sport(s: number): number | undefined {
    const ib = s * IW;
    return hasPorts(this.i[ib + PROTO]!) ? this.i[ib + A]! : undefined;
  }

  /** The real destination port, undefined for protocols without ports. */
  dport(s: number): number | undefined {
    const p = this.i[s * IW + DPORT]!;
    return p >= 0 ? p : undefined;
  }

  /** Its 5-tuple's hash (TupleCounts). */
  tupleHash(s: number): number {
    return this.i[s * IW + TUPLE_HASH]!;
  }

  /** Its 5-tuple as text, once made (undefined before). */
  tupleText(s: number): string | undefined {
    return this.tuple[s];
  }

  setTupleText(s: number, t: string): void {
    this.tuple[s] = t;
  }

  /** Whether src4 holds the original source (IPv4 known as a number); else only its text does. */
  hasSrc4(s: number): boolean {
    return (this.i[s * IW + FLAGS]! & F_V4) !== 0;
  }

  /** The original source as IPv4 int32 bits (with hasSrc4). */
  src4(s: number): number {
    return this.i[s * IW + SRC4]!;
  }

  /** Whether realDst4 holds the real destination (IPv4 known as a number). */
  hasRealDst4(s: number): boolean {
    return (this.i[s * IW + FLAGS]! & F_RDST4) !== 0;
  }

  /** The real destination as IPv4 int32 bits (with hasRealDst4). */
  realDst4(s: number): number {
    return this.i[s * IW + RDST4]!;
  }

  /**
   * Which ends are local (LOCAL_SRC | LOCAL_DST), as the endpoints looked up
   * at cache `version` said; -1 when they were not looked up at that
   * version (or the cache has none). Kept in the flags: reading it from the
   * endpoint objects (10,000 pods) costs a cache miss per connection.
   */
  locality(s: number, version: number | undefined): number {
    if (version === undefined || this.d[s * DW + EP_VERSION] !== version) return -1;
    return (this.i[s * IW + FLAGS]! & F_LOCAL) >>> F_LOCAL_SHIFT;
  }

  srcEndpoint(s: number): Endpoint {
    return this.srcEp[s]!;
  }

  dstEndpoint(s: number): Endpoint {
    return this.dstEp[s]!;
  }

  /**
   * Keeps the endpoints looked up for `s` at cache `version` (undefined: the
   * cache has none, they are looked up every time); returns its locality.
   * Its bucket memos hold only for the endpoints they were made for.
   */
  setEndpoints(s: number, src: Endpoint, dst: Endpoint, version: number | undefined): number {
    if (src !== this.srcEp[s] || dst !== this.dstEp[s]) {
      this.memo.fill(0, s * MEMO_W, s * MEMO_W + MEMO_W);
    }
    this.srcEp[s] = src;
    this.dstEp[s] = dst;
    if (version !== undefined) this.d[s * DW + EP_VERSION] = version;
    const local = (src.local ? LOCAL_SRC : 0) | (dst.local ? LOCAL_DST : 0);
    const ib = s * IW;
    this.i[ib + FLAGS] = (this.i[ib + FLAGS]! & ~F_LOCAL) | (local << F_LOCAL_SHIFT);
    return local;
  }

  /** The cells of the aggregator's bucket memos (see Aggregator.add); grows with the store. */
  get memoCells(): Int32Array {
    return this.memo;
  }

  /** Where in memoCells slot `s`'s memo for the `reporter` side is. */
  memoAt(s: number, reporter: 'src' | 'dst'): number {
    return s * MEMO_W + (reporter === 'src' ? MEMO_SRC : MEMO_DST);
  }

  // --- restart continuity -----------------------------------------------------

  /**
   * Whether a restarted agent may meet slot `s` again: a tracked connection,
   * or a completed one the kernel still lists and whose DESTROY is to come.
   */
  mayOutliveRestart(s: number): boolean {
    if (!this.isTomb(s)) return true;
    return !this.heard(s, HEARD_DESTROY) && Number.isNaN(this.d[s * DW + ABSENT_SINCE]!);
  }

  /** Appends slot `s` as a baseline row (see baseline-snapshot.ts). */
  saveRow(s: number, rows: BaselineRows): void {
    const d = this.d;
    const i = this.i;
    const b = s * DW;
    const ib = s * IW;
    const tomb = this.isTomb(s);
    const r = rows.add();
    const n = rows.numbers;
    const k = rows.integers;
    const rn = r * RN;
    n[rn + R_PO] = d[b + RPO]!;
    n[rn + R_BO] = d[b + RBO]!;
    n[rn + R_PR] = d[b + RPR]!;
    n[rn + R_BR] = d[b + RBR]!;
    n[rn + R_KSTART] = d[b + KSTART]!;
    n[rn + R_UNTIL] = tomb ? d[b + UNTIL]! : Number.NaN;
    const ri = r * RI;
    k[ri + R_ID] = i[ib + ID]!;
    k[ri + R_ZONE] = i[ib + ZONE]!;
    k[ri + R_PROTO] = i[ib + PROTO]!;
    k[ri + R_A] = i[ib + A]!;
    k[ri + R_B] = i[ib + B]!;
    const v4 = (i[ib + FLAGS]! & F_V4) !== 0;
    k[ri + R_SRC4] = i[ib + SRC4]!;
    k[ri + R_DST4] = i[ib + DST4]!;
    k[ri + R_FLAGS] = (tomb ? R_COMPLETED : 0) | (v4 ? R_V4 : 0);
    if (!v4) rows.setText(r, this.origSrc[s]!, this.origDst[s]!);
  }

  // --- finding slots ----------------------------------------------------------

  /**
   * The slot of the tracked connection (tomb false) or tombstone (tomb true)
   * with the event's identity, or -1. When the kernel reopened the 5-tuple
   * under the same id several may match: this is the first; gather() gives
   * them all.
   */
  find(ev: ConntrackEvent, tomb: boolean): number {
    return this.firstOfKind(this.gather(ev), tomb);
  }

  /**
   * Every slot (connections and tombstones) with the event's identity, into
   * `hits`; returns how many. Usually none or one: more only where the
   * kernel reopened the 5-tuple under the same CTA_ID (the same slab slot).
   */
  gather(ev: ConntrackEvent): number {
    const o = ev.orig;
    const ports = hasPorts(o.proto);
    const p = this.probe;
    p.id = ev.id;
    p.zone = ev.zone;
    p.proto = o.proto;
    p.a = portA(ev, ports);
    p.b = portB(ev, ports);
    // Numbers when the event has them: reading a decoder view's address text would format it.
    p.v4 = o.family === 4 && o.src4 !== undefined && o.dst4 !== undefined;
    p.src4 = o.src4 ?? 0;
    p.dst4 = o.dst4 ?? 0;
    p.text = o;
    p.except = -1;
    return this.collect(p);
  }

  /** Another slot with the same identity as slot `s`, a tombstone or not, or -1. */
  findTwin(s: number, tomb: boolean): number {
    const ib = s * IW;
    const i = this.i;
    const p = this.probe;
    p.id = i[ib + ID]!;
    p.zone = i[ib + ZONE]!;
    p.proto = i[ib + PROTO]!;
    p.a = i[ib + A]!;
    p.b = i[ib + B]!;
    p.v4 = (i[ib + FLAGS]! & F_V4) !== 0;
    p.src4 = i[ib + SRC4]!;
    p.dst4 = i[ib + DST4]!;
    this.twinText.src = this.origSrc[s]!;
    this.twinText.dst = this.origDst[s]!;
    p.text = this.twinText;
    p.except = s;
    return this.firstOfKind(this.collect(p), tomb);
  }

  /** The first of the `n` hits that is a tombstone (tomb true) or not, or -1. */
  private firstOfKind(n: number, tomb: boolean): number {
    for (let k = 0; k < n; k++) {
      const s = this.hits[k]!;
      if (this.isTomb(s) === tomb) return s;
    }
    return -1;
  }

  /** The slots with the probe's identity into `hits` (growing it when needed); returns how many. */
  private collect(p: Probe): number {
    const id32 = p.id | 0;
    const s4 = p.src4 | 0;
    const d4 = p.dst4 | 0;
    const { zone, proto, a, b, v4, except } = p;
    const ix = this.index;
    const i = this.i;
    const hash = mix(id32);
    let n = 0;
    for (let c = ix.first(hash); c >= 0; c = ix.next(c, hash)) {
      const s = ix.value(c) - 1;
      const ib = s * IW;
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
        v4 && (i[ib + FLAGS]! & F_V4) !== 0
          ? i[ib + SRC4] === s4 && i[ib + DST4] === d4
          : this.origSrc[s] === p.text.src && this.origDst[s] === p.text.dst;
      if (!same) continue;
      if (n === this.hits.length) this.hits = doubled(this.hits);
      this.hits[n++] = s;
    }
    return n;
  }

  // --- storage ----------------------------------------------------------------

  private dropReferences(s: number): void {
    this.tuple[s] = undefined;
    this.srcEp[s] = undefined;
    this.dstEp[s] = undefined;
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
