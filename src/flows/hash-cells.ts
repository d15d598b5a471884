/**
 * An open-addressing table of (hash, value) int32 pairs in one Int32Array:
 * linear probing, at most half full, deletion by shifting the rest of the
 * run back (no deleted markers). Several cells may share a hash; callers
 * tell them apart by value. Value 0 marks an empty cell, so callers store
 * slot + 1 or a count of at least 1.
 *
 * The flow table's indexes (connections by CTA_ID, connections per 5-tuple)
 * live here rather than in Maps: no entry objects for the collector, and a
 * probe compares hashes in adjacent ints before the caller reads anything
 * else.
 */
/**
 * Murmur3's finaliser: every input bit reaches every output bit, so a
 * cell's home (hash & mask) spreads keys such as CTA_IDs or 5-tuple hashes.
 */
export function mix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

export class HashCells {
  /** [hash, value] per cell. */
  private cells: Int32Array;
  /** Cells - 1 (cells is a power of two). */
  private mask: number;
  private used = 0;

  /** `initialCells`: a power of two (tests use small ones to wrap around the end). */
  constructor(initialCells = 2048) {
    this.cells = new Int32Array(initialCells * 2);
    this.mask = initialCells - 1;
  }

  /** Cells in use. */
  get size(): number {
    return this.used;
  }

  /** The position of the first cell holding `hash`, or -1. */
  first(hash: number): number {
    return this.scan(hash & this.mask, hash);
  }

  /** The position of the next cell holding `hash` after `pos`, or -1. */
  next(pos: number, hash: number): number {
    return this.scan((pos + 1) & this.mask, hash);
  }

  value(pos: number): number {
    return this.cells[2 * pos + 1]!;
  }

  /** Replaces a cell's value (not 0: use removeAt). */
  setValue(pos: number, value: number): void {
    this.cells[2 * pos + 1] = value;
  }

  /**
   * Adds a cell. Returns the value of a cell with the same hash that the
   * probe passed on its way to a free one (0: none): such a cell lies in the
   * run before the free cell, so the insert sees it at no extra cost.
   */
  insert(hash: number, value: number): number {
    if ((this.used + 1) * 2 > this.mask + 1) this.grow();
    this.used++;
    return this.place(hash, value);
  }

  /** Removes the cell holding `value` under `hash`; false when there is none. */
  remove(hash: number, value: number): boolean {
    for (let p = this.first(hash); p >= 0; p = this.next(p, hash)) {
      if (this.value(p) === value) {
        this.removeAt(p);
        return true;
      }
    }
    return false;
  }

  removeAt(pos: number): void {
    const c = this.cells;
    const mask = this.mask;
    let p = pos;
    c[2 * p + 1] = 0;
    for (let q = (p + 1) & mask; c[2 * q + 1] !== 0; q = (q + 1) & mask) {
      const home = c[2 * q]! & mask;
      // The cell at q may move to p unless its home lies cyclically in (p, q].
      const stays = p <= q ? p < home && home <= q : p < home || home <= q;
      if (!stays) {
        c[2 * p] = c[2 * q]!;
        c[2 * p + 1] = c[2 * q + 1]!;
        c[2 * q + 1] = 0;
        p = q;
      }
    }
    this.used--;
  }

  private scan(from: number, hash: number): number {
    const c = this.cells;
    for (let p = from; ; p = (p + 1) & this.mask) {
      if (c[2 * p + 1] === 0) return -1;
      if (c[2 * p] === hash) return p;
    }
  }

  private place(hash: number, value: number): number {
    const c = this.cells;
    let p = hash & this.mask;
    let same = 0;
    while (c[2 * p + 1] !== 0) {
      if (c[2 * p] === hash) same = c[2 * p + 1]!;
      p = (p + 1) & this.mask;
    }
    c[2 * p] = hash;
    c[2 * p + 1] = value;
    return same;
  }

  private grow(): void {
    const old = this.cells;
    this.cells = new Int32Array(old.length * 2);
    this.mask = old.length - 1;
    for (let p = 0; p < old.length; p += 2) if (old[p + 1] !== 0) this.place(old[p]!, old[p + 1]!);
  }
}
