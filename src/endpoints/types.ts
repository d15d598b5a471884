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
}
