/** Who an IP address belonged to at a given time (DESIGN.md "Endpoints"). */
export type EndpointType = 'wep' | 'hep' | 'ns' | 'net';

export interface Endpoint {
  readonly type: EndpointType;
  /** Kubernetes namespace; '-' for hep and net. */
  readonly namespace: string;
  /** Pod or node name; for net: 'pvt' | 'aws' | 'pub'. */
  readonly name: string;
  /** generateName + '*' (e.g. nginx-7d98456675-*), or the name itself when it has no replica suffix. */
  readonly aggregatedName: string;
  readonly labels: Readonly<Record<string, string>>;
  /** True when the endpoint lives on this node (flows are reported for local endpoints). */
  readonly local: boolean;
}

/** The narrow interface the flow table needs; the cache implements it. */
export interface EndpointLookup {
  /** Owner of `ip` at `timeMs` (ms since the epoch). Never undefined: unknown IPs are net/pvt|aws|pub. */
  lookup(ip: string, timeMs: number): Endpoint;
  /**
   * Changes whenever any answer of lookup() may have changed; callers may keep
   * answers while it stays the same (absent: do not cache).
   */
  readonly version?: number;
  /**
   * lookup() into `out`, with the times over which its answer holds while
   * `version` stays the same (absent: callers cache nothing by address).
   */
  lookupSpan?(ip: string, timeMs: number, out: EndpointSpan): void;
}

/** An answer of lookup() and the span of times [fromMs, toMs) over which it holds. */
export interface EndpointSpan {
  endpoint: Endpoint;
  fromMs: number;
  toMs: number;
}

/** The endpoint of a reused scratch object before its first answer (never reported). */
export const NO_ENDPOINT: Endpoint = Object.freeze({
  type: 'net',
  namespace: '-',
  name: '-',
  aggregatedName: '-',
  labels: {},
  local: false,
});
