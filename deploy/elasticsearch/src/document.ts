/**
 * One flow record → one typed document for index-template.json: IPs as
 * `ip` (absent when '-'), counts as `long`, times as `date` (ISO from epoch
 * seconds), labels and policies as keyword arrays. Pure.
 */
import type { FlowRecord } from '../../../src/format/record.js';

export interface FlowDocument {
  '@timestamp': string;
  startTime: string;
  endTime: string;
  srcType: string;
  srcNamespace?: string;
  srcName?: string;
  srcLabels?: string[];
  dstType: string;
  dstNamespace?: string;
  dstName?: string;
  dstLabels?: string[];
  srcIP?: string;
  dstIP?: string;
  proto: number;
  srcPort?: number;
  dstPort?: number;
  numFlows: number;
  numFlowsStarted: number;
  numFlowsCompleted: number;
  reporter: 'src' | 'dst';
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
  action: 'allow' | 'deny';
  srcNameAggr?: string;
  dstNameAggr?: string;
  policies?: string[];
  logGroup: string;
  logStream: string;
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();
const opt = (v: string | undefined) => (v === undefined || v === '-' ? undefined : v);

/** `[k=v,k2=v2]` → ['k=v', 'k2=v2']; '-' → undefined. */
export function labelList(field: string): string[] | undefined {
  if (field === '-' || field === '[]') return undefined;
  const inner = field.startsWith('[') && field.endsWith(']') ? field.slice(1, -1) : field;
  const parts = inner.split(',').filter((p) => p !== '');
  return parts.length > 0 ? parts : undefined;
}

/** The daily index the record belongs to, by its endTime (UTC). */
export function indexName(r: FlowRecord, prefix = 'flowtrail-'): string {
  const d = new Date(r.endTime * 1000);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${prefix}${d.getUTCFullYear()}.${p(d.getUTCMonth() + 1)}.${p(d.getUTCDate())}`;
}

export function toDocument(
  r: FlowRecord,
  source: { logGroup: string; logStream: string },
): FlowDocument {
  const doc: FlowDocument = {
    '@timestamp': iso(r.endTime),
    startTime: iso(r.startTime),
    endTime: iso(r.endTime),
    srcType: r.srcType,
    dstType: r.dstType,
    proto: r.proto,
    numFlows: r.numFlows,
    numFlowsStarted: r.numFlowsStarted,
    numFlowsCompleted: r.numFlowsCompleted,
    reporter: r.reporter,
    packetsIn: r.packetsIn,
    packetsOut: r.packetsOut,
    bytesIn: r.bytesIn,
    bytesOut: r.bytesOut,
    action: r.action,
    logGroup: source.logGroup,
    logStream: source.logStream,
  };
  const set = <K extends keyof FlowDocument>(k: K, v: FlowDocument[K] | undefined) => {
    if (v !== undefined) doc[k] = v;
  };
  set('srcNamespace', opt(r.srcNamespace));
  set('srcName', opt(r.srcName));
  set('srcLabels', labelList(r.srcLabels));
  set('dstNamespace', opt(r.dstNamespace));
  set('dstName', opt(r.dstName));
  set('dstLabels', labelList(r.dstLabels));
  set('srcIP', opt(r.srcIP));
  set('dstIP', opt(r.dstIP));
  set('srcPort', r.srcPort === '-' ? undefined : r.srcPort);
  set('dstPort', r.dstPort === '-' ? undefined : r.dstPort);
  set('srcNameAggr', opt(r.srcNameAggr));
  set('dstNameAggr', opt(r.dstNameAggr));
  const policies = opt(r.policies);
  set('policies', policies ? policies.split('|') : undefined);
  return doc;
}
