/**
 * The soak's verdict, pure: flow records (as delivered to CloudWatch) against
 * the kernel's account of every connection. Per 5-tuple and reporter, the
 * sums over records of packets and bytes must equal conntrack's counters;
 * records from an IP that changed owners must name the owner of the moment.
 *
 * Excused, and counted, not failed: groups that are not exact and whose
 * connection was alive during a kill window (from the last flush before a
 * kill -9 to the restart: its last interval's counts died with the process,
 * or were repeated when the kill fell between the records and the saved
 * baselines) and connections born and dead inside a reported overrun window
 * (no dump ever saw them; the agent counts them as HiddenConnections).
 */
import type { FlowRecord } from '../../src/format/record.js';
import type { TruthConnection } from './truth-log.js';

export interface TimeWindow {
  fromMs: number;
  toMs: number;
}

export interface Tenancy {
  ip: string;
  namespace: string;
  name: string;
  fromMs: number;
  /** Infinity while the pod still exists. */
  toMs: number;
}

export interface CheckInput {
  truth: readonly TruthConnection[];
  /** Delivered records, duplicates already removed. */
  records: readonly FlowRecord[];
  localIps: ReadonlySet<string>;
  /** Around each kill -9: [last flush before it, restart + margin]. */
  downWindows: readonly TimeWindow[];
  /** Flush intervals the agent reported conntrack overruns for. */
  overrunWindows: readonly TimeWindow[];
  tenancies: readonly Tenancy[];
}

export interface Mismatch {
  key: string;
  want: number[];
  got: number[];
  /** The group's records: [startTime, endTime, started, completed, ...sums]. */
  records: number[][];
  /** The kernel's connections: [newAtMs, endAtMs]. */
  lifetimes: (number | null)[][];
}

export interface CheckResult {
  connections: number;
  /** 5-tuple × reporter groups compared. */
  groups: number;
  exact: number;
  /** Groups whose 5-tuple the kernel reopened (two connections or more), how many were checked (not excused), and how many of those are exact. */
  reusedGroups: number;
  reusedChecked: number;
  reusedExact: number;
  mismatched: number;
  mismatchSamples: Mismatch[];
  /** Groups not exact whose connection was alive during a kill window (lost or repeated last interval). */
  excusedDown: number;
  /** Groups not exact whose connection was born and dead inside an overrun window. */
  excusedOverrun: number;
  /** Record groups (allowed, local) for which the kernel reported no connection. */
  unexplainedGroups: number;
  attributionChecked: number;
  misattributed: number;
  misattributedSamples: string[];
}

const inside = (t: number | undefined, w: TimeWindow) =>
  t !== undefined && t >= w.fromMs && t <= w.toMs;

function port(proto: number, p: number): string {
  return proto === 1 || proto === 58 ? '-' : String(p);
}

function groupKey(
  proto: number,
  src: string,
  sport: string,
  dst: string,
  dport: string,
  reporter: string,
): string {
  return `${proto} ${src}:${sport} > ${dst}:${dport} ${reporter}`;
}

function recordKey(r: FlowRecord): string {
  return groupKey(r.proto, r.srcIP, String(r.srcPort), r.dstIP, String(r.dstPort), r.reporter);
}

/** [packets, bytes] orig then reply, as the reporter sees them. */
function recordSums(r: FlowRecord): number[] {
  return r.reporter === 'dst'
    ? [r.packetsIn, r.bytesIn, r.packetsOut, r.bytesOut]
    : [r.packetsOut, r.bytesOut, r.packetsIn, r.bytesIn];
}

export function checkSoak(input: CheckInput): CheckResult {
  const want = new Map<string, number[]>();
  const excused = new Set<string>();
  const downKeys = new Set<string>();
  const connKeys: { c: TruthConnection; keys: string[] }[] = [];
  const lifetimes = new Map<string, (number | null)[][]>();
  let excusedDown = 0;
  let excusedOverrun = 0;
  let connections = 0;
  for (const c of input.truth) {
    const e = c.entry;
    if (e.proto !== 6 && e.proto !== 17 && e.proto !== 1) continue;
    // The service's backend is the reply's source (DNAT), as the records name it.
    const backend = e.reply.src;
    const reporters = [
      ...(input.localIps.has(e.orig.src) ? ['src'] : []),
      ...(input.localIps.has(backend) ? ['dst'] : []),
    ];
    if (reporters.length === 0) continue;
    connections++;
    const keys = reporters.map((rep) =>
      groupKey(
        e.proto,
        e.orig.src,
        port(e.proto, e.orig.sport),
        backend,
        port(e.proto, e.reply.sport),
        rep,
      ),
    );
    connKeys.push({ c, keys });
    // Alive at some point of a kill window: its last interval may be lost (it ended
    // before the restart) or repeated (the kill fell between the records and the
    // baselines), the two windows docs/operations.md names.
    const down = input.downWindows.some(
      (w) => (c.newAtMs ?? 0) <= w.toMs && (c.endAtMs ?? Number.POSITIVE_INFINITY) >= w.fromMs,
    );
    const hidden =
      !down && input.overrunWindows.some((w) => inside(c.newAtMs, w) && inside(c.endAtMs, w));
    for (const k of keys) {
      if (down || hidden) excused.add(k);
      if (down) downKeys.add(k);
      const l = lifetimes.get(k) ?? [];
      l.push([c.newAtMs ?? null, c.endAtMs ?? null]);
      lifetimes.set(k, l);
      const s = want.get(k) ?? [0, 0, 0, 0];
      s[0]! += e.orig.packets;
      s[1]! += e.orig.bytes;
      s[2]! += e.reply.packets;
      s[3]! += e.reply.bytes;
      want.set(k, s);
    }
  }
  const got = new Map<string, number[]>();
  const byKey = new Map<string, FlowRecord[]>();
  for (const r of input.records) {
    if (r.action !== 'allow') continue;
    const k = recordKey(r);
    const s = got.get(k) ?? [0, 0, 0, 0];
    recordSums(r).forEach((v, i) => {
      s[i]! += v;
    });
    got.set(k, s);
    const list = byKey.get(k);
    if (list) list.push(r);
    else byKey.set(k, [r]);
  }
  let exact = 0;
  let reusedGroups = 0;
  let reusedChecked = 0;
  let reusedExact = 0;
  let mismatched = 0;
  const mismatchSamples: Mismatch[] = [];
  excusedDown = 0;
  excusedOverrun = 0;
  for (const [k, w] of want) {
    const g = got.get(k) ?? [0, 0, 0, 0];
    const reused = (lifetimes.get(k)?.length ?? 0) >= 2;
    const reusedAndChecked = reused && !excused.has(k);
    if (reused) reusedGroups++;
    if (reusedAndChecked) reusedChecked++;
    if (g.every((v, i) => v === w[i])) {
      exact++;
      if (reusedAndChecked) reusedExact++;
    } else if (excused.has(k)) {
      // Not exact, and in a window where the agent could not know: counted apart.
      if (downKeys.has(k)) excusedDown++;
      else excusedOverrun++;
    } else {
      mismatched++;
      if (mismatchSamples.length < 20) {
        mismatchSamples.push({
          key: k,
          want: w,
          got: g,
          records: (byKey.get(k) ?? []).map((r) => [
            r.startTime,
            r.endTime,
            r.numFlowsStarted,
            r.numFlowsCompleted,
            ...recordSums(r),
          ]),
          lifetimes: lifetimes.get(k) ?? [],
        });
      }
    }
  }
  let unexplainedGroups = 0;
  for (const k of got.keys()) if (!want.has(k)) unexplainedGroups++;
  // Attribution: records of a connection from (or to) a reused IP name its owner at that time.
  let attributionChecked = 0;
  let misattributed = 0;
  const misattributedSamples: string[] = [];
  const ownerAt = (ip: string, t: number) =>
    input.tenancies.find((o) => o.ip === ip && t >= o.fromMs && t < o.toMs);
  for (const { c, keys } of connKeys) {
    const t = c.newAtMs ?? c.endAtMs;
    if (t === undefined) continue;
    for (const [ip, side] of [
      [c.entry.orig.src, 'src'],
      [c.entry.reply.src, 'dst'],
    ] as const) {
      const owner = ownerAt(ip, t);
      if (!owner) continue;
      // The record of the interval the connection started in: a later connection
      // of a new owner can reuse the 5-tuple (same IP, same port sequence).
      const at = t / 1000;
      const mine = keys
        .flatMap((k) => byKey.get(k) ?? [])
        .filter((r) => r.startTime <= at && at < r.endTime);
      if (mine.length === 0) continue;
      attributionChecked++;
      const wrong = mine.find((r) =>
        side === 'src'
          ? r.srcNamespace !== owner.namespace || r.srcName !== owner.name
          : r.dstNamespace !== owner.namespace || r.dstName !== owner.name,
      );
      if (wrong) {
        misattributed++;
        if (misattributedSamples.length < 20) {
          const named =
            side === 'src'
              ? `${wrong.srcNamespace}/${wrong.srcName}`
              : `${wrong.dstNamespace}/${wrong.dstName}`;
          misattributedSamples.push(
            `${ip} at ${t}: owner ${owner.namespace}/${owner.name}, record names ${named}`,
          );
        }
      }
    }
  }
  return {
    connections,
    groups: want.size,
    exact,
    reusedGroups,
    reusedChecked,
    reusedExact,
    mismatched,
    mismatchSamples,
    excusedDown,
    excusedOverrun,
    unexplainedGroups,
    attributionChecked,
    misattributed,
    misattributedSamples,
  };
}

/** Identical record lines are duplicates (a batch resent after a kill): counted, kept once. */
export function dedupe(lines: readonly string[]): { unique: string[]; duplicates: number } {
  const seen = new Set<string>();
  for (const l of lines) seen.add(l);
  return { unique: [...seen], duplicates: lines.length - seen.size };
}
