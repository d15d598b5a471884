/**
 * IPv4 address text by address, direct-mapped: 65,536 entries, each one
 * address and its text, chosen by a hash of the address. A node talks to a
 * few thousand addresses, so nearly every lookup is one array read; two
 * addresses on one entry take turns (the text is formatted again: the same
 * value, another string). Bounded by construction, and one shared flat
 * string per address instead of one per connection.
 */
const ENTRIES = 65_536;

export class Ipv4TextCache {
  private readonly addrs = new Int32Array(ENTRIES);
  private readonly texts: (string | undefined)[] = new Array<string | undefined>(ENTRIES).fill(
    undefined,
  );

  /** The text remembered for address `n` (a u32), or undefined. */
  get(n: number): string | undefined {
    const k = entry(n);
    return this.addrs[k] === (n | 0) ? this.texts[k] : undefined;
  }

  set(n: number, text: string): void {
    const k = entry(n);
    this.addrs[k] = n;
    this.texts[k] = text;
  }
}

/** Fibonacci hashing: the address's bits spread over the 16 bits of the entry. */
function entry(n: number): number {
  return Math.imul(n, 0x9e3779b1) >>> 16;
}
