/**
 * The flow table: conntrack events and NFLOG verdicts in, flow records out,
 * one flush per interval. Pure: no I/O, time passed in.
 *
 * Allowed traffic comes from conntrack. A connection is keyed by (CTA_ID,
 * original tuple, zone). NEW starts it; DESTROY completes it with its final
 * counters; the dump the agent takes before every flush gives the current
 * counters of open connections. Each connection remembers what it already
 * reported (its baseline), so every flush reports the delta and the sum over
 * intervals equals the kernel's total exactly — also for connections that live
 * across many intervals. A connection that vanishes from a dump without a
 * DESTROY (the event was lost) is completed with its last known counters and
 * kept as a tombstone for a while, so a late DESTROY adds only what was not
 * reported yet. Connections seen only in a dump (older than the agent) start
 * from the restored baseline (after a restart) or from zero.
 *
 * Reporter: src for the connection's local source, dst for its local
 * destination (two records when both ends are local); connections with no
 * local end are ignored and counted. The destination is the reply tuple's
 * source: service traffic (DNAT) is reported against the real backend.
 *
 * Denied traffic comes from NFLOG packets whose prefix says deny: the ingress
 * group reports dst, the egress group src; packets and bytes per 5-tuple per
 * interval. A 5-tuple with no denied packet in an interval yields no record.
 *
 * Only connections with traffic, a start or an end in the interval are
 * reported: an idle open connection adds no record (it would carry zeros).
 *
 * Endpoints are looked up at the connection's start (CTA_TIMESTAMP_START when
 * the kernel gives it, else when we first saw it): the owner at the time of
 * the traffic, so a flow from before a pod's deletion names the old pod even
 * after its IP was reused. Denied 5-tuples use their first packet's time.
 *
 * Bounded memory: at most `maxFlows` tracked connections; more are shed and
 * counted in stats.shed, never silently.
 *
 * Restart continuity: exportBaselines() gives, per connection, the counters
 * already reported (JSON-serialisable); importBaselines() before the start-up
 * dump makes that dump yield deltas, not totals counted twice.
 *
 * The lifecycle of a connection is a union (connection-state.ts); denied
 * counting lives in deny-counter.ts; record building in aggregation.ts.
 */
import type { ConntrackEvent, ConntrackTuple } from '../conntrack/types.js';
import type { Endpoint, EndpointLookup } from '../endpoints/types.js';
import type { FlowRecord } from '../format/record.js';
import type { NflogPacket } from '../nflog/types.js';
import {
  AggregationKind,
  Aggregator,
  aggregate,
  type Contribution,
  type KeyMemo,
} from './aggregation.js';
import { type ConnIdentity, ConnIndex, portA, portB, portsOrIcmp } from './conn-index.js';
import { BO, BR, ConnNumbers, KSTART, PO, PR, RBO, RBR, RPO, RPR, START } from './conn-numbers.js';
import {
  type ConnPhase,
  type Counters,
  endPhase,
  flushStepInto,
  isOpen,
  newFlushStep,
  OPEN,
  STARTING,
} from './connection-state.js';
import { DenyCounter, hasPorts, tupleKey } from './deny-counter.js';
import { TupleCounts, tupleHash } from './tuple-counts.js';

export interface FlowTableOptions {
  endpoints: EndpointLookup;
  aggregationKindForAllowed: AggregationKind;
  aggregationKindForDenied: AggregationKind;
  includeLabels: boolean;
  /** The 27-field variant: policies and aggregated names on records. */
  includePolicies?: boolean;
  enabledForAllowed?: boolean;
  enabledForDenied?: boolean;
  ingressGroup: number;
  egressGroup: number;
  /** Tracked connections at most (default 250,000); more are shed and counted. */
  maxFlows?: number;
  /** How long a completed connection's reported totals are remembered at most (default 10 min). */
  tombstoneMs?: number;
  /**
   * How long they are remembered once the kernel's table no longer lists the
   * connection (default 60 s): long enough for a DESTROY or NEW still queued
   * on the event socket, short enough that heavy churn does not fill memory.
   */
  goneTombstoneMs?: number;
}

/**
 * A tracked connection: identity and addresses fixed; phase replaced, never
 * flagged. Its numbers (latest kernel counters, what it reported, its start
 * times) live in the table's ConnNumbers at `base`, raised in place, so a
 * dump entry allocates nothing.
 */
interface Conn extends ConnIdentity, KeyMemo {
  /** Its slot in ConnNumbers (slot index × WIDTH). */
  readonly base: number;
  readonly proto: number;
  // The source and its port are the original tuple's (origSrc, origA when the protocol has ports).
  /** The reply tuple's source: the real destination (the backend after DNAT). */
  readonly dst: string;
  /** The reply tuple's source port. */
  readonly dport: number | undefined;
  /**
   * The 5-tuple (src, real dst, ports) as one string: numFlows identity of a
   * shared 5-tuple and the policy join key; built on first need.
   */
  tuple: string | undefined;
  /** The 5-tuple's hash in the table's TupleCounts (numFlows: shared or not). */
  readonly tupleHash: number;
  phase: ConnPhase;
  /** The dump generation that last listed it (or created it). */
  lastDumpGen: number;
  /** Its DESTROY was received. */
  destroyed: boolean;
  /** Its NEW was received (a connection first seen in a dump may still have one queued). */
  sawNew: boolean;
  /** Endpoint lookups at its start, valid while the cache's version is epVersion. */
  srcEp: Endpoint | undefined;
  dstEp: Endpoint | undefined;
  epVersion: number;
}

/**
 * A completed connection's identity and what it reported (po/bo/pr/br), kept
 * for late DESTROYs, stale NEWs and dump entries of a connection in TIME_WAIT.
 * Found by the event's identity like a connection: no key string per event.
 */
interface Tombstone extends ConnIdentity, Counters {
  /** Forgotten after this instant, whatever happens (kept across restarts). */
  readonly untilMs: number;
  /** Since when dumps no longer list it (undefined: listed, or no dump since). */
  absentSinceMs: number | undefined;
  /** The kernel's start time (ms) of the completed connection, when it gave one. */
  readonly kernelStartMs?: number | undefined;
  /** The last dump generation that still listed it (TIME_WAIT lingers). */
  seenGen: number;
  /** Gone from the kernel without its DESTROY reaching us (counted once). */
  gone: boolean;
  /** Its NEW was received: a NEW on the same key is then another connection. */
  sawNew: boolean;
  /** Its DESTROY was received: a DESTROY on the same key is then another connection. */
  destroyed: boolean;
}

export interface BaselineSnapshot {
  version: 1;
  /** key → [packetsOrig, bytesOrig, packetsReply, bytesReply] already reported. */
  connections: Record<string, [number, number, number, number]>;
  /**
   * Connections already reported as completed that the kernel may still list
   * (TIME_WAIT lasts minutes): after a restart they must not complete again.
   * The fifth number is when they are forgotten (epoch ms), so that restarts
   * do not extend their lives; snapshots from before it have four.
   */
  completed?: Record<
    string,
    [number, number, number, number] | [number, number, number, number, number]
  >;
}

export interface FlowTableStats {
  /** Connections tracked now. */
  tracked: number;
  /** Connections not tracked because maxFlows was reached. */
  shed: number;
  /** Connection-interval reports dropped because neither end is local. */
  ignoredNonLocal: number;
  /** Connections completed because a dump no longer listed them (DESTROY lost). */
  vanished: number;
  /** DESTROYs of connections already completed (vanished earlier). */
  lateDestroys: number;
  /** DESTROYs of connections never seen before (their NEW was lost): counted from their totals. */
  unknownDestroys: number;
  /** Connections first seen in a dump after the start-up dump (their NEW was lost). */
  foundInDump: number;
  /** NEW events read after a dump had already completed their connection (ignored). */
  staleNews: number;
  /** Completed connections that left the kernel's table without their DESTROY reaching us. */
  destroysMissed: number;
  /** Denied packets counted (ingress + egress groups). */
  deniedPackets: number;
  /** Deny packets from groups other than the ingress/egress groups (not counted). */
  deniedOtherGroup: number;
  recordsAllowed: number;
  recordsDenied: number;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The scratch contribution's endpoints before its first use. */
const UNKNOWN_ENDPOINT: Endpoint = Object.freeze({
  type: 'net',
  namespace: '-',
  name: '-',
  aggregatedName: '-',
  labels: {},
  local: false,
});

/**
 * How long after a dump completed a connection its NEW may still be read
 * from the event socket's queue (then it is stale, not a new connection).
 */
const STALE_NEW_MS = 30_000;

const TCP_TIME_WAIT = 7;
const TCP_CLOSE = 8;

function keyParts(
  id: number,
  zone: number,
  proto: number,
  src: string,
  dst: string,
  a: number,
  b: number,
): string {
  const ports = hasPorts(proto);
  // Flat (join), not a rope: tombstones keep these keys for minutes.
  return [id, zone, proto, src, dst, ports || a >= 0 ? a : '', ports || b >= 0 ? b : ''].join('|');
}

/** The identity in a key written by keyParts; undefined when the key is not one. */
function parseKey(key: string): ConnIdentity | undefined {
  const p = key.split('|');
  if (p.length !== 7) return undefined;
  const num = (t: string, empty: number) => (t === '' ? empty : Number(t));
  const [id, zone, proto, a, b] = [
    num(p[0]!, Number.NaN),
    num(p[1]!, Number.NaN),
    num(p[2]!, Number.NaN),
    num(p[5]!, -1),
    num(p[6]!, -1),
  ];
  if (![id, zone, proto, a, b].every(Number.isInteger) || !p[3] || !p[4]) return undefined;
  return {
    id,
    zone,
    proto,
    origSrc: p[3],
    origDst: p[4],
    // Compared as text: the snapshot does not say the family.
    origSrc4: -1,
    origDst4: -1,
    origA: a,
    origB: b,
  };
}

/** The connection's identity as one string (baseline snapshots, tombstones). */
export function connectionKey(ev: ConntrackEvent): string {
  const o = ev.orig;
  const [a, b] = portsOrIcmp(ev, hasPorts(o.proto));
  return keyParts(ev.id, ev.zone, o.proto, o.src, o.dst, a, b);
}

function keyOf(c: ConnIdentity): string {
  return keyParts(c.id, c.zone, c.proto, c.origSrc, c.origDst, c.origA, c.origB);
}

/**
 * Raises a connection's counters (slot `b` of `n`) to the event's: kernel
 * counters only grow, a stale reading never moves them back. Each getter may
 * allocate: read each once.
 */
function raiseCounters(n: Float64Array, b: number, ev: ConntrackEvent): void {
  const o = ev.countersOrig;
  const r = ev.countersReply;
  if (o !== undefined) {
    if (o.packets > n[b + PO]!) n[b + PO] = o.packets;
    if (o.bytes > n[b + BO]!) n[b + BO] = o.bytes;
  }
  if (r !== undefined) {
    if (r.packets > n[b + PR]!) n[b + PR] = r.packets;
    if (r.bytes > n[b + BR]!) n[b + BR] = r.bytes;
  }
}

/**
 * Whether an event's kernel start time differs from a completed connection's.
 * NEW events carry no start time (the kernel adds it to DESTROYs and dumps),
 * so a connection created by its NEW learns it from its dump or DESTROY.
 */
function differsInStart(ev: ConntrackEvent, t: Tombstone): 'same' | 'differs' | 'unknown' {
  const start = ev.startMs;
  if (start === undefined || t.kernelStartMs === undefined) return 'unknown';
  return start === t.kernelStartMs ? 'same' : 'differs';
}

/** Keeps the kernel's start time once an event gives it. */
function learnStart(n: Float64Array, b: number, ev: ConntrackEvent): void {
  if (Number.isNaN(n[b + KSTART]!)) {
    const start = ev.startMs;
    if (start !== undefined) n[b + KSTART] = start;
  }
}

/** Sets what a connection (slot `b` of `n`) has reported: its baseline. */
function setReported(n: Float64Array, b: number, c: Counters): void {
  n[b + RPO] = c.po;
  n[b + RBO] = c.bo;
  n[b + RPR] = c.pr;
  n[b + RBR] = c.br;
}

/** The source port, undefined for protocols without ports (origA is then the ICMP type). */
function sportOf(c: Conn): number | undefined {
  return hasPorts(c.proto) ? c.origA : undefined;
}

/** One reporter's share: what it sent is Out, what it received is In. */
function reportAs(
  out: Aggregator,
  c: Mutable<Contribution>,
  reporter: 'src' | 'dst',
  sentPackets: number,
  sentBytes: number,
  receivedPackets: number,
  receivedBytes: number,
): void {
  c.reporter = reporter;
  c.packetsOut = sentPackets;
  c.bytesOut = sentBytes;
  c.packetsIn = receivedPackets;
  c.bytesIn = receivedBytes;
  out.add(c);
}

/** A completed connection's tombstone: its identity and what it reported (its slot in `n`). */
function tombstoneOf(conn: Conn, n: Float64Array, untilMs: number, gen: number): Tombstone {
  const b = conn.base;
  const kernelStart = n[b + KSTART]!;
  return {
    id: conn.id,
    zone: conn.zone,
    proto: conn.proto,
    origSrc: conn.origSrc,
    origDst: conn.origDst,
    origSrc4: conn.origSrc4,
    origDst4: conn.origDst4,
    origA: conn.origA,
    origB: conn.origB,
    po: n[b + RPO]!,
    bo: n[b + RBO]!,
    pr: n[b + RPR]!,
    br: n[b + RBR]!,
    untilMs,
    absentSinceMs: undefined,
    kernelStartMs: Number.isNaN(kernelStart) ? undefined : kernelStart,
    seenGen: gen,
    // A DESTROY already received leaves nothing to miss.
    gone: conn.destroyed,
    sawNew: conn.sawNew,
    destroyed: conn.destroyed,
  };
}

export class FlowTable {
  private readonly conns = new ConnIndex<Conn>();
  private readonly nums = new ConnNumbers();
  /** Tracked connections per 5-tuple (usually 1): numFlows needs a set only for shared ones. */
  private readonly tupleCounts = new TupleCounts();
  private readonly tombstones = new ConnIndex<Tombstone>();
  private readonly denies: DenyCounter;
  private readonly pendingBaselines = new Map<string, Counters>();
  private readonly step = newFlushStep();
  private readonly scratch: Mutable<Contribution> = {
    src: UNKNOWN_ENDPOINT,
    dst: UNKNOWN_ENDPOINT,
    srcIP: '',
    dstIP: '',
    proto: 0,
    srcPort: undefined,
    dstPort: undefined,
    reporter: 'src',
    action: 'allow',
    started: false,
    completed: false,
    packetsIn: 0,
    packetsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    policies: undefined,
    tuple: undefined,
    tupleShared: undefined,
    memo: undefined,
  };
  /** Allowed records' buckets, kept across flushes: connections remember theirs. */
  private readonly allowed: Aggregator;
  /** IPv4 text by address: one shared flat string per address, not three per connection. */
  private readonly ipv4Text = new Map<number, string>();
  private dumpGen = 0;
  private listeningSinceMs = Number.POSITIVE_INFINITY;
  private readonly o: Required<Omit<FlowTableOptions, 'endpoints'>> & { endpoints: EndpointLookup };
  readonly stats: FlowTableStats = {
    tracked: 0,
    shed: 0,
    ignoredNonLocal: 0,
    vanished: 0,
    lateDestroys: 0,
    unknownDestroys: 0,
    foundInDump: 0,
    staleNews: 0,
    destroysMissed: 0,
    deniedPackets: 0,
    deniedOtherGroup: 0,
    recordsAllowed: 0,
    recordsDenied: 0,
  };

  constructor(options: FlowTableOptions) {
    this.o = {
      includePolicies: false,
      enabledForAllowed: true,
      enabledForDenied: true,
      maxFlows: 250_000,
      tombstoneMs: 10 * 60_000,
      goneTombstoneMs: 60_000,
      ...options,
    };
    this.allowed = new Aggregator({
      kind: this.o.aggregationKindForAllowed,
      includeLabels: this.o.includeLabels,
      includePolicies: this.o.includePolicies,
    });
    this.denies = new DenyCounter({
      ingressGroup: this.o.ingressGroup,
      egressGroup: this.o.egressGroup,
      includePolicies: this.o.includePolicies,
    });
  }

  // --- conntrack ------------------------------------------------------------

  /** Multicast events (NEW/UPDATE/DESTROY); dump replies in a batch are treated as dump entries. */
  onConntrack(events: readonly ConntrackEvent[], nowMs: number): void {
    for (const ev of events) this.onConntrackEvent(ev, nowMs);
  }

  /**
   * One event, as onConntrack. The table reads the event during the call and
   * keeps none of it (numbers and strings are copied into its own records),
   * so `ev` may be a reused decoder view (decodeConntrackBatchView).
   */
  onConntrackEvent(ev: ConntrackEvent, nowMs: number): void {
    if (ev.fromDump) this.dumpEntry(ev, nowMs);
    else if (ev.type === 'new') this.onNew(ev, nowMs);
    else if (ev.type === 'destroy') this.onDestroy(ev, nowMs);
    else this.onUpdate(ev);
  }

  private create(ev: ConntrackEvent, startMs: number, phase: ConnPhase): Conn | undefined {
    if (this.conns.size >= this.o.maxFlows) {
      this.stats.shed++;
      return undefined;
    }
    const o = ev.orig;
    const r = ev.reply;
    const ports = hasPorts(o.proto);
    const origA = portA(ev, ports);
    const origB = portB(ev, ports);
    let restored: Counters | undefined;
    if (this.pendingBaselines.size > 0) {
      const key = connectionKey(ev);
      restored = this.pendingBaselines.get(key);
      if (restored !== undefined) this.pendingBaselines.delete(key);
    }
    const src = this.ipText(o, 'src');
    const origDst = this.ipText(o, 'dst');
    const dst = r ? this.ipText(r, 'src') : origDst;
    const sport = ports ? o.sport : undefined;
    const dport = ports ? (r ? r.sport : o.dport) : undefined;
    const hash = tupleHash(o.proto, src, dst, sport ?? -1, dport ?? -1);
    const base = this.nums.alloc();
    const n = this.nums.a;
    n[base + START] = startMs;
    n[base + KSTART] = ev.startMs ?? Number.NaN;
    if (restored !== undefined) setReported(n, base, restored);
    const conn: Conn = {
      base,
      id: ev.id,
      zone: ev.zone,
      origSrc: src,
      origDst,
      origSrc4: o.family === 4 && o.src4 !== undefined ? o.src4 : -1,
      origDst4: o.family === 4 && o.dst4 !== undefined ? o.dst4 : -1,
      origA,
      origB,
      proto: o.proto,
      dst,
      dport,
      tuple: undefined,
      tupleHash: hash,
      // Its buckets from the last flush (KeyMemo, a cache; see aggregation.ts).
      memoKind: -1,
      memoSrc: undefined,
      memoDst: undefined,
      memoBucketSrc: undefined,
      memoBucketDst: undefined,
      // A restored connection was already reported as started before the restart.
      phase: restored !== undefined && phase.kind === 'starting' ? OPEN : phase,
      lastDumpGen: this.dumpGen,
      destroyed: false,
      sawNew: false,
      srcEp: undefined,
      dstEp: undefined,
      epVersion: -1,
    };
    this.conns.add(conn);
    this.tupleCounts.add(hash);
    this.stats.tracked = this.conns.size;
    return conn;
  }

  private ipText(t: ConntrackTuple, side: 'src' | 'dst'): string {
    const n = t.family === 4 ? (side === 'src' ? t.src4 : t.dst4) : undefined;
    if (n === undefined) return t[side];
    let text = this.ipv4Text.get(n);
    if (text === undefined) {
      // Bounded: a node talks to a few thousand addresses; start over past 64k.
      if (this.ipv4Text.size >= 65_536) this.ipv4Text.clear();
      text = t[side];
      this.ipv4Text.set(n, text);
    }
    return text;
  }

  private find(ev: ConntrackEvent): Conn | undefined {
    const ports = hasPorts(ev.orig.proto);
    return this.conns.find(ev, portA(ev, ports), portB(ev, ports));
  }

  private findTombstone(ev: ConntrackEvent): Tombstone | undefined {
    if (this.tombstones.size === 0) return undefined;
    const ports = hasPorts(ev.orig.proto);
    return this.tombstones.find(ev, portA(ev, ports), portB(ev, ports));
  }

  /** Remembers a completed connection (replacing one with the same identity). */
  private addTombstone(t: Tombstone): void {
    const old = this.tombstones.findLike(t);
    if (old !== undefined) this.tombstones.remove(old);
    this.tombstones.add(t);
  }

  private onNew(ev: ConntrackEvent, nowMs: number): void {
    const known = this.find(ev);
    if (known !== undefined) {
      known.sawNew = true; // first seen in a dump; this is its NEW
      return;
    }
    const tomb = this.findTombstone(ev);
    if (tomb !== undefined) {
      // Events and dumps race: a dump may complete a short connection (TIME_WAIT)
      // before its NEW, still queued on the event socket, is read. That NEW is
      // stale. But the kernel gives a reused 5-tuple the same id when the same
      // slot holds it again, so a NEW on the key of a connection whose NEW was
      // already read, or with another start time, is a new connection.
      const start = differsInStart(ev, tomb);
      const recent = nowMs - (tomb.untilMs - this.o.tombstoneMs) <= STALE_NEW_MS;
      if (start === 'same' || (start === 'unknown' && !tomb.sawNew && recent)) {
        tomb.sawNew = true;
        this.stats.staleNews++;
        return;
      }
      this.tombstones.remove(tomb);
    }
    const conn = this.create(ev, ev.startMs ?? nowMs, STARTING);
    if (conn !== undefined) conn.sawNew = true;
  }

  private onUpdate(ev: ConntrackEvent): void {
    const conn = this.find(ev);
    if (conn !== undefined && isOpen(conn.phase)) raiseCounters(this.nums.a, conn.base, ev);
  }

  private onDestroy(ev: ConntrackEvent, nowMs: number): void {
    let conn = this.find(ev);
    const atMs = ev.stopMs ?? nowMs;
    if (conn === undefined) {
      let tomb = this.findTombstone(ev);
      // A second DESTROY on the key, or another start time: another connection.
      if (tomb !== undefined && (tomb.destroyed || differsInStart(ev, tomb) === 'differs')) {
        this.tombstones.remove(tomb);
        tomb = undefined;
      }
      if (tomb !== undefined) {
        // Completed earlier (vanished from a dump): report only the remainder.
        this.stats.lateDestroys++;
        this.tombstones.remove(tomb);
        conn = this.create(ev, ev.startMs ?? nowMs, { kind: 'remainder', atMs });
        if (conn === undefined) return;
        setReported(this.nums.a, conn.base, tomb);
      } else {
        // Its NEW was lost (or came before we listened): started and completed
        // now, unless its start timestamp is older than the interval.
        this.stats.unknownDestroys++;
        conn = this.create(ev, ev.startMs ?? nowMs, STARTING);
        if (conn === undefined) return;
      }
    }
    raiseCounters(this.nums.a, conn.base, ev);
    learnStart(this.nums.a, conn.base, ev);
    // Its NEW, if it ever comes, came first: the socket keeps a connection's events in order.
    conn.sawNew = true;
    conn.phase = endPhase(conn.phase, atMs);
    conn.destroyed = true;
  }

  private dumpEntry(ev: ConntrackEvent, nowMs: number): void {
    let conn = this.find(ev);
    if (conn === undefined) {
      const tomb = this.findTombstone(ev);
      if (tomb !== undefined && differsInStart(ev, tomb) !== 'differs') {
        // Already completed, still in the kernel's table (TIME_WAIT). One restored
        // after a restart and still listed sends its DESTROY to this run: a lost
        // one is this run's loss (the overrun arithmetic, src/loss/).
        if (tomb.seenGen === 0 && !tomb.destroyed) tomb.gone = false;
        tomb.seenGen = this.dumpGen;
        tomb.absentSinceMs = undefined;
        return;
      }
      // Another connection on a completed one's key (the kernel reused the id).
      if (tomb !== undefined) this.tombstones.remove(tomb);
      const start = ev.startMs;
      // Seen first in a dump: it began before we listened (the start-up dump:
      // not a start of ours to report) or its NEW was lost (a later dump).
      const older = start === undefined || this.dumpGen <= 1;
      // Unknown yet begun after the event socket opened: its NEW was lost. In the
      // start-up dump only the kernel's start time tells such a connection apart.
      if (this.dumpGen > 1 || (start !== undefined && start >= this.listeningSinceMs)) {
        this.stats.foundInDump++;
      }
      conn = this.create(ev, start ?? nowMs, older ? OPEN : STARTING);
      if (conn === undefined) return;
    }
    conn.lastDumpGen = this.dumpGen;
    if (isOpen(conn.phase)) raiseCounters(this.nums.a, conn.base, ev);
    learnStart(this.nums.a, conn.base, ev);
    // TIME_WAIT/CLOSE: no more traffic, the counters are final; the DESTROY
    // may lag by the TIME_WAIT timeout and the conntrack GC.
    if (ev.tcpState !== undefined && ev.tcpState >= TCP_TIME_WAIT && ev.tcpState <= TCP_CLOSE) {
      conn.phase = endPhase(conn.phase, nowMs);
    }
  }

  /**
   * Applies a full dump: entries update counters; open connections that the
   * dump no longer holds ended without a DESTROY reaching us. Restored
   * baselines apply to the first (start-up) dump only. Same as beginDump,
   * onDumpBatch, endDump.
   */
  applyDump(events: readonly ConntrackEvent[], nowMs: number): void {
    this.beginDump();
    this.onDumpBatch(events, nowMs);
    this.endDump(nowMs);
  }

  /** When the conntrack event socket opened: connections begun since should have sent a NEW. */
  markListening(sinceMs: number): void {
    this.listeningSinceMs = sinceMs;
  }

  /** Starts a dump whose replies arrive in batches (no need to hold the whole dump). */
  beginDump(): void {
    this.dumpGen++;
  }

  /** One batch of dump replies, between beginDump and endDump. */
  onDumpBatch(events: readonly ConntrackEvent[], nowMs: number): void {
    for (const ev of events) this.dumpEntry(ev, nowMs);
  }

  /** One dump reply, between beginDump and endDump; nothing of `ev` is kept (it may be a reused view). */
  onDumpEvent(ev: ConntrackEvent, nowMs: number): void {
    this.dumpEntry(ev, nowMs);
  }

  /** Ends the dump begun last: what it did not list has ended (its DESTROY was lost). */
  endDump(nowMs: number): void {
    const gen = this.dumpGen;
    // Completed connections the dump no longer lists were destroyed; if their
    // DESTROY has not come, it was lost (the overrun arithmetic, src/loss/).
    this.tombstones.forEach((t) => {
      if (t.seenGen >= gen) return;
      t.absentSinceMs ??= nowMs;
      if (!t.gone) {
        t.gone = true;
        this.stats.destroysMissed++;
      }
    });
    this.conns.forEach((conn) => {
      // A NEW that raced the dump request is not "vanished": it was created this generation.
      if (isOpen(conn.phase) && conn.lastDumpGen < gen - 1) {
        conn.phase = endPhase(conn.phase, nowMs);
        this.stats.vanished++;
      }
    });
    if (gen > 1) this.pendingBaselines.clear();
  }

  // --- NFLOG ----------------------------------------------------------------

  onNflog(packets: readonly NflogPacket[], nowMs: number): void {
    this.denies.add(packets, nowMs);
    this.stats.deniedPackets = this.denies.total;
    this.stats.deniedOtherGroup = this.denies.otherGroup;
  }

  /** Denied packets seen since the last call, both directions (the DeniedPackets metric). */
  takeDeniedPackets(): number {
    return this.denies.takeDeniedPackets();
  }

  // --- flush ----------------------------------------------------------------

  /**
   * Records of the interval [startMs, endMs): allowed then denied. Completed
   * connections leave the table afterwards (their totals stay as tombstones
   * for `tombstoneMs`, for late DESTROYs and the baseline snapshot).
   */
  flush(startMs: number, endMs: number): FlowRecord[] {
    const startTime = Math.floor(startMs / 1000);
    const endTime = Math.floor(endMs / 1000);
    // Contributions stream into the aggregator: none is held past its bucket.
    const allowed = this.allowed;
    allowed.begin({ startTime, endTime });
    const done: Conn[] = [];
    // Nothing below allocates a slot, so the array stays the same.
    const n = this.nums.a;
    this.conns.forEach((conn) => {
      const b = conn.base;
      const step = flushStepInto(
        this.step,
        conn.phase,
        n[b + START]!,
        startMs,
        n[b + PO]! - n[b + RPO]!,
        n[b + BO]! - n[b + RBO]!,
        n[b + PR]! - n[b + RPR]!,
        n[b + BR]! - n[b + RBR]!,
      );
      if (step.report) {
        this.contribute(conn, step.delta, step.started, step.completed, allowed);
        n[b + RPO] = n[b + PO]!;
        n[b + RBO] = n[b + BO]!;
        n[b + RPR] = n[b + PR]!;
        n[b + RBR] = n[b + BR]!;
      }
      if (step.next === undefined) done.push(conn);
      else conn.phase = step.next;
    });
    for (const conn of done) {
      const b = conn.base;
      this.addTombstone(tombstoneOf(conn, n, endMs + this.o.tombstoneMs, this.dumpGen));
      this.conns.remove(conn);
      this.nums.release(b);
      this.tupleCounts.release(conn.tupleHash);
    }
    const goneBefore = endMs - this.o.goneTombstoneMs;
    const expired: Tombstone[] = [];
    this.tombstones.forEach((t) => {
      if (t.untilMs < endMs || (t.absentSinceMs !== undefined && t.absentSinceMs < goneBefore)) {
        expired.push(t);
      }
    });
    for (const t of expired) this.tombstones.remove(t);
    this.stats.tracked = this.conns.size;

    const denied = this.denies.drain(this.o.endpoints);
    // Always ended: buckets this flush did not use are dropped.
    const allRecords = allowed.records();
    const allowedRecords = this.o.enabledForAllowed ? allRecords : [];
    const deniedRecords = this.o.enabledForDenied
      ? aggregate(denied, {
          kind: this.o.aggregationKindForDenied,
          includeLabels: this.o.includeLabels,
          includePolicies: this.o.includePolicies,
          startTime,
          endTime,
        })
      : [];
    this.stats.recordsAllowed += allowedRecords.length;
    this.stats.recordsDenied += deniedRecords.length;
    return [...allowedRecords, ...deniedRecords];
  }

  private contribute(
    conn: Conn,
    d: Counters,
    started: boolean,
    completed: boolean,
    out: Aggregator,
  ): void {
    // The owners at the connection's start, not at flush time (IP reuse);
    // kept on the connection while the cache has not changed.
    const version = this.o.endpoints.version;
    let src: Endpoint;
    let dst: Endpoint;
    if (version !== undefined && conn.epVersion === version) {
      src = conn.srcEp!;
      dst = conn.dstEp!;
    } else {
      const startMs = this.nums.a[conn.base + START]!;
      src = this.o.endpoints.lookup(conn.origSrc, startMs);
      dst = this.o.endpoints.lookup(conn.dst, startMs);
      if (version !== undefined) {
        conn.srcEp = src;
        conn.dstEp = dst;
        conn.epVersion = version;
      }
    }
    if (!src.local && !dst.local) {
      this.stats.ignoredNonLocal++;
      return;
    }
    const shared = this.tupleCounts.shared(conn.tupleHash);
    const sport = sportOf(conn);
    if ((shared || this.o.includePolicies) && conn.tuple === undefined) {
      conn.tuple = tupleKey(conn.proto, conn.origSrc, conn.dst, sport, conn.dport);
    }
    const policies = this.o.includePolicies ? this.denies.policiesFor(conn.tuple!) : undefined;
    // One scratch contribution for every call: the aggregator copies what it keeps.
    const c = this.scratch;
    c.src = src;
    c.dst = dst;
    c.srcIP = conn.origSrc;
    c.dstIP = conn.dst;
    c.proto = conn.proto;
    c.srcPort = sport;
    c.dstPort = conn.dport;
    c.started = started;
    c.completed = completed;
    c.policies = policies;
    c.tuple = conn.tuple;
    c.tupleShared = shared;
    c.memo = conn;
    // The source sent the original direction; the destination the reply.
    if (src.local) reportAs(out, c, 'src', d.po, d.bo, d.pr, d.br);
    if (dst.local) reportAs(out, c, 'dst', d.pr, d.br, d.po, d.bo);
  }

  // --- restart continuity -----------------------------------------------------

  /** What every tracked connection has already reported, to save beside the spool. */
  exportBaselines(): BaselineSnapshot {
    const connections: BaselineSnapshot['connections'] = {};
    const completed: NonNullable<BaselineSnapshot['completed']> = {};
    const n = this.nums.a;
    this.conns.forEach((c) => {
      const b = c.base;
      connections[keyOf(c)] = [n[b + RPO]!, n[b + RBO]!, n[b + RPR]!, n[b + RBR]!];
    });
    this.tombstones.forEach((t) => {
      // Only what the kernel may still list can come back after a restart.
      if (t.absentSinceMs === undefined) completed[keyOf(t)] = [t.po, t.bo, t.pr, t.br, t.untilMs];
    });
    return { version: 1, connections, completed };
  }

  /** Baselines from before a restart; applied to connections the start-up dump finds. */
  importBaselines(snapshot: BaselineSnapshot, nowMs = Date.now()): void {
    for (const [key, [po, bo, pr, br]] of Object.entries(snapshot.connections)) {
      this.pendingBaselines.set(key, { po, bo, pr, br });
    }
    // Completed before the restart: tombstones again, so a lingering dump entry or
    // a late DESTROY reports only traffic after the completion (normally none).
    for (const [key, [po, bo, pr, br, until]] of Object.entries(snapshot.completed ?? {})) {
      const identity = parseKey(key);
      if (identity === undefined) continue; // not a key this version writes
      this.addTombstone({
        ...identity,
        po,
        bo,
        pr,
        br,
        // The expiry it had: restarts every few minutes must not keep it forever.
        untilMs: until ?? nowMs + this.o.tombstoneMs,
        absentSinceMs: undefined,
        seenGen: 0,
        // Not this run's to account for in the overrun arithmetic.
        gone: true,
        // Its NEW came before the restart; its DESTROY may still come (TIME_WAIT).
        sawNew: true,
        destroyed: false,
      });
    }
  }
}

export { AggregationKind };
