/**
 * The 24-field record line (and the 27-field variant: + srcNameAggr
 * dstNameAggr policies). Fields are separated by one space; an empty value is
 * written `-`. Values that could break the format are made safe at encode
 * time (see `safeField`), so every field is non-empty and space-free and
 * decode(encode(r)) returns r for every valid record.
 */
import { FlowtrailError } from '../util/errors.js';
import type { FlowRecord, RecordVariant } from './record.js';

export class RecordFormatError extends FlowtrailError {
  constructor(field: string, value: string, expected: string, line: string) {
    super('ERR_RECORD_FORMAT', `${field}: expected ${expected}, got ${JSON.stringify(value)}`, {
      field,
      value,
      expected,
      line,
    });
  }
}

const WHITESPACE = /\s/;

/** Whitespace would split a field; an empty field would shift all that follow. */
export function safeField(value: string): string {
  if (value === '') return '-';
  // Printable ASCII needs no regular expression: most fields are only that.
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c <= 32 || (c >= 127 && WHITESPACE.test(value[i]!))) return value.replace(/\s/g, '_');
  }
  return value;
}

function port(p: number | '-'): string {
  return p === '-' ? '-' : String(p);
}

/**
 * One record line. Joined (not concatenated): the line comes out as one flat
 * string, which the sink writes without flattening a rope of 47 pieces.
 */
export function encodeRecord(r: FlowRecord, opts: { variant?: RecordVariant } = {}): string {
  const fields: (string | number)[] = [
    r.startTime,
    r.endTime,
    r.srcType,
    safeField(r.srcNamespace),
    safeField(r.srcName),
    safeField(r.srcLabels),
    r.dstType,
    safeField(r.dstNamespace),
    safeField(r.dstName),
    safeField(r.dstLabels),
    safeField(r.srcIP),
    safeField(r.dstIP),
    r.proto,
    port(r.srcPort),
    port(r.dstPort),
    r.numFlows,
    r.numFlowsStarted,
    r.numFlowsCompleted,
    r.reporter,
    r.packetsIn,
    r.packetsOut,
    r.bytesIn,
    r.bytesOut,
    r.action,
  ];
  if (opts.variant === 27) {
    fields.push(
      safeField(r.srcNameAggr ?? '-'),
      safeField(r.dstNameAggr ?? '-'),
      safeField(r.policies ?? '-'),
    );
  }
  return fields.join(' ');
}

const TYPES = new Set(['wep', 'hep', 'ns', 'net']);

function count(field: string, v: string, line: string): number {
  if (!/^\d{1,16}$/.test(v)) throw new RecordFormatError(field, v, 'a non-negative integer', line);
  return Number(v);
}

function portField(field: string, v: string, line: string): number | '-' {
  if (v === '-') return '-';
  const n = /^\d{1,5}$/.test(v) ? Number(v) : -1;
  if (n < 0 || n > 65535) throw new RecordFormatError(field, v, "a port 0-65535 or '-'", line);
  return n;
}

function typeField(field: string, v: string, line: string): FlowRecord['srcType'] {
  if (!TYPES.has(v)) throw new RecordFormatError(field, v, 'wep, hep, ns or net', line);
  return v as FlowRecord['srcType'];
}

/** Parses one record line (24 or 27 fields); throws RecordFormatError naming the field. */
export function decodeRecord(line: string): FlowRecord {
  const f = line.trim().split(' ');
  if (f.length !== 24 && f.length !== 27) {
    throw new RecordFormatError('line', line.slice(0, 80), '24 or 27 space-separated fields', line);
  }
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '') throw new RecordFormatError(`field ${i + 1}`, '', "a value or '-'", line);
  }
  const reporter = f[18]!;
  if (reporter !== 'src' && reporter !== 'dst')
    throw new RecordFormatError('reporter', reporter, 'src or dst', line);
  const action = f[23]!;
  if (action !== 'allow' && action !== 'deny')
    throw new RecordFormatError('action', action, 'allow or deny', line);
  const proto = count('proto', f[12]!, line);
  if (proto > 255)
    throw new RecordFormatError('proto', f[12]!, 'an IANA protocol number 0-255', line);
  const r: FlowRecord = {
    startTime: count('startTime', f[0]!, line),
    endTime: count('endTime', f[1]!, line),
    srcType: typeField('srcType', f[2]!, line),
    srcNamespace: f[3]!,
    srcName: f[4]!,
    srcLabels: f[5]!,
    dstType: typeField('dstType', f[6]!, line),
    dstNamespace: f[7]!,
    dstName: f[8]!,
    dstLabels: f[9]!,
    srcIP: f[10]!,
    dstIP: f[11]!,
    proto,
    srcPort: portField('srcPort', f[13]!, line),
    dstPort: portField('dstPort', f[14]!, line),
    numFlows: count('numFlows', f[15]!, line),
    numFlowsStarted: count('numFlowsStarted', f[16]!, line),
    numFlowsCompleted: count('numFlowsCompleted', f[17]!, line),
    reporter,
    packetsIn: count('packetsIn', f[19]!, line),
    packetsOut: count('packetsOut', f[20]!, line),
    bytesIn: count('bytesIn', f[21]!, line),
    bytesOut: count('bytesOut', f[22]!, line),
    action,
  };
  if (r.endTime < r.startTime)
    throw new RecordFormatError(
      'endTime',
      f[1]!,
      `a time not before startTime ${r.startTime}`,
      line,
    );
  if (f.length === 27) {
    r.srcNameAggr = f[24]!;
    r.dstNameAggr = f[25]!;
    r.policies = f[26]!;
  }
  return r;
}

/** Labels as the record writes them: `[k=v,k2=v2]` sorted by key, `-` when none or off. */
export function formatLabels(
  labels: Readonly<Record<string, string>> | undefined,
  include: boolean,
): string {
  if (!include || !labels) return '-';
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return '-';
  // ',' '=' ']' inside keys or values would be ambiguous: replaced by '_'.
  const clean = (s: string) => s.replace(/[\s,=\]]/g, '_');
  return `[${keys.map((k) => `${clean(k)}=${clean(labels[k]!)}`).join(',')}]`;
}

/** The labels two endpoints share (same key and value). */
export function intersectLabels(
  a: Readonly<Record<string, string>>,
  b: Readonly<Record<string, string>>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(a)) if (b[k] === v) out[k] = v;
  return out;
}
