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
 * A connection's lifecycle is its Phase (connection-state.ts); connections
 * and tombstones are slots of the ConnStore (conn-store.ts), changed through
 * its named transitions; restart baselines are rows (baseline-snapshot.ts);
 * denied counting lives in deny-counter.ts; record building in aggregation.ts.
 */
import type { ConntrackEvent, ConntrackTuple } from '../conntrack/types.js';
import { type EndpointLookup, NO_ENDPOINT } from '../endpoints/types.js';
import type { FlowRecord } from '../format/record.js';
import type { KernelDrop } from '../kdrops/types.js';
import type { NflogPacket } from '../nflog/types.js';
import { hasPorts } from '../util/ip-proto.js';
import { AggregationKind, Aggregator, aggregate, type Contribution } from './aggregation.js';
import {
  BaselineRows,
  type BaselineSnapshot,
  connectionKey,
  rowBaseline,
  rowIdentity,
  rowKey,
} from './baseline-snapshot.js';
import {
  ConnStore,
  HEARD_DESTROY,
  HEARD_NEW,
  LOCAL_DST,
  LOCAL_SRC,
  type NewSlot,
  NO_NEW_COMING,
  portA,
  portB,
} from './conn-store.js';
import {
  type Counters,
  type FlushStep,
  isTombPhase,
  newFlushStep,
  Phase,
} from './connection-state.js';
import { DenyCounter, tupleKey } from './deny-counter.js';
import { EndpointByAddress, hasSpans, Ipv4TextCache } from './ipv4-caches.js';
import { type DenyPolicyNamer, kernelDeny } from './kernel-denies.js';
import { TupleCounts, tupleHash, tupleHash4 } from './tuple-counts.js';

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
  /** Names the policy behind kernel denies (the data plane names none). */
  denyPolicyNamer?: DenyPolicyNamer;
}

/**
 * A tracked connection is a slot of the table's ConnStore: identity,
 * addresses, phase and flags fixed or replaced there; its numbers (latest
 * kernel counters, what it reported, its start times) raised in place, so a
 * dump entry allocates nothing and a NEW allocates no object.
 */
type Slot = number;
// A completed connection's identity and what it reported (its baseline), kept
// for late DESTROYs, stale NEWs and dump entries of a connection in TIME_WAIT,
// is a tombstone: the connection's own slot, in phase Tomb (see ConnStore).

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
  /** Connections on a 5-tuple (and CTA_ID) the table already held: the kernel reopened it. */
  reopened: number;
  /**
   * Kernel counters below what the table already held or reported for the
   * connection: two connections taken for one (without kernel start times a
   * reopened 5-tuple can be), so their records may be off. Never expected.
   */
  inconsistent: number;
  /** Completed connections that left the kernel's table without their DESTROY reaching us. */
  destroysMissed: number;
  /** Denied packets counted (ingress + egress groups). */
  deniedPackets: number;
  /** Deny packets from groups other than the ingress/egress groups (not counted). */
  deniedOtherGroup: number;
  /** Unanswered connections whose packets the kernel dropped after conntrack (not reported as allowed). */
  kernelDeniedConnections: number;
  recordsAllowed: number;
  recordsDenied: number;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * How long after a dump completed a connection its NEW may still be read
 * from the event socket's queue (then it is stale, not a new connection).
 */
const STALE_NEW_MS = 30_000;

/** A restart resumes the last run's reports (intervals contiguous) only if they ended this recently. */
const RESUME_WITHIN_MS = 24 * 3600_000;

const TCP_TIME_WAIT = 7;
const TCP_CLOSE = 8;

/** One reporter's share of a connection's traffic: what it sent is Out, what it received is In. */
function shareAs(c: Mutable<Contribution>, reporter: 'src' | 'dst', d: Counters): void {
  // The source sent the original direction; the destination the reply.
  const src = reporter === 'src';
  c.reporter = reporter;
  c.packetsOut = src ? d.po : d.pr;
  c.bytesOut = src ? d.bo : d.br;
  c.packetsIn = src ? d.pr : d.po;
  c.bytesIn = src ? d.br : d.bo;
}

export class FlowTable {
  private readonly conns = new ConnStore();
  /** Tracked connections per 5-tuple (usually 1): numFlows needs a set only for shared ones. */
  private readonly tupleCounts = new TupleCounts();
  private readonly denies: DenyCounter;
  /** Restored baselines by key, with the kernel start time they belong to (NaN: unknown). */
  private readonly pendingBaselines = new Map<string, { counters: Counters; kstart: number }>();
  private readonly step = newFlushStep();
  /** The scratch of the connection being created (the store copies it). */
  private readonly newSlot: NewSlot = {
    id: 0,
    zone: 0,
    proto: 0,
    origSrc: '',
    origDst: '',
    origSrc4: -1,
    origDst4: -1,
    a: -1,
    b: -1,
    dst: '',
    dst4: -1,
    dport: -1,
    tupleHash: 0,
    phase: Phase.Starting,
    startMs: 0,
    kernelStartMs: Number.NaN,
    gen: 0,
  };
  private readonly scratch: Mutable<Contribution> = {
    src: NO_ENDPOINT,
    dst: NO_ENDPOINT,
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
  };
  /** Allowed records' buckets, kept across flushes: connections remember theirs. */
  private readonly allowed: Aggregator;
  /** IPv4 text by address: one shared flat string per address, not three per connection. */
  private readonly ipv4Text = new Ipv4TextCache();
  /** Endpoint answers by address, when the endpoint source gives their spans. */
  private readonly byAddress: EndpointByAddress | undefined;
  private dumpGen = 0;
  private listeningSinceMs = Number.POSITIVE_INFINITY;
  /** Restored: the end of the last interval a previous run reported (+∞: none). */
  private reportedUntilMs = Number.POSITIVE_INFINITY;
  /** The end of the last interval this run flushed (NaN: none yet). */
  private flushedUntilMs = Number.NaN;
  private readonly o: Required<Omit<FlowTableOptions, 'endpoints' | 'denyPolicyNamer'>> & {
    endpoints: EndpointLookup;
  };
  private readonly denyPolicyNamer: DenyPolicyNamer | undefined;
  readonly stats: FlowTableStats = {
    tracked: 0,
    shed: 0,
    ignoredNonLocal: 0,
    vanished: 0,
    lateDestroys: 0,
    unknownDestroys: 0,
    foundInDump: 0,
    staleNews: 0,
    reopened: 0,
    inconsistent: 0,
    destroysMissed: 0,
    deniedPackets: 0,
    deniedOtherGroup: 0,
    kernelDeniedConnections: 0,
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
    this.denyPolicyNamer = options.denyPolicyNamer;
    this.byAddress = hasSpans(options.endpoints)
      ? new EndpointByAddress(options.endpoints)
      : undefined;
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

  /**
   * One event (a dump entry when `fromDump`). The table reads the event
   * during the call and keeps none of it (numbers and strings are copied into its own records),
   * so `ev` may be a reused decoder view (decodeConntrackBatchView).
   */
  onConntrackEvent(ev: ConntrackEvent, nowMs: number): void {
    if (ev.fromDump) this.dumpEntry(ev, nowMs);
    else if (ev.type === 'new') this.onNew(ev, nowMs);
    else if (ev.type === 'destroy') this.onDestroy(ev, nowMs);
    else this.onUpdate(ev);
  }

  /** A new connection's slot (-1 when shed): in `phase` (Starting, Open or Remainder). */
  private create(ev: ConntrackEvent, startMs: number, phase: Phase): Slot {
    if (this.conns.size >= this.o.maxFlows) {
      this.stats.shed++;
      return -1;
    }
    const o = ev.orig;
    const r = ev.reply;
    const ports = hasPorts(o.proto);
    let restored: Counters | undefined;
    if (this.pendingBaselines.size > 0) {
      const key = connectionKey(ev);
      const saved = this.pendingBaselines.get(key);
      if (saved !== undefined) {
        this.pendingBaselines.delete(key);
        // Another start time: the kernel reopened the 5-tuple since; this one starts from zero.
        const start = ev.startMs;
        if (Number.isNaN(saved.kstart) || start === undefined || start === saved.kstart) {
          restored = saved.counters;
        }
      }
    }
    const id = this.newSlot;
    id.id = ev.id;
    id.zone = ev.zone;
    id.proto = o.proto;
    id.origSrc = this.ipText(o, 'src');
    id.origDst = this.ipText(o, 'dst');
    id.origSrc4 = o.family === 4 && o.src4 !== undefined ? o.src4 : -1;
    id.origDst4 = o.family === 4 && o.dst4 !== undefined ? o.dst4 : -1;
    id.a = portA(ev, ports);
    id.b = portB(ev, ports);
    // The reply's source is the original destination unless DNAT rewrote it.
    const sameDst =
      r === undefined ||
      (r.family === 4 && o.family === 4 && r.src4 !== undefined && r.src4 === o.dst4);
    id.dst = sameDst ? id.origDst : this.ipText(r, 'src');
    id.dport = ports ? (r ? r.sport : o.dport) : -1;
    const sport = ports ? o.sport : -1;
    // The real destination as a number when the event has it (the decoder's view).
    const dst4 = sameDst ? o.dst4 : r.family === 4 ? r.src4 : undefined;
    id.dst4 = o.family === 4 && dst4 !== undefined ? dst4 : -1;
    id.tupleHash =
      id.origSrc4 >= 0 && id.dst4 >= 0
        ? tupleHash4(o.proto, id.origSrc4, id.dst4, sport, id.dport)
        : tupleHash(o.proto, id.origSrc, id.dst, sport, id.dport);
    // A restored connection was already reported as started before the restart.
    id.phase = restored !== undefined && phase === Phase.Starting ? Phase.Open : phase;
    id.startMs = startMs;
    id.kernelStartMs = ev.startMs ?? Number.NaN;
    id.gen = this.dumpGen;
    const s = this.conns.add(id);
    if (restored !== undefined) this.conns.setReported(s, restored);
    this.tupleCounts.add(id.tupleHash);
    this.stats.tracked = this.conns.size;
    return s;
  }

  private ipText(t: ConntrackTuple, side: 'src' | 'dst'): string {
    const n = t.family === 4 ? (side === 'src' ? t.src4 : t.dst4) : undefined;
    if (n === undefined) return t[side];
    let text = this.ipv4Text.get(n);
    if (text === undefined) {
      text = t[side];
      this.ipv4Text.set(n, text);
    }
    return text;
  }

  /*
   * Several slots can share an identity: the kernel reopens a 5-tuple whose
   * connection is in TIME_WAIT by killing it (DESTROY) and tracking a new one
   * (NEW), usually in the same slab slot, so under the same CTA_ID. The event
   * socket keeps the kernel's order (NEW, DESTROY, NEW, DESTROY, ...), and
   * DESTROYs and dump entries carry the kernel's start time: an event is
   * placed by its start time where it has one, else by that order. Dump
   * entries are read after every event queued before they were generated
   * (the capture drains the event socket first), but possibly after newer
   * ones: a listing can be older than a DESTROY already read, never younger
   * than a NEW not yet read.
   */

  private onNew(ev: ConntrackEvent, nowMs: number): void {
    const st = this.conns;
    const n = this.conns.gather(ev);
    if (n > 0) {
      const hits = st.hits;
      let stale = -1;
      for (let k = 0; k < n; k++) {
        const s = hits[k]!;
        // Its NEW was read, it was destroyed, or the kernel never sends it: not its NEW.
        if (st.heard(s, HEARD_NEW | HEARD_DESTROY | NO_NEW_COMING)) continue;
        if (!st.isTomb(s)) {
          // A dump listed it while this NEW was still queued: its NEW.
          st.hear(s, HEARD_NEW);
          return;
        }
        // A dump completed it (TIME_WAIT) before this NEW, still queued, was read: stale.
        if (nowMs - (st.tombUntil(s) - this.o.tombstoneMs) <= STALE_NEW_MS) stale = s;
      }
      if (stale >= 0) {
        st.hear(stale, HEARD_NEW);
        this.stats.staleNews++;
        return;
      }
      // The kernel reopened the 5-tuple: another connection.
      this.stats.reopened++;
      this.supersede(n);
    }
    const s = this.create(ev, ev.startMs ?? nowMs, Phase.Starting);
    if (s >= 0) this.conns.hear(s, HEARD_NEW);
  }

  /**
   * The gathered slots still open have ended: the kernel holds one
   * connection per tuple, and it holds a newer one now. Their DESTROY was
   * lost (a later one, if it still comes, finds them by start time or order).
   */
  private supersede(n: number): void {
    const st = this.conns;
    for (let k = 0; k < n; k++) {
      const s = st.hits[k]!;
      if (st.end(s)) this.stats.vanished++;
    }
  }

  /**
   * Which gathered slot a DESTROY ends: the one with its start time; else,
   * in the kernel's order, the oldest not yet destroyed whose start is
   * unknown (any, when the kernel gives no start times); -1: none.
   */
  private destroyedOne(ev: ConntrackEvent, n: number): Slot {
    const st = this.conns;
    const start = ev.startMs;
    let oldest = -1;
    for (let k = 0; k < n; k++) {
      const s = st.hits[k]!;
      if (st.heard(s, HEARD_DESTROY)) continue;
      const kstart = st.kernelStartMs(s);
      if (start !== undefined && kstart === start) return s;
      if (start !== undefined && !Number.isNaN(kstart)) continue; // another connection's
      if (oldest < 0 || st.firstSeenMs(s) < st.firstSeenMs(oldest)) oldest = s;
    }
    return oldest;
  }

  /**
   * Which gathered slot a dump entry (or an UPDATE) lists: the one with its
   * start time (even one already destroyed: then the listing is older than
   * the DESTROY); else the newest connection not destroyed whose start is
   * unknown, else such a tombstone; -1: a connection new to the table.
   */
  private listedOne(ev: ConntrackEvent, n: number): Slot {
    const st = this.conns;
    const start = ev.startMs;
    let conn = -1;
    let tomb = -1;
    for (let k = 0; k < n; k++) {
      const s = st.hits[k]!;
      const kstart = st.kernelStartMs(s);
      if (start !== undefined && kstart === start) return s;
      if (st.heard(s, HEARD_DESTROY)) continue;
      if (start !== undefined && !Number.isNaN(kstart)) continue; // another connection's
      if (st.isTomb(s)) tomb = s;
      else if (conn < 0 || st.firstSeenMs(s) > st.firstSeenMs(conn)) conn = s;
    }
    return conn >= 0 ? conn : tomb;
  }

  private onUpdate(ev: ConntrackEvent): void {
    const n = this.conns.gather(ev);
    const s = n > 0 ? this.listedOne(ev, n) : -1;
    if (s >= 0 && this.conns.isOpen(s)) this.raise(s, ev);
  }

  /** Raises slot `s`'s counters to the event's, counting a reading below them. */
  private raise(s: Slot, ev: ConntrackEvent): void {
    if (this.conns.raise(s, ev)) this.stats.inconsistent++;
  }

  private onDestroy(ev: ConntrackEvent, nowMs: number): void {
    const st = this.conns;
    const n = this.conns.gather(ev);
    let s = n > 0 ? this.destroyedOne(ev, n) : -1;
    if (s >= 0 && st.isTomb(s)) {
      // Completed earlier (TIME_WAIT in a dump, or vanished): report only the remainder.
      this.stats.lateDestroys++;
      const reported = st.reported(s);
      st.remove(s);
      s = this.create(ev, ev.startMs ?? nowMs, Phase.Remainder);
      if (s < 0) return;
      st.setReported(s, reported);
    } else if (s < 0) {
      // Its NEW was lost (or came before we listened): started and completed
      // now, unless its start timestamp is older than the interval.
      this.stats.unknownDestroys++;
      if (n > 0) this.supersede(n);
      s = this.create(ev, ev.startMs ?? nowMs, Phase.Starting);
      if (s < 0) return;
    }
    this.raise(s, ev);
    st.learnStart(s, ev);
    // Its NEW, if it ever comes, came first: the socket keeps a connection's events in order.
    st.end(s);
    st.hear(s, HEARD_NEW | HEARD_DESTROY);
  }

  private dumpEntry(ev: ConntrackEvent, nowMs: number): void {
    const st = this.conns;
    const n = this.conns.gather(ev);
    let s = n > 0 ? this.listedOne(ev, n) : -1;
    if (s >= 0 && st.isTomb(s)) {
      // Already completed, still in the kernel's table (TIME_WAIT). One restored
      // after a restart and still listed sends its DESTROY to this run: a lost
      // one is this run's loss (the overrun arithmetic, src/loss/).
      st.tombListed(s, this.dumpGen);
      return;
    }
    // A listing older than the DESTROY already read: nothing new.
    if (s >= 0 && st.heard(s, HEARD_DESTROY)) return;
    if (s < 0) {
      if (n > 0) {
        // The kernel reopened the 5-tuple; this listing shows the new connection.
        this.stats.reopened++;
        this.supersede(n);
      }
      s = this.createListed(ev, nowMs);
      if (s < 0) return;
    }
    st.listed(s, this.dumpGen);
    if (st.isOpen(s)) this.raise(s, ev);
    st.learnStart(s, ev);
    // TIME_WAIT/CLOSE: no more traffic, the counters are final; the DESTROY
    // may lag by the TIME_WAIT timeout and the conntrack GC.
    if (ev.tcpState !== undefined && ev.tcpState >= TCP_TIME_WAIT && ev.tcpState <= TCP_CLOSE) {
      st.end(s);
    }
  }

  /**
   * A connection first seen in a dump: its NEW was lost, since every event
   * queued before the dump was read before it; or, in the start-up dump, it
   * began before we listened (the kernel never sends us its NEW), reported
   * as started only if it began after the last interval a previous run
   * reported (a restart).
   */
  private createListed(ev: ConntrackEvent, nowMs: number): Slot {
    const start = ev.startMs;
    let phase: Phase;
    const preexisting = this.dumpGen <= 1 && (start === undefined || start < this.listeningSinceMs);
    if (preexisting) {
      phase = start !== undefined && start >= this.reportedUntilMs ? Phase.Starting : Phase.Open;
    } else {
      this.stats.foundInDump++;
      phase = start === undefined ? Phase.Open : Phase.Starting;
    }
    const s = this.create(ev, start ?? nowMs, phase);
    if (s >= 0 && preexisting) this.conns.hear(s, NO_NEW_COMING);
    return s;
  }

  /**
   * Where this run's first interval begins when it resumes a previous run's
   * reports (importBaselines): the end of the last interval reported, if
   * within a day; undefined: at the start.
   */
  get resumeFromMs(): number | undefined {
    return Number.isFinite(this.reportedUntilMs) ? this.reportedUntilMs : undefined;
  }

  /** When the conntrack event socket opened: connections begun since should have sent a NEW. */
  markListening(sinceMs: number): void {
    this.listeningSinceMs = sinceMs;
  }

  /**
   * Starts a dump, fed entry by entry (onDumpEvent) and ended by endDump when
   * it completed. Restored baselines apply to the first (start-up) dump only.
   */
  beginDump(): void {
    this.dumpGen++;
  }

  /** One dump reply, between beginDump and endDump; nothing of `ev` is kept (it may be a reused view). */
  onDumpEvent(ev: ConntrackEvent, nowMs: number): void {
    this.dumpEntry(ev, nowMs);
  }

  /** Ends the dump begun last: what it did not list has ended (its DESTROY was lost). */
  endDump(nowMs: number): void {
    const gen = this.dumpGen;
    const st = this.conns;
    for (let s = 0; s < st.extent; s++) {
      const phase = st.phase(s);
      if (phase === Phase.Free) continue;
      const listedGen = st.listedGen(s);
      if (isTombPhase(phase)) {
        // Completed connections the dump no longer lists were destroyed; if their
        // DESTROY has not come, it was lost (the overrun arithmetic, src/loss/).
        if (listedGen < gen && st.tombUnlisted(s, nowMs)) this.stats.destroysMissed++;
      } else if (listedGen < gen - 1 && st.end(s)) {
        // A NEW that raced the dump request is not "vanished": it was created this generation.
        this.stats.vanished++;
      }
    }
    if (gen > 1) this.pendingBaselines.clear();
  }

  // --- NFLOG ----------------------------------------------------------------

  onNflog(packets: readonly NflogPacket[], nowMs: number): void {
    this.denies.add(packets, nowMs);
    this.stats.deniedPackets = this.denies.total;
    this.stats.deniedOtherGroup = this.denies.otherGroup;
  }

  /** Kernel drops with a policy reason (deduplicated against NFLOG by the caller): denied packets. */
  onKernelDenies(drops: readonly KernelDrop[], nowMs: number): void {
    for (const d of drops) {
      this.denies.addDeny(kernelDeny(d, this.o.endpoints, this.denyPolicyNamer, nowMs));
    }
    this.stats.deniedPackets = this.denies.total;
  }

  /** Denied packets seen since the last call, both directions (the DeniedPackets metric). */
  takeDeniedPackets(): number {
    return this.denies.takeDeniedPackets();
  }

  /** Whether the kernel dropped this interval's packets of the slot's 5-tuple (deny path). */
  private kernelDenied(s: Slot): boolean {
    const st = this.conns;
    return this.denies.kernelDeniedTuple(
      tupleKey(st.proto(s), st.src(s), st.realDst(s), st.sport(s), st.dport(s)),
    );
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
    const done: Slot[] = [];
    const st = this.conns;
    const step = this.step;
    const goneBefore = endMs - this.o.goneTombstoneMs;
    for (let s = 0; s < st.extent; s++) {
      const phase = st.phase(s);
      if (phase === Phase.Free) continue;
      if (isTombPhase(phase)) {
        // Forgotten at its expiry, or a while after the kernel stopped listing it.
        if (st.tombExpired(s, endMs, goneBefore)) st.remove(s);
        continue;
      }
      // Below what it reported: never negative counts; the baseline stays.
      if (st.flushStep(s, startMs, step)) this.stats.inconsistent++;
      if (step.report) {
        // Never answered and dropped by the kernel after conntrack counted it (a TC
        // drop on the way to the pod): denied traffic, reported as such, not allowed.
        if (st.unanswered(s) && this.denies.kernelDenied > 0 && this.kernelDenied(s)) {
          this.stats.kernelDeniedConnections++;
        } else {
          this.contribute(s, step, allowed);
        }
        st.addReported(s, step.delta);
      }
      if (step.stays) st.setPhase(s, Phase.Open);
      else done.push(s);
    }
    // After every contribution: a 5-tuple shared with a completed connection
    // counts as shared for the whole flush.
    for (const s of done) {
      this.tupleCounts.release(st.tupleHash(s));
      // Destroyed: the kernel sends nothing more of it, and no later dump
      // lists it (each is generated after this flush): nothing to remember.
      if (st.heard(s, HEARD_DESTROY)) st.remove(s);
      else st.entomb(s, endMs + this.o.tombstoneMs, this.dumpGen, false);
    }
    this.stats.tracked = this.conns.size;
    this.flushedUntilMs = endMs;

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

  private contribute(s: Slot, step: FlushStep, out: Aggregator): void {
    const st = this.conns;
    // The owners at the connection's start, not at flush time (IP reuse);
    // kept on the connection while the cache has not changed.
    const version = this.o.endpoints.version;
    let local = st.locality(s, version);
    if (local < 0) {
      const startMs = st.firstSeenMs(s);
      const byAddress = version !== undefined ? this.byAddress : undefined;
      const src =
        byAddress !== undefined && st.hasSrc4(s)
          ? byAddress.lookup(st.src4(s), st.src(s), startMs, version!)
          : this.o.endpoints.lookup(st.src(s), startMs);
      const dst =
        byAddress !== undefined && st.hasRealDst4(s)
          ? byAddress.lookup(st.realDst4(s), st.realDst(s), startMs, version!)
          : this.o.endpoints.lookup(st.realDst(s), startMs);
      local = st.setEndpoints(s, src, dst, version);
    }
    if (local === 0) {
      this.stats.ignoredNonLocal++;
      return;
    }
    const shared = this.tupleCounts.shared(st.tupleHash(s));
    const proto = st.proto(s);
    const sport = st.sport(s);
    const dport = st.dport(s);
    let tuple = st.tupleText(s);
    // Allow-policy names come from NFLOG allow rules, which many engines do not log: with
    // none this interval, no connection needs its 5-tuple key (a string kept per connection).
    const withPolicies = this.o.includePolicies && this.denies.hasAllowPolicies;
    if ((shared || withPolicies) && tuple === undefined) {
      tuple = tupleKey(proto, st.src(s), st.realDst(s), sport, dport);
      st.setTupleText(s, tuple);
    }
    const policies = withPolicies ? this.denies.policiesFor(tuple!) : undefined;
    // One scratch contribution for every call: the aggregator copies what it keeps.
    const c = this.scratch;
    c.src = st.srcEndpoint(s);
    c.dst = st.dstEndpoint(s);
    c.srcIP = st.src(s);
    c.dstIP = st.realDst(s);
    c.proto = proto;
    c.srcPort = sport;
    c.dstPort = dport;
    c.started = step.started;
    c.completed = step.completed;
    c.policies = policies;
    c.tuple = tuple;
    c.tupleShared = shared;
    if ((local & LOCAL_SRC) !== 0) {
      shareAs(c, 'src', step.delta);
      out.add(c, st.memoCells, st.memoAt(s, 'src'));
    }
    if ((local & LOCAL_DST) !== 0) {
      shareAs(c, 'dst', step.delta);
      out.add(c, st.memoCells, st.memoAt(s, 'dst'));
    }
  }

  // --- restart continuity -----------------------------------------------------

  /**
   * What every tracked connection has already reported, and the completed
   * ones the kernel may still list, to save beside the spool: rows of
   * numbers straight from the slots (see baseline-snapshot.ts).
   */
  exportBaselines(): BaselineSnapshot {
    const rows = new BaselineRows();
    const st = this.conns;
    for (let s = 0; s < st.extent; s++) {
      // Of the completed, only what the kernel may still list can come back after a restart.
      if (st.isLive(s) && st.mayOutliveRestart(s)) st.saveRow(s, rows);
    }
    return rows.snapshot(Number.isNaN(this.flushedUntilMs) ? undefined : this.flushedUntilMs);
  }

  /** Baselines from before a restart; applied to connections the start-up dump finds. */
  importBaselines(snapshot: BaselineSnapshot, nowMs: number): void {
    const until = snapshot.reportedUntilMs;
    // Resumed only from a recent report (a day): an interval, and its starts, spanning the gap.
    if (until !== undefined && until <= nowMs && nowMs - until <= RESUME_WITHIN_MS) {
      this.reportedUntilMs = until;
    }
    const st = this.conns;
    for (let r = 0; r < snapshot.count; r++) {
      const row = rowBaseline(snapshot, r);
      if (!row.completed) {
        this.pendingBaselines.set(rowKey(snapshot, r), {
          counters: row.counters,
          kstart: row.kernelStartMs,
        });
        continue;
      }
      // Completed before the restart: tombstones again, so a lingering dump entry or
      // a late DESTROY reports only traffic after the completion (normally none).
      const x = rowIdentity(snapshot, r);
      st.restoreTomb(
        {
          id: x.id,
          zone: x.zone,
          proto: x.proto,
          origSrc: x.src,
          origDst: x.dst,
          origSrc4: x.src4,
          origDst4: x.dst4,
          a: x.a,
          b: x.b,
          dst: x.dst,
          dst4: -1,
          dport: -1,
          tupleHash: 0,
          phase: Phase.Ended,
          startMs: 0,
          kernelStartMs: Number.NaN,
          gen: 0,
        },
        // The expiry it had: restarts every few minutes must not keep it forever.
        Number.isNaN(row.untilMs) ? nowMs + this.o.tombstoneMs : row.untilMs,
        row.counters,
        row.kernelStartMs,
      );
    }
  }
}

export { AggregationKind };
