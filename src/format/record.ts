import type { EndpointType } from '../endpoints/types.js';

/**
 * One flow-log record: the 24 fields of DESIGN.md, in order. Strings use '-'
 * for empty when encoded; here empty is represented by '-' as well so that
 * decode(encode(r)) is the identity.
 */
export interface FlowRecord {
  startTime: number; // Unix seconds, flush interval start
  endTime: number; // Unix seconds, flush interval end
  srcType: EndpointType;
  srcNamespace: string;
  srcName: string;
  srcLabels: string; // '[k=v,k2=v2]' or '-'
  dstType: EndpointType;
  dstNamespace: string;
  dstName: string;
  dstLabels: string;
  srcIP: string; // '-' when aggregated away
  dstIP: string;
  proto: number;
  srcPort: number | '-';
  dstPort: number | '-';
  numFlows: number;
  numFlowsStarted: number;
  numFlowsCompleted: number;
  reporter: 'src' | 'dst';
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
  action: 'allow' | 'deny';
  /** 27-field variant only. */
  srcNameAggr?: string;
  dstNameAggr?: string;
  policies?: string;
}

export const RECORD_FIELDS = [
  'startTime',
  'endTime',
  'srcType',
  'srcNamespace',
  'srcName',
  'srcLabels',
  'dstType',
  'dstNamespace',
  'dstName',
  'dstLabels',
  'srcIP',
  'dstIP',
  'proto',
  'srcPort',
  'dstPort',
  'numFlows',
  'numFlowsStarted',
  'numFlowsCompleted',
  'reporter',
  'packetsIn',
  'packetsOut',
  'bytesIn',
  'bytesOut',
  'action',
] as const;

/** The 27-field variant (`flowLogs.includePolicies`): the 24, then these three. */
export const POLICY_FIELDS = ['srcNameAggr', 'dstNameAggr', 'policies'] as const;

/** A record line has 24 fields, or 27 with the policy fields. */
export type RecordVariant = 24 | 27;

/** The field names of a variant, in line order. */
export function recordFields(variant: RecordVariant): readonly string[] {
  return variant === 27 ? [...RECORD_FIELDS, ...POLICY_FIELDS] : RECORD_FIELDS;
}

/** Adds `from`'s flow counts, packets and bytes into `into` (aggregating records). */
export function addCounts(into: FlowRecord, from: FlowRecord): void {
  into.numFlows += from.numFlows;
  into.numFlowsStarted += from.numFlowsStarted;
  into.numFlowsCompleted += from.numFlowsCompleted;
  into.packetsIn += from.packetsIn;
  into.packetsOut += from.packetsOut;
  into.bytesIn += from.bytesIn;
  into.bytesOut += from.bytesOut;
}
