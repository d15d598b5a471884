/**
 * Caches by IPv4 address (a u32), direct-mapped: the flow table's per-address
 * answers without a Map.
 */
import {
  type Endpoint,
  type EndpointLookup,
  type EndpointSpan,
  NO_ENDPOINT,
} from '../endpoints/types.js';

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

  /** The text remembered for address `n` (a u32, or its int32 bits), or undefined. */
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

// EndpointByAddress's row: the address (as int32 bits, whichever form the
// caller has it in), the version, the span [from, to).
const R_ADDR = 0;
const R_VERSION = 1;
const R_FROM = 2;
const R_TO = 3;
const ROW = 4;

type SpanLookup = EndpointLookup & Required<Pick<EndpointLookup, 'lookupSpan'>>;

/**
 * Endpoint answers by IPv4 address, direct-mapped like Ipv4TextCache: one
 * address per entry with its owner, the endpoint cache version the answer
 * came from and the span of times it holds for. A connection's first flush
 * then finds both its endpoints with array reads instead of two lookups in
 * a Map keyed by address text.
 */
export class EndpointByAddress {
  /**
   * Per entry, side by side in one row (one cache line, not one per
   * array): the address, the version (NaN: empty; no version equals it),
   * and the span [from, to).
   */
  private readonly rows = new Float64Array(ENTRIES * ROW).fill(Number.NaN);
  private readonly endpoints: (Endpoint | undefined)[] = new Array<Endpoint | undefined>(
    ENTRIES,
  ).fill(undefined);
  private readonly span: EndpointSpan;

  constructor(private readonly source: SpanLookup) {
    this.span = { endpoint: NO_ENDPOINT, fromMs: 0, toMs: 0 };
  }

  /** source.lookup(ip, timeMs) for the IPv4 address `n` whose text is `ip`, at source version `version`. */
  lookup(n: number, ip: string, timeMs: number, version: number): Endpoint {
    const k = entry(n);
    const rows = this.rows;
    const at = k * ROW;
    if (
      rows[at + R_ADDR] === (n | 0) &&
      rows[at + R_VERSION] === version &&
      timeMs >= rows[at + R_FROM]! &&
      timeMs < rows[at + R_TO]!
    ) {
      return this.endpoints[k]!;
    }
    const span = this.span;
    this.source.lookupSpan(ip, timeMs, span);
    rows[at + R_ADDR] = n | 0;
    rows[at + R_VERSION] = version;
    rows[at + R_FROM] = span.fromMs;
    rows[at + R_TO] = span.toMs;
    this.endpoints[k] = span.endpoint;
    return span.endpoint;
  }
}

/** Whether `e` can answer with spans (then EndpointByAddress can cache it). */
export function hasSpans(e: EndpointLookup): e is SpanLookup {
  return typeof e.lookupSpan === 'function';
}
