/**
 * The tracked connections' numbers, in one Float64Array: a slot of WIDTH
 * doubles per connection. A double in an object field is a heap number of
 * its own in V8 (ten per connection, allocated and traced by the GC); here
 * they cost 8 bytes each and nothing to the collector. Slots are reused
 * after release; the array grows by doubling and never shrinks: at most
 * maxFlows slots (80 bytes each, 20 MiB at the default 250,000).
 */
export const WIDTH = 10;
/** Field offsets in a slot. */
export const PO = 0;
export const BO = 1;
export const PR = 2;
export const BR = 3;
/** What was already reported (the baseline). */
export const RPO = 4;
export const RBO = 5;
export const RPR = 6;
export const RBR = 7;
/** Start time (ms), the endpoint lookup time. */
export const START = 8;
/** The kernel's start time (ms), NaN when the kernel gave none. */
export const KSTART = 9;

export class ConnNumbers {
  /** Read through this after any alloc(): growing replaces it. */
  a = new Float64Array(1024 * WIDTH);
  private readonly free: number[] = [];
  private next = 0;

  /** A zeroed slot's base index (slot * WIDTH). */
  alloc(): number {
    let base = this.free.pop();
    if (base === undefined) {
      base = this.next;
      this.next += WIDTH;
      if (this.next > this.a.length) {
        const grown = new Float64Array(this.a.length * 2);
        grown.set(this.a);
        this.a = grown;
      }
    } else {
      this.a.fill(0, base, base + WIDTH);
    }
    return base;
  }

  release(base: number): void {
    this.free.push(base);
  }
}
