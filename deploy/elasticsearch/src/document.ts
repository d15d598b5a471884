/**
 * One flow record → one typed document for index-template.json: IPs as
 * `ip` (absent when '-'), counts as `long`, times as `date` (ISO from epoch
 * seconds), labels and policies as keyword arrays. Pure.
 */
import { type FlowRecord, POLICY_FIELDS, RECORD_FIELDS } from '../../../src/format/record.js';

/** Text fields where '-' means none: absent from the document. */
const TEXT_OR_NONE = [
  'srcNamespace',
  'srcName',
  'dstNamespace',
  'dstName',
  'srcIP',
  'dstIP',
  'srcNameAggr',
  'dstNameAggr',
] as const;
type TextOrNone = (typeof TEXT_OR_NONE)[number];
const TEXT_OR_NONE_SET: ReadonlySet<string> = new Set(TEXT_OR_NONE);

/** The record's fields (names from src/format/record.ts), typed for the index template. */
export type FlowDocument = Omit<
  FlowRecord,
  | TextOrNone
  | 'startTime'
  | 'endTime'
  | 'srcLabels'
  | 'dstLabels'
  | 'srcPort'
  | 'dstPort'
  | 'policies'
> &
  Partial<Pick<FlowRecord, TextOrNone>> & {
    '@timestamp': string;
    startTime: string;
    endTime: string;
    srcLabels?: string[];
    dstLabels?: string[];
    srcPort?: number;
    dstPort?: number;
    policies?: string[];
    logGroup: string;
    logStream: string;
  };

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

/** One field's document value; undefined leaves it out. */
function fieldValue(field: string, v: string | number): unknown {
  if (field === 'startTime' || field === 'endTime') return iso(v as number);
  if (field === 'srcLabels' || field === 'dstLabels') return labelList(v as string);
  if (field === 'srcPort' || field === 'dstPort') return v === '-' ? undefined : v;
  if (field === 'policies') {
    const policies = opt(v as string);
    return policies ? policies.split('|') : undefined;
  }
  if (TEXT_OR_NONE_SET.has(field)) return opt(v as string);
  return v;
}

const FIELDS = [...RECORD_FIELDS, ...POLICY_FIELDS];

export function toDocument(
  r: FlowRecord,
  source: { logGroup: string; logStream: string },
): FlowDocument {
  const doc: Record<string, unknown> = { '@timestamp': iso(r.endTime) };
  for (const field of FIELDS) {
    const v = r[field];
    if (v === undefined) continue;
    const out = fieldValue(field, v);
    if (out !== undefined) doc[field] = out;
  }
  doc.logGroup = source.logGroup;
  doc.logStream = source.logStream;
  return doc as FlowDocument;
}
