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
 */
import type { ConntrackEvent } from '../conntrack/types.js';
import type { EndpointLookup } from '../endpoints/types.js';
import type { FlowRecord } from '../format/record.js';
import type { NflogPacket } from '../nflog/types.js';
import { AggregationKind, aggregate, type Contribution } from './aggregation.js';

export interface FlowTableOptions {
  endpoints: EndpointLookup;
  aggregationKindForAllowed: AggregationKind;
  aggregationKindForDenied: AggregationKind;
  includeLabels: boolean;
  includePolicies?: boolean;
  enabledForAllowed?: boolean;
  enabledForDenied?: boolean;
  ingressGroup: number;
  egressGroup: number;
  /** Tracked connections at most; more are shed and counted. */
  maxFlows?: number;
  /** How long a completed connection's reported totals are remembered (default 10 min). */
  tombstoneMs?: number;
}

interface Counters {
  po: number; // packets, original direction
  bo: number;
  pr: number; // packets, reply direction
  br: number;
}

/** The lifecycle of a tracked connection as a union, not flags. */
type ConnPhase = { kind: 'open' } | { kind: 'closed'; atMs: number };

interface Conn {
  readonly key: string;
  readonly proto: number;
  readonly src: string;
  readonly dst: string;
  readonly sport: number | undefined;
  readonly dport: number | undefined;
  readonly startMs: number;
  phase: ConnPhase;
  cur: Counters;
  reported: Counters;
  startReported: boolean;
  completeReported: boolean;
  lastDumpGen: number;
}

interface Tombstone {
  reported: Counters;
  untilMs: number;
}

interface DenyEntry {
  reporter: 'src' | 'dst';
  proto: number;
  src: string;
  dst: string;
  sport: number | undefined;
  dport: number | undefined;
  packets: number;
  bytes: number;
  firstMs: number;
  policy: string;
}

export interface BaselineSnapshot {
  version: 1;
  /** key → [packetsOrig, bytesOrig, packetsReply, bytesReply] already reported. */
  connections: Record<string, [number, number, number, number]>;
}

export interface FlowTableStats {
  tracked: number;
  shed: number;
  ignoredNonLocal: number;
  vanished: number;
  lateDestroys: number;
  deniedPackets: number;
  recordsAllowed: number;
  recordsDenied: number;
}

const TCP_TIME_WAIT = 7;
const TCP_CLOSE = 8;

const ZERO: Counters = Object.freeze({ po: 0, bo: 0, pr: 0, br: 0 });

function hasPorts(proto: number): boolean {
  return proto === 6 || proto === 17 || proto === 132 || proto === 136 || proto === 33;
}

export function connectionKey(ev: ConntrackEvent): string {
  const o = ev.orig;
  const p = hasPorts(o.proto) ? `${o.sport}|${o.dport}` : `${o.icmpType ?? ''}|${o.icmpId ?? ''}`;
  return `${ev.id}|${ev.zone}|${o.proto}|${o.src}|${o.dst}|${p}`;
}

function countersOf(ev: ConntrackEvent): Counters | undefined {
  if (!ev.countersOrig && !ev.countersReply) return undefined;
  return {
    po: ev.countersOrig?.packets ?? 0,
    bo: ev.countersOrig?.bytes ?? 0,
    pr: ev.countersReply?.packets ?? 0,
    br: ev.countersReply?.bytes ?? 0,
  };
}

function nsToMs(ns: bigint | undefined): number | undefined {
  return ns === undefined ? undefined : Number(ns / 1_000_000n);
}

export class FlowTable {
  private readonly conns = new Map<string, Conn>();
  private readonly tombstones = new Map<string, Tombstone>();
  private denies = new Map<string, DenyEntry>();
  private previousDenies = new Set<string>();
  private readonly allowPolicies = new Map<string, Set<string>>();
  private pendingBaselines = new Map<string, Counters>();
  private dumpGen = 0;
  private deniedSinceTake = 0;
  private readonly o: Required<Omit<FlowTableOptions, 'endpoints'>> & { endpoints: EndpointLookup };
  readonly stats: FlowTableStats = {
    tracked: 0,
    shed: 0,
    ignoredNonLocal: 0,
    vanished: 0,
    lateDestroys: 0,
    deniedPackets: 0,
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
      ...options,
    };
  }

  // --- conntrack ------------------------------------------------------------

  onConntrack(events: readonly ConntrackEvent[], nowMs: number): void {
    for (const ev of events) {
      if (ev.fromDump) this.dumpEntry(ev, nowMs);
      else if (ev.type === 'new') this.onNew(ev, nowMs);
      else if (ev.type === 'destroy') this.onDestroy(ev, nowMs);
      else this.onUpdate(ev);
    }
  }

  private create(ev: ConntrackEvent, startMs: number, startReported: boolean): Conn | undefined {
    if (this.conns.size >= this.o.maxFlows) {
      this.stats.shed++;
      return undefined;
    }
    const o = ev.orig;
    const r = ev.reply;
    const key = connectionKey(ev);
    const ports = hasPorts(o.proto);
    const restored = this.pendingBaselines.get(key);
    if (restored) this.pendingBaselines.delete(key);
    const conn: Conn = {
      key,
      proto: o.proto,
      src: o.src,
      // The reply's source is the real destination (the backend after DNAT).
      dst: r ? r.src : o.dst,
      sport: ports ? o.sport : undefined,
      dport: ports ? (r ? r.sport : o.dport) : undefined,
      startMs,
      phase: { kind: 'open' },
      cur: { ...ZERO },
      reported: restored ?? { ...ZERO },
      startReported: startReported || restored !== undefined,
      completeReported: false,
      lastDumpGen: this.dumpGen,
    };
    this.conns.set(key, conn);
    this.stats.tracked = this.conns.size;
    return conn;
  }

  private onNew(ev: ConntrackEvent, nowMs: number): void {
    const key = connectionKey(ev);
    if (this.conns.has(key)) return;
    this.tombstones.delete(key);
    this.create(ev, nsToMs(ev.startNs) ?? nowMs, false);
  }

  private onUpdate(ev: ConntrackEvent): void {
    const conn = this.conns.get(connectionKey(ev));
    const c = countersOf(ev);
    if (conn && c && conn.phase.kind === 'open') conn.cur = c;
  }

  private onDestroy(ev: ConntrackEvent, nowMs: number): void {
    const key = connectionKey(ev);
    let conn = this.conns.get(key);
    const c = countersOf(ev);
    if (!conn) {
      const tomb = this.tombstones.get(key);
      const startMs = nsToMs(ev.startNs) ?? nowMs;
      conn = this.create(ev, startMs, tomb !== undefined);
      if (!conn) return;
      if (tomb) {
        // Completed earlier (vanished from a dump): report only the remainder.
        this.stats.lateDestroys++;
        conn.reported = tomb.reported;
        conn.completeReported = true;
        this.tombstones.delete(key);
      }
    }
    if (c) conn.cur = maxCounters(conn.cur, c);
    if (conn.phase.kind === 'open')
      conn.phase = { kind: 'closed', atMs: nsToMs(ev.stopNs) ?? nowMs };
  }

  private dumpEntry(ev: ConntrackEvent, nowMs: number): void {
    const key = connectionKey(ev);
    let conn = this.conns.get(key);
    if (!conn) {
      if (this.tombstones.has(key)) return; // already completed
      const start = nsToMs(ev.startNs);
      // Seen first in a dump: it began before we listened (the start-up dump:
      // not a start of ours to report) or its NEW was lost (a resync dump).
      conn = this.create(ev, start ?? nowMs, start === undefined || this.dumpGen <= 1);
      if (!conn) return;
    }
    conn.lastDumpGen = this.dumpGen;
    const c = countersOf(ev);
    if (c && conn.phase.kind === 'open') conn.cur = maxCounters(conn.cur, c);
    // TIME_WAIT/CLOSE: no more traffic, the counters are final; the DESTROY
    // may lag by the TIME_WAIT timeout and the conntrack GC.
    if (
      conn.phase.kind === 'open' &&
      ev.tcpState !== undefined &&
      ev.tcpState >= TCP_TIME_WAIT &&
      ev.tcpState <= TCP_CLOSE
    ) {
      conn.phase = { kind: 'closed', atMs: nowMs };
    }
  }

  /**
   * Applies a full dump: entries update counters; open connections that the
   * dump no longer holds ended without a DESTROY reaching us.
   */
  applyDump(events: readonly ConntrackEvent[], nowMs: number): void {
    this.dumpGen++;
    const gen = this.dumpGen;
    for (const ev of events) this.dumpEntry(ev, nowMs);
    for (const conn of this.conns.values()) {
      // A NEW that raced the dump request is not "vanished": it was created this generation.
      if (conn.phase.kind === 'open' && conn.lastDumpGen < gen - 1) {
        conn.phase = { kind: 'closed', atMs: nowMs };
        this.stats.vanished++;
      }
    }
    // Restored baselines apply to the start-up dump only.
    if (gen > 1) this.pendingBaselines.clear();
  }

  // --- NFLOG ----------------------------------------------------------------

  onNflog(packets: readonly NflogPacket[], nowMs: number): void {
    for (const p of packets) {
      const v = p.verdict;
      if (!v) continue;
      const ports = hasPorts(p.proto);
      if (v.action === 'allow') {
        if (!this.o.includePolicies) continue;
        const k = `${p.proto}|${p.src}|${p.dst}|${ports ? p.sport : ''}|${ports ? p.dport : ''}`;
        let set = this.allowPolicies.get(k);
        if (!set) {
          set = new Set();
          this.allowPolicies.set(k, set);
        }
        set.add(v.policyName);
        continue;
      }
      if (v.action !== 'deny') continue;
      const reporter =
        p.group === this.o.ingressGroup
          ? 'dst'
          : p.group === this.o.egressGroup
            ? 'src'
            : undefined;
      if (!reporter) continue;
      this.stats.deniedPackets++;
      this.deniedSinceTake++;
      const k = `${reporter}|${p.proto}|${p.src}|${p.dst}|${ports ? p.sport : ''}|${ports ? p.dport : ''}`;
      const e = this.denies.get(k);
      if (e) {
        e.packets++;
        e.bytes += p.bytes;
      } else {
        this.denies.set(k, {
          reporter,
          proto: p.proto,
          src: p.src,
          dst: p.dst,
          sport: ports ? p.sport : undefined,
          dport: ports ? p.dport : undefined,
          packets: 1,
          bytes: p.bytes,
          firstMs: p.timestampMs ?? nowMs,
          policy: v.policyName,
        });
      }
    }
  }

  /** Denied packets seen since the last call (for the DeniedPackets metric). */
  takeDeniedPackets(): number {
    const n = this.deniedSinceTake;
    this.deniedSinceTake = 0;
    return n;
  }

  // --- flush ----------------------------------------------------------------

  flush(startMs: number, endMs: number): FlowRecord[] {
    const startTime = Math.floor(startMs / 1000);
    const endTime = Math.floor(endMs / 1000);
    const allowed: Contribution[] = [];
    for (const conn of this.conns.values()) {
      const d: Counters = {
        po: conn.cur.po - conn.reported.po,
        bo: conn.cur.bo - conn.reported.bo,
        pr: conn.cur.pr - conn.reported.pr,
        br: conn.cur.br - conn.reported.br,
      };
      // A connection older than the interval (found by the start-up dump) did not start in it.
      const started = !conn.startReported && conn.startMs >= startMs;
      const completed = conn.phase.kind === 'closed' && !conn.completeReported;
      const traffic = d.po > 0 || d.bo > 0 || d.pr > 0 || d.br > 0;
      if (traffic || started || completed) {
        this.contribute(conn, d, started, completed, allowed);
        conn.reported = { ...conn.cur };
        conn.startReported = true;
        if (completed) conn.completeReported = true;
      }
    }
    // Completed connections leave the table; their totals stay as tombstones.
    for (const [key, conn] of this.conns) {
      if (conn.phase.kind === 'closed' && conn.completeReported) {
        this.tombstones.set(key, { reported: conn.reported, untilMs: endMs + this.o.tombstoneMs });
        this.conns.delete(key);
      }
    }
    for (const [key, t] of this.tombstones) if (t.untilMs < endMs) this.tombstones.delete(key);
    this.stats.tracked = this.conns.size;
    this.allowPolicies.clear();

    const denied: Contribution[] = [];
    const seenDenies = new Set<string>();
    for (const [key, e] of this.denies) {
      seenDenies.add(key);
      const src = this.o.endpoints.lookup(e.src, e.firstMs);
      const dst = this.o.endpoints.lookup(e.dst, e.firstMs);
      const isDst = e.reporter === 'dst';
      denied.push({
        src,
        dst,
        srcIP: e.src,
        dstIP: e.dst,
        proto: e.proto,
        srcPort: e.sport,
        dstPort: e.dport,
        reporter: e.reporter,
        action: 'deny',
        started: !this.previousDenies.has(key),
        completed: false,
        packetsIn: isDst ? e.packets : 0,
        packetsOut: isDst ? 0 : e.packets,
        bytesIn: isDst ? e.bytes : 0,
        bytesOut: isDst ? 0 : e.bytes,
        policies: [e.policy],
      });
    }
    this.previousDenies = seenDenies;
    this.denies = new Map();

    const common = {
      includeLabels: this.o.includeLabels,
      includePolicies: this.o.includePolicies,
      startTime,
      endTime,
    };
    const allowedRecords = this.o.enabledForAllowed
      ? aggregate(allowed, { ...common, kind: this.o.aggregationKindForAllowed })
      : [];
    const deniedRecords = this.o.enabledForDenied
      ? aggregate(denied, { ...common, kind: this.o.aggregationKindForDenied })
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
    out: Contribution[],
  ): void {
    const src = this.o.endpoints.lookup(conn.src, conn.startMs);
    const dst = this.o.endpoints.lookup(conn.dst, conn.startMs);
    if (!src.local && !dst.local) {
      this.stats.ignoredNonLocal++;
      return;
    }
    const policies = this.o.includePolicies
      ? this.allowPolicies.get(
          `${conn.proto}|${conn.src}|${conn.dst}|${conn.sport ?? ''}|${conn.dport ?? ''}`,
        )
      : undefined;
    const base = {
      src,
      dst,
      srcIP: conn.src,
      dstIP: conn.dst,
      proto: conn.proto,
      srcPort: conn.sport,
      dstPort: conn.dport,
      action: 'allow' as const,
      started,
      completed,
      policies: policies ? [...policies] : undefined,
    };
    if (src.local) {
      out.push({
        ...base,
        reporter: 'src',
        packetsOut: d.po,
        bytesOut: d.bo,
        packetsIn: d.pr,
        bytesIn: d.br,
      });
    }
    if (dst.local) {
      out.push({
        ...base,
        reporter: 'dst',
        packetsIn: d.po,
        bytesIn: d.bo,
        packetsOut: d.pr,
        bytesOut: d.br,
      });
    }
  }

  // --- restart continuity -----------------------------------------------------

  /** What every tracked connection has already reported, to save beside the spool. */
  exportBaselines(): BaselineSnapshot {
    const connections: BaselineSnapshot['connections'] = {};
    for (const [key, c] of this.conns)
      connections[key] = [c.reported.po, c.reported.bo, c.reported.pr, c.reported.br];
    for (const [key, t] of this.tombstones) {
      connections[key] = [t.reported.po, t.reported.bo, t.reported.pr, t.reported.br];
    }
    return { version: 1, connections };
  }

  /** Baselines from before a restart; applied to connections the start-up dump finds. */
  importBaselines(snapshot: BaselineSnapshot): void {
    for (const [key, [po, bo, pr, br]] of Object.entries(snapshot.connections)) {
      this.pendingBaselines.set(key, { po, bo, pr, br });
    }
  }
}

function maxCounters(a: Counters, b: Counters): Counters {
  // Kernel counters only grow; never let a stale reading move them back.
  return {
    po: Math.max(a.po, b.po),
    bo: Math.max(a.bo, b.bo),
    pr: Math.max(a.pr, b.pr),
    br: Math.max(a.br, b.br),
  };
}

export { AggregationKind };
