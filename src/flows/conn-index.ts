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
  /** sport, or the ICMP type (-1 when absent). */
  readonly origA: number;
  /** dport, or the ICMP id (-1 when absent). */
  readonly origB: number;
}

export function portsOrIcmp(ev: ConntrackEvent, ports: boolean): [number, number] {
  const o = ev.orig;
  return ports ? [o.sport, o.dport] : [o.icmpType ?? -1, o.icmpId ?? -1];
}

function matches(c: ConnIdentity, ev: ConntrackEvent, a: number, b: number): boolean {
  const o = ev.orig;
  return (
    c.zone === ev.zone &&
    c.proto === o.proto &&
    c.origA === a &&
    c.origB === b &&
    c.origSrc === o.src &&
    c.origDst === o.dst
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
    const slot = this.byId.get(ev.id);
    if (slot === undefined) return undefined;
    if (!Array.isArray(slot)) return matches(slot, ev, a, b) ? slot : undefined;
    for (const c of slot) if (matches(c, ev, a, b)) return c;
    return undefined;
  }

  add(c: T): void {
    const slot = this.byId.get(c.id);
    if (slot === undefined) this.byId.set(c.id, c);
    else if (Array.isArray(slot)) slot.push(c);
    else this.byId.set(c.id, [slot, c]);
    this.count++;
  }

  remove(c: T): void {
    const slot = this.byId.get(c.id);
    if (slot === undefined) return;
    if (!Array.isArray(slot)) {
      if (slot === c) {
        this.byId.delete(c.id);
        this.count--;
      }
      return;
    }
    const i = slot.indexOf(c);
    if (i < 0) return;
    slot.splice(i, 1);
    this.count--;
    if (slot.length === 1) this.byId.set(c.id, slot[0] as T);
  }

  /** Visits every connection; `fn` may not add or remove (collect, then remove). */
  forEach(fn: (c: T) => void): void {
    for (const slot of this.byId.values()) {
      if (Array.isArray(slot)) for (const c of slot) fn(c);
      else fn(slot);
    }
  }
}
