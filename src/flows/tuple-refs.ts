/**
 * How many tracked connections share each 5-tuple (protocol, source, real
 * destination, ports): numFlows counts distinct 5-tuples, and only shared
 * ones need a set in aggregation. Keyed by a number mixed from the fields,
 * with the fields compared on lookup, so a new connection costs no key
 * string (building and hashing one was half of a NEW's cost at 100k
 * connections). Addresses are the flow table's shared texts.
 */
export interface TupleRef {
  readonly proto: number;
  readonly src: string;
  readonly dst: string;
  readonly sport: number;
  readonly dport: number;
  /** Its key in the table. */
  readonly hash: number;
  /** Tracked connections with this 5-tuple. */
  n: number;
}

function same(
  t: TupleRef,
  proto: number,
  src: string,
  dst: string,
  sport: number,
  dport: number,
): boolean {
  return (
    t.proto === proto && t.sport === sport && t.dport === dport && t.src === src && t.dst === dst
  );
}

/** A string's hash (FNV-1a, 32 bits): an address text is short. */
function hashText(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h;
}

function mix(h: number, v: number): number {
  return Math.imul(h ^ v, 0x9e3779b1) ^ (h >>> 15);
}

export class TupleRefs {
  private readonly byHash = new Map<number, TupleRef | TupleRef[]>();

  /** The shared entry for this 5-tuple (n not yet counted); ports -1 when absent. */
  acquire(proto: number, src: string, dst: string, sport: number, dport: number): TupleRef {
    let h = mix(proto, hashText(src));
    h = mix(h, hashText(dst));
    h = mix(h, (sport << 16) ^ dport) & 0x3fffffff;
    const slot = this.byHash.get(h);
    if (slot !== undefined) {
      if (!Array.isArray(slot)) {
        if (same(slot, proto, src, dst, sport, dport)) return slot;
      } else {
        for (const t of slot) if (same(t, proto, src, dst, sport, dport)) return t;
      }
    }
    const ref: TupleRef = { proto, src, dst, sport, dport, hash: h, n: 0 };
    if (slot === undefined) this.byHash.set(h, ref);
    else if (Array.isArray(slot)) slot.push(ref);
    else this.byHash.set(h, [slot, ref]);
    return ref;
  }

  /** Drops one connection from its 5-tuple; the entry goes when none is left. */
  release(ref: TupleRef): void {
    if (--ref.n > 0) return;
    const h = ref.hash;
    const slot = this.byHash.get(h);
    if (slot === ref) this.byHash.delete(h);
    else if (Array.isArray(slot)) {
      const i = slot.indexOf(ref);
      if (i >= 0) slot.splice(i, 1);
      if (slot.length === 1) this.byHash.set(h, slot[0]!);
    }
  }
}
