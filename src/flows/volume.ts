/**
 * Volume controls applied to one flush interval's records, after
 * aggregation: namespace include/exclude lists and a cap on records per
 * flush. Nothing is dropped silently: a namespace filter is the user's
 * choice (counted), and records past the cap are folded into one overflow
 * record per action and reporter, so the interval's totals of packets,
 * bytes and flows stay exact.
 *
 * The namespace a record belongs to is the one of the endpoint on this node
 * that reported it: srcNamespace for reporter src, dstNamespace for dst.
 */
import { addCounts, type FlowRecord } from '../format/record.js';

export interface VolumeOptions {
  /** Keep only records whose local namespace matches one of these (empty: all). `*` is a wildcard. */
  includeNamespaces: readonly string[];
  /** Drop records whose local namespace matches one of these. */
  excludeNamespaces: readonly string[];
  /** At most this many records per flush before folding (0: no cap). */
  maxRecordsPerFlush: number;
}

export interface VolumeStats {
  /** Records dropped by includeNamespaces/excludeNamespaces. */
  filteredByNamespace: number;
  /** Records folded into overflow records by maxRecordsPerFlush. */
  folded: number;
  /** Overflow records written. */
  overflowRecords: number;
}

/** The name overflow records carry in srcName and dstName. */
export const OVERFLOW_NAME = 'overflow';

function matcher(patterns: readonly string[]): ((ns: string) => boolean) | undefined {
  if (patterns.length === 0) return undefined;
  const exact = new Set(patterns.filter((p) => !p.includes('*')));
  const globs = patterns
    .filter((p) => p.includes('*'))
    .map((p) => new RegExp(`^${p.split('*').map(escapeRegExp).join('.*')}$`));
  return (ns) => exact.has(ns) || globs.some((g) => g.test(ns));
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function localNamespace(r: FlowRecord): string {
  return r.reporter === 'src' ? r.srcNamespace : r.dstNamespace;
}

/** Denied before allowed (audits need them most), then the largest first. */
function rank(a: FlowRecord, b: FlowRecord): number {
  if (a.action !== b.action) return a.action === 'deny' ? -1 : 1;
  return b.bytesIn + b.bytesOut - (a.bytesIn + a.bytesOut) || b.numFlows - a.numFlows;
}

function overflowRecord(like: FlowRecord): FlowRecord {
  return {
    startTime: like.startTime,
    endTime: like.endTime,
    srcType: 'net',
    srcNamespace: '-',
    srcName: OVERFLOW_NAME,
    srcLabels: '-',
    dstType: 'net',
    dstNamespace: '-',
    dstName: OVERFLOW_NAME,
    dstLabels: '-',
    srcIP: '-',
    dstIP: '-',
    proto: 0,
    srcPort: '-',
    dstPort: '-',
    numFlows: 0,
    numFlowsStarted: 0,
    numFlowsCompleted: 0,
    reporter: like.reporter,
    packetsIn: 0,
    packetsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    action: like.action,
  };
}

export class VolumeControl {
  readonly stats: VolumeStats = { filteredByNamespace: 0, folded: 0, overflowRecords: 0 };
  private readonly include: ((ns: string) => boolean) | undefined;
  private readonly exclude: ((ns: string) => boolean) | undefined;

  constructor(private readonly o: VolumeOptions) {
    this.include = matcher(o.includeNamespaces);
    this.exclude = matcher(o.excludeNamespaces);
  }

  get active(): boolean {
    return (
      this.include !== undefined || this.exclude !== undefined || this.o.maxRecordsPerFlush > 0
    );
  }

  apply(records: readonly FlowRecord[]): readonly FlowRecord[] {
    if (!this.active) return records;
    const kept = this.include || this.exclude ? records.filter((r) => this.keep(r)) : records;
    this.stats.filteredByNamespace += records.length - kept.length;
    const cap = this.o.maxRecordsPerFlush;
    if (cap <= 0 || kept.length <= cap) return kept;
    const sorted = [...kept].sort(rank);
    const out = sorted.slice(0, cap);
    const overflow = new Map<string, FlowRecord>();
    for (const r of sorted.slice(cap)) {
      const key = `${r.action} ${r.reporter}`;
      let o = overflow.get(key);
      if (!o) {
        o = overflowRecord(r);
        overflow.set(key, o);
      }
      addCounts(o, r);
      this.stats.folded++;
    }
    this.stats.overflowRecords += overflow.size;
    return [...out, ...overflow.values()];
  }

  private keep(r: FlowRecord): boolean {
    const ns = localNamespace(r);
    if (this.include && !this.include(ns)) return false;
    return !this.exclude?.(ns);
  }
}
