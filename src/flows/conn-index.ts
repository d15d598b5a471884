/**
 * Connections indexed by CTA_ID (a number), with the rest of the identity
 * (zone, original tuple) checked on lookup. CTA_ID is a hash, so two
 * connections can share it: a slot then holds an array. Numeric keys keep
 * the per-dump-entry lookup free of string building and string hashing,
 * which dominated the dump path with 100k connections.
 */
import type { ConntrackEvent } from '../conntrack/types.js';

/** What identifies a connection besides its id. */
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

/**
 * The index key: CTA_ID cut to 30 bits, so the key is a small integer V8
 * keeps unboxed (a full u32 is a heap number per entry); the slot check
 * compares the whole id.
 */
function slotKey(id: number): number {
  return id & 0x3fffffff;
}

/** The numeric part of an identity equals these (the cheap test first). */
function sameNumbers(
  c: ConnIdentity,
  id: number,
  zone: number,
  proto: number,
  a: number,
  b: number,
): boolean {
  return c.id === id && c.zone === zone && c.proto === proto && c.origA === a && c.origB === b;
}

function matches(c: ConnIdentity, ev: ConntrackEvent, a: number, b: number): boolean {
  const o = ev.orig;
  if (!sameNumbers(c, ev.id, ev.zone, o.proto, a, b)) return false;
  // Numbers when both sides have them: reading a decoder view's address text would format it.
  if (c.origSrc4 >= 0 && o.family === 4 && o.src4 !== undefined && o.dst4 !== undefined) {
    return c.origSrc4 === o.src4 && c.origDst4 === o.dst4;
  }
  return c.origSrc === o.src && c.origDst === o.dst;
}

function sameIdentity(c: ConnIdentity, x: ConnIdentity): boolean {
  return (
    sameNumbers(c, x.id, x.zone, x.proto, x.origA, x.origB) &&
    c.origSrc === x.origSrc &&
    c.origDst === x.origDst
  );
}

export class ConnIndex<T extends ConnIdentity> {
  private readonly byId = new Map<number, T | T[]>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** `a`/`b` as from portsOrIcmp(ev). */
  find(ev: ConntrackEvent, a: number, b: number): T | undefined {
    const slot = this.byId.get(slotKey(ev.id));
    if (slot === undefined) return undefined;
    if (!Array.isArray(slot)) return matches(slot, ev, a, b) ? slot : undefined;
    for (const c of slot) if (matches(c, ev, a, b)) return c;
    return undefined;
  }

  /** The entry with the same identity as `x` (another index's entry, a parsed key). */
  findLike(x: ConnIdentity): T | undefined {
    const slot = this.byId.get(slotKey(x.id));
    if (slot === undefined) return undefined;
    if (!Array.isArray(slot)) return sameIdentity(slot, x) ? slot : undefined;
    for (const c of slot) if (sameIdentity(c, x)) return c;
    return undefined;
  }

  add(c: T): void {
    const slot = this.byId.get(slotKey(c.id));
    if (slot === undefined) this.byId.set(slotKey(c.id), c);
    else if (Array.isArray(slot)) slot.push(c);
    else this.byId.set(slotKey(c.id), [slot, c]);
    this.count++;
  }

  remove(c: T): void {
    const slot = this.byId.get(slotKey(c.id));
    if (slot === undefined) return;
    if (!Array.isArray(slot)) {
      if (slot === c) {
        this.byId.delete(slotKey(c.id));
        this.count--;
      }
      return;
    }
    const i = slot.indexOf(c);
    if (i < 0) return;
    slot.splice(i, 1);
    this.count--;
    if (slot.length === 1) this.byId.set(slotKey(c.id), slot[0] as T);
  }

  /** Visits every connection; `fn` may not add or remove (collect, then remove). */
  forEach(fn: (c: T) => void): void {
    for (const slot of this.byId.values()) {
      if (Array.isArray(slot)) for (const c of slot) fn(c);
      else fn(slot);
    }
  }
}
