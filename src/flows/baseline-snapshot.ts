/**
 * What the flow table has reported, per connection, as rows of numbers: the
 * snapshot saved beside the spool at every flush and read back after a
 * restart (src/agent/baselines.ts writes it). Rows, not an object per connection:
 * with the kernel's TIME_WAIT of two minutes a busy node remembers tens of
 * thousands of completed connections, and a key string and an array for
 * each, every flush, cost more than the rest of the flush.
 *
 * A row is a connection still open (its baseline: the counters already
 * reported) or a completed one the kernel may still list (TIME_WAIT), with
 * its identity, its kernel start time (NaN: unknown) and, when completed,
 * when it is forgotten. Pure: no I/O.
 */
import type { ConntrackEvent } from '../conntrack/types.js';
import { formatIPv4 } from '../netlink/ip.js';
import { hasPorts } from '../util/ip-proto.js';
import type { Counters } from './connection-state.js';

// --- doubles per row -----------------------------------------------------------
export const R_PO = 0;
export const R_BO = 1;
export const R_PR = 2;
export const R_BR = 3;
/** The kernel's start time (ms), NaN when unknown. */
export const R_KSTART = 4;
/** Completed rows: forgotten after this instant (ms); NaN for open ones. */
export const R_UNTIL = 5;
export const RN = 6;

// --- int32s per row ------------------------------------------------------------
export const R_ID = 0;
export const R_ZONE = 1;
export const R_PROTO = 2;
/** sport or ICMP type, dport or ICMP id (-1 when absent). */
export const R_A = 3;
export const R_B = 4;
/** IPv4 addresses as u32 bits (with R_V4). */
export const R_SRC4 = 5;
export const R_DST4 = 6;
export const R_FLAGS = 7;
export const RI = 8;

/** A completed connection (else an open one). */
export const R_COMPLETED = 1;
/** R_SRC4/R_DST4 hold the addresses; else `texts` has them. */
export const R_V4 = 2;

export interface BaselineSnapshot {
  readonly count: number;
  /** count × RN doubles. */
  readonly nums: Float64Array;
  /** count × RI int32s. */
  readonly ints: Int32Array;
  /** Address text (source, destination) of the rows without IPv4 numbers, by row. */
  readonly texts: ReadonlyMap<number, readonly [string, string]>;
  /**
   * The end of the last interval reported (epoch ms): a connection that began
   * after it was never reported as started, so the next run reports its start.
   */
  readonly reportedUntilMs?: number;
}

/** Rows appended one at a time, in arrays that double as they fill. */
export class BaselineRows {
  private nums = new Float64Array(RN * 256);
  private ints = new Int32Array(RI * 256);
  private readonly texts = new Map<number, readonly [string, string]>();
  private n = 0;

  /** A new row (its numbers zero), written through nums/ints at row × RN / RI. */
  add(): number {
    if ((this.n + 1) * RN > this.nums.length) {
      const nums = new Float64Array(this.nums.length * 2);
      nums.set(this.nums);
      this.nums = nums;
      const ints = new Int32Array(this.ints.length * 2);
      ints.set(this.ints);
      this.ints = ints;
    }
    return this.n++;
  }

  get numbers(): Float64Array {
    return this.nums;
  }

  get integers(): Int32Array {
    return this.ints;
  }

  setText(row: number, src: string, dst: string): void {
    this.texts.set(row, [src, dst]);
  }

  snapshot(reportedUntilMs?: number): BaselineSnapshot {
    return {
      count: this.n,
      nums: this.nums.subarray(0, this.n * RN),
      ints: this.ints.subarray(0, this.n * RI),
      texts: this.texts,
      ...(reportedUntilMs !== undefined ? { reportedUntilMs } : {}),
    };
  }
}

/** A connection's identity as one string: how restored baselines are found by a dump entry. */
export function keyParts(
  id: number,
  zone: number,
  proto: number,
  src: string,
  dst: string,
  a: number,
  b: number,
): string {
  const ports = hasPorts(proto);
  return [id, zone, proto, src, dst, ports || a >= 0 ? a : '', ports || b >= 0 ? b : ''].join('|');
}

/** The event's identity as keyParts writes it. */
export function connectionKey(ev: ConntrackEvent): string {
  const o = ev.orig;
  const ports = hasPorts(o.proto);
  const a = ports ? o.sport : (o.icmpType ?? -1);
  const b = ports ? o.dport : (o.icmpId ?? -1);
  return keyParts(ev.id, ev.zone, o.proto, o.src, o.dst, a, b);
}

/** A row's identity: CTA_ID as the kernel's u32, addresses as text. */
export function rowIdentity(
  s: BaselineSnapshot,
  r: number,
): {
  id: number;
  zone: number;
  proto: number;
  src: string;
  dst: string;
  src4: number;
  dst4: number;
  a: number;
  b: number;
} {
  const i = s.ints;
  const k = r * RI;
  const v4 = (i[k + R_FLAGS]! & R_V4) !== 0;
  const text = s.texts.get(r);
  const src4 = v4 ? i[k + R_SRC4]! >>> 0 : -1;
  const dst4 = v4 ? i[k + R_DST4]! >>> 0 : -1;
  return {
    id: i[k + R_ID]! >>> 0,
    zone: i[k + R_ZONE]!,
    proto: i[k + R_PROTO]!,
    src: v4 ? formatIPv4(src4) : (text?.[0] ?? ''),
    dst: v4 ? formatIPv4(dst4) : (text?.[1] ?? ''),
    src4,
    dst4,
    a: i[k + R_A]!,
    b: i[k + R_B]!,
  };
}

/** Row `r`'s numbers: whether it is a completed connection, its baseline, its times. */
export function rowBaseline(
  s: BaselineSnapshot,
  r: number,
): { completed: boolean; counters: Counters; kernelStartMs: number; untilMs: number } {
  const n = s.nums;
  const rn = r * RN;
  return {
    completed: (s.ints[r * RI + R_FLAGS]! & R_COMPLETED) !== 0,
    counters: { po: n[rn + R_PO]!, bo: n[rn + R_BO]!, pr: n[rn + R_PR]!, br: n[rn + R_BR]! },
    kernelStartMs: n[rn + R_KSTART]!,
    untilMs: n[rn + R_UNTIL]!,
  };
}

/** The key of row `r`, as connectionKey gives it for the same connection's events. */
export function rowKey(s: BaselineSnapshot, r: number): string {
  const x = rowIdentity(s, r);
  return keyParts(x.id, x.zone, x.proto, x.src, x.dst, x.a, x.b);
}

/**
 * A snapshot of the JSON form written before rows (one key string per
 * connection, counters then expiry and start time): what an upgraded agent
 * finds on disk. Keys it cannot read are skipped.
 */
export function fromKeyedSnapshot(json: {
  connections: Record<string, readonly number[]>;
  completed?: Record<string, readonly number[]>;
  reportedUntilMs?: number;
}): BaselineSnapshot {
  const rows = new BaselineRows();
  const put = (key: string, v: readonly number[], completed: boolean) => {
    const p = key.split('|');
    if (p.length !== 7 || !p[3] || !p[4]) return;
    const num = (t: string, empty: number) => (t === '' ? empty : Number(t));
    const [id, zone, proto, a, b] = [
      num(p[0]!, Number.NaN),
      num(p[1]!, Number.NaN),
      num(p[2]!, Number.NaN),
      num(p[5]!, -1),
      num(p[6]!, -1),
    ];
    if (![id, zone, proto, a, b].every(Number.isInteger)) return;
    const r = rows.add();
    const n = rows.numbers;
    const i = rows.integers;
    for (let k = 0; k < 4; k++) n[r * RN + k] = v[k] ?? 0;
    n[r * RN + R_UNTIL] = completed ? (v[4] ?? Number.NaN) : Number.NaN;
    n[r * RN + R_KSTART] = (completed ? v[5] : v[4]) ?? Number.NaN;
    i[r * RI + R_ID] = id | 0;
    i[r * RI + R_ZONE] = zone;
    i[r * RI + R_PROTO] = proto;
    i[r * RI + R_A] = a;
    i[r * RI + R_B] = b;
    i[r * RI + R_FLAGS] = completed ? R_COMPLETED : 0;
    rows.setText(r, p[3], p[4]);
  };
  for (const [k, v] of Object.entries(json.connections)) put(k, v, false);
  for (const [k, v] of Object.entries(json.completed ?? {})) put(k, v, true);
  return rows.snapshot(json.reportedUntilMs);
}
