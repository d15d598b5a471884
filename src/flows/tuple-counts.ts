/**
 * How many tracked connections may share each 5-tuple (protocol, source,
 * real destination, ports): numFlows counts distinct 5-tuples, and only a
 * 5-tuple that more than one connection may have needs the aggregator's set.
 *
 * Counted per 30-bit hash of the fields, nothing per connection but its
 * hash: two 5-tuples with one hash both look shared, which only sends them
 * through the aggregator's exact set of tuple texts (a slower path, never a
 * wrong count). A 5-tuple counted once is certainly unshared.
 */

import { HashCells, mix } from './hash-cells.js';

/** FNV-1a over a string's characters, continuing from `h`: an address text is short. */
function fnvText(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h;
}

/** A dotted-quad IPv4 text as its u32, or -1 when it is not one (IPv6, anything else). */
export function ipv4Number(text: string): number {
  const p = text.split('.');
  if (p.length !== 4) return -1;
  let n = 0;
  for (const part of p) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return -1;
    n = n * 256 + Number(part);
  }
  return n;
}

/** The 5-tuple's hash from IPv4 addresses as u32s (ports -1 when absent). */
export function tupleHash4(
  proto: number,
  src4: number,
  dst4: number,
  sport: number,
  dport: number,
): number {
  let h = Math.imul(0x811c9dc5 ^ proto, 0x01000193);
  h = Math.imul(h ^ src4, 0x01000193);
  h = Math.imul(h ^ 0x7c, 0x01000193);
  h = Math.imul(h ^ dst4, 0x01000193);
  h = Math.imul(h ^ (sport & 0xffff), 0x01000193);
  h = Math.imul(h ^ (dport & 0xffff), 0x01000193);
  return mix(h) & 0x3fffffff;
}

/**
 * The 5-tuple's hash, a small integer (ports -1 when absent). IPv4 text
 * hashes as its number, so an event decoded with numeric addresses and one
 * with text only agree.
 */
export function tupleHash(
  proto: number,
  src: string,
  dst: string,
  sport: number,
  dport: number,
): number {
  const src4 = ipv4Number(src);
  const dst4 = ipv4Number(dst);
  if (src4 >= 0 && dst4 >= 0) return tupleHash4(proto, src4, dst4, sport, dport);
  let h = fnvText(Math.imul(0x811c9dc5 ^ proto, 0x01000193), src);
  // A separator the texts never hold: ("1.2.3.4", "5.6.7.8") differs from ("1.2.3.45", ".6.7.8").
  h = fnvText(Math.imul(h ^ 0x7c, 0x01000193), dst);
  h = Math.imul(h ^ (sport & 0xffff), 0x01000193);
  h = Math.imul(h ^ (dport & 0xffff), 0x01000193);
  return mix(h) & 0x3fffffff;
}

export class TupleCounts {
  /** (hash, count) cells: one per hash. */
  private readonly counts = new HashCells();
  /**
   * The hashes counted more than once: few, so the per-connection question
   * at every flush asks this small set, not the table of all connections.
   */
  private readonly many = new Set<number>();

  add(hash: number): void {
    const p = this.counts.first(hash);
    if (p < 0) {
      this.counts.insert(hash, 1);
      return;
    }
    const n = this.counts.value(p) + 1;
    this.counts.setValue(p, n);
    if (n === 2) this.many.add(hash);
  }

  release(hash: number): void {
    const p = this.counts.first(hash);
    if (p < 0) return;
    const n = this.counts.value(p);
    if (n <= 1) this.counts.removeAt(p);
    else {
      this.counts.setValue(p, n - 1);
      if (n === 2) this.many.delete(hash);
    }
  }

  /** false only when no other tracked connection can have this 5-tuple. */
  shared(hash: number): boolean {
    return this.many.size > 0 && this.many.has(hash);
  }

  /** Distinct hashes counted (for tests and memory checks). */
  get size(): number {
    return this.counts.size;
  }
}
