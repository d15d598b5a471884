/**
 * What records cost: from a sample of records (a file, a CloudWatch time
 * range, or a live node for a few minutes), records and bytes per day at
 * each aggregation kind the sample allows, and with the configured kinds
 * and volume controls, then the monthly CloudWatch ingest cost at the
 * standard and infrequent-access prices (config, not fetched).
 *
 * Bytes are the records' UTF-8 bytes, in the variant the agent writes (27
 * fields with `includePolicies`, else 24) whichever the input was;
 * CloudWatch counts each event's bytes plus 26 (the PutLogEvents size
 * formula), used here as the billed size.
 */
import { VolumeControl, type VolumeOptions } from '../flows/volume.js';
import { encodeRecord } from '../format/codec.js';
import type { FlowRecord, RecordVariant } from '../format/record.js';
import { FlowtrailError } from '../util/errors.js';
import { aggregatedOf, type Kind, kindOf, reaggregate } from './reaggregate.js';
import {
  perDayRange,
  type Range,
  type SampleWidth,
  sampleWarnings,
  sampleWidth,
} from './uncertainty.js';

export const EVENT_OVERHEAD_BYTES = 26;
export const GB = 1e9;
export const DAYS_PER_MONTH = 30;

export interface Prices {
  /** USD per GB ingested, standard log class. */
  standardPerGb: number;
  /** USD per GB ingested, infrequent-access log class. */
  infrequentAccessPerGb: number;
}

export interface EstimateRow {
  label: string;
  kind: Kind | 'configured';
  records: number;
  bytes: number;
  recordsPerDay: number;
  bytesPerDay: number;
  /** (bytes + 26 per record) per day, in GB (10^9 bytes). */
  ingestGbPerDay: number;
  monthlyUsdStandard: number;
  monthlyUsdInfrequentAccess: number;
  /** 95 % ranges of the per-day and monthly figures (src/estimate/uncertainty.ts); null from one interval. */
  range95: {
    recordsPerDay: Range;
    ingestGbPerDay: Range;
    monthlyUsdStandard: Range;
    monthlyUsdInfrequentAccess: Range;
  } | null;
}

export interface Estimate {
  inputRecords: number;
  inputKind: Kind;
  spanSeconds: number;
  /** How wide the sample is: span, flush interval, intervals, short, coversDay. */
  sample: SampleWidth;
  rows: EstimateRow[];
  prices: Prices;
  /** What limits the projection (a short sample, no daily cycle, a single interval). */
  warnings: string[];
  notes: string[];
}

export interface EstimateOptions {
  prices: Prices;
  aggregationKindForAllowed: Kind;
  aggregationKindForDenied: Kind;
  enabledForAllowed: boolean;
  enabledForDenied: boolean;
  /** The agent writes 27-field records (flowLogs.includePolicies). */
  includePolicies: boolean;
  volume: VolumeOptions;
}

export function recordBytes(records: readonly FlowRecord[], variant: RecordVariant = 24): number {
  let n = 0;
  for (const r of records) n += Buffer.byteLength(encodeRecord(r, { variant }));
  return n;
}

/**
 * A record with the 27-field variant's fields: its own, or (from a 24-field
 * record) the aggregated names cut from the names and no policy ('-').
 */
function withPolicyFields(r: FlowRecord): FlowRecord {
  if (r.policies !== undefined) return r;
  return {
    ...r,
    srcNameAggr: aggregatedOf(r.srcType, r.srcName, undefined),
    dstNameAggr: aggregatedOf(r.dstType, r.dstName, undefined),
    policies: '-',
  };
}

const KIND_LABELS = ['kind 0 (5-tuple)', 'kind 1 (no source port)', 'kind 2 (pod prefixes)'];

/** Where a row's records come from: the sample's width and its first second. */
interface SampleFrame {
  width: SampleWidth;
  start: number;
}

function ranges(
  records: readonly FlowRecord[],
  sizes: readonly number[],
  frame: SampleFrame,
  prices: Prices,
): EstimateRow['range95'] {
  const recordsPerDay = perDayRange(records, () => 1, frame.width, frame.start);
  const ingest = perDayRange(
    records,
    (_, i) => sizes[i]! + EVENT_OVERHEAD_BYTES,
    frame.width,
    frame.start,
  );
  if (!recordsPerDay || !ingest) return null;
  const gb: Range = [ingest[0] / GB, ingest[1] / GB];
  const monthly = (perGb: number): Range => [
    gb[0] * DAYS_PER_MONTH * perGb,
    gb[1] * DAYS_PER_MONTH * perGb,
  ];
  return {
    recordsPerDay: [Math.round(recordsPerDay[0]), Math.round(recordsPerDay[1])],
    ingestGbPerDay: gb,
    monthlyUsdStandard: monthly(prices.standardPerGb),
    monthlyUsdInfrequentAccess: monthly(prices.infrequentAccessPerGb),
  };
}

function row(
  label: string,
  kind: Kind | 'configured',
  records: readonly FlowRecord[],
  frame: SampleFrame,
  o: EstimateOptions,
): EstimateRow {
  const { prices } = o;
  const variant = o.includePolicies ? 27 : 24;
  // Each record encoded once: its size feeds the total and the per-interval range.
  const sizes = records.map((r) => Buffer.byteLength(encodeRecord(r, { variant })));
  const bytes = sizes.reduce((n, b) => n + b, 0);
  const perDay = 86_400 / frame.width.spanSeconds;
  const ingestGbPerDay = ((bytes + EVENT_OVERHEAD_BYTES * records.length) * perDay) / GB;
  return {
    label,
    kind,
    records: records.length,
    bytes,
    recordsPerDay: Math.round(records.length * perDay),
    bytesPerDay: Math.round(bytes * perDay),
    ingestGbPerDay,
    monthlyUsdStandard: ingestGbPerDay * DAYS_PER_MONTH * prices.standardPerGb,
    monthlyUsdInfrequentAccess: ingestGbPerDay * DAYS_PER_MONTH * prices.infrequentAccessPerGb,
    range95: ranges(records, sizes, frame, prices),
  };
}

/** The records' time span in seconds: first interval start to last interval end. */
export function spanOf(records: readonly FlowRecord[]): number {
  let start = Number.POSITIVE_INFINITY;
  let end = Number.NEGATIVE_INFINITY;
  for (const r of records) {
    if (r.startTime < start) start = r.startTime;
    if (r.endTime > end) end = r.endTime;
  }
  return end - start;
}

export function estimate(
  input: readonly FlowRecord[],
  o: EstimateOptions,
  spanSeconds = spanOf(input),
): Estimate {
  if (input.length === 0) {
    throw new FlowtrailError('ERR_ESTIMATE_INPUT', 'no records to estimate from', {});
  }
  if (!(spanSeconds > 0)) {
    throw new FlowtrailError(
      'ERR_ESTIMATE_INPUT',
      `the records span ${spanSeconds} s: need records from at least one whole flush interval`,
      { spanSeconds },
    );
  }
  const inputKind = kindOf(input);
  let start = Number.POSITIVE_INFINITY;
  for (const r of input) if (r.startTime < start) start = r.startTime;
  const frame: SampleFrame = { width: sampleWidth(input, spanSeconds), start };
  const notes: string[] = [];
  let records = input;
  if (o.includePolicies) {
    const without = input.reduce((n, r) => n + (r.policies === undefined ? 1 : 0), 0);
    if (without > 0) {
      records = input.map(withPolicyFields);
      notes.push(
        `${without} of ${input.length} records have 24 fields, without policy names: their 27-field bytes count '-' for policies (a lower bound)`,
      );
    }
  }
  const rows: EstimateRow[] = [];
  for (const kind of [0, 1, 2] as const) {
    if (kind < inputKind) continue;
    rows.push(row(KIND_LABELS[kind]!, kind, reaggregate(records, kind), frame, o));
  }
  if (inputKind > 0) {
    notes.push(
      `the input is already aggregated at kind ${inputKind}: finer kinds cannot be estimated from it`,
    );
  }
  const allowedKind = Math.max(o.aggregationKindForAllowed, inputKind) as Kind;
  const deniedKind = Math.max(o.aggregationKindForDenied, inputKind) as Kind;
  const allowed = o.enabledForAllowed
    ? reaggregate(
        records.filter((r) => r.action === 'allow'),
        allowedKind,
      )
    : [];
  const denied = o.enabledForDenied
    ? reaggregate(
        records.filter((r) => r.action === 'deny'),
        deniedKind,
      )
    : [];
  // The cap applies per flush interval, as in the agent.
  const byInterval = new Map<string, FlowRecord[]>();
  for (const r of [...allowed, ...denied]) {
    const k = `${r.startTime} ${r.endTime}`;
    const list = byInterval.get(k);
    if (list) list.push(r);
    else byInterval.set(k, [r]);
  }
  const volume = new VolumeControl(o.volume);
  const configured = [...byInterval.values()].flatMap((rs) => volume.apply(rs));
  const label = `configured (allowed kind ${allowedKind}${o.enabledForAllowed ? '' : ' off'}, denied kind ${deniedKind}${o.enabledForDenied ? '' : ' off'}, ${o.includePolicies ? 27 : 24} fields${volume.active ? ', volume controls' : ''})`;
  rows.push(row(label, 'configured', configured, frame, o));
  if (volume.stats.filteredByNamespace > 0) {
    notes.push(`${volume.stats.filteredByNamespace} records dropped by the namespace filters`);
  }
  if (volume.stats.folded > 0) {
    notes.push(
      `${volume.stats.folded} records folded into ${volume.stats.overflowRecords} overflow records by maxRecordsPerFlush`,
    );
  }
  return {
    inputRecords: input.length,
    inputKind,
    spanSeconds,
    sample: frame.width,
    rows,
    prices: o.prices,
    warnings: sampleWarnings(frame.width),
    notes,
  };
}
