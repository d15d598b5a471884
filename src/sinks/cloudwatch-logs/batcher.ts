/**
 * PutLogEvents batches within every CloudWatch limit, decided here because
 * emulators do not enforce them:
 * - at most 1,048,576 bytes, counting each message's UTF-8 bytes + 26;
 * - at most 10,000 events;
 * - events in timestamp order, one batch spanning at most 24 hours;
 * - events older than 14 days (or the retention) or more than 2 hours in the
 *   future are rejected by the service: they are dropped here and counted;
 * - one event is at most 256 KiB (262,144 bytes incl. the 26): a longer
 *   message is cut to fit, counted (our records are ~200 bytes: never in
 *   practice, but a bad record must not block the stream forever).
 * Pure: time is passed in.
 */
export const MAX_BATCH_BYTES = 1_048_576;
export const EVENT_OVERHEAD = 26;
export const MAX_BATCH_EVENTS = 10_000;
export const MAX_SPAN_MS = 24 * 3600 * 1000;
export const MAX_AGE_MS = 14 * 24 * 3600 * 1000;
export const MAX_FUTURE_MS = 2 * 3600 * 1000;
export const MAX_EVENT_BYTES = 262_144;

export interface BatchInput {
  readonly id: number;
  readonly timestampMs: number;
  readonly line: string;
}

export interface PlannedEvent {
  readonly id: number;
  readonly timestamp: number;
  readonly message: string;
}

export interface Plan {
  /** Bytes the batch counts against the 1 MiB limit (messages + 26 each). */
  bytes: number;
  /** Events of one PutLogEvents call, sorted by timestamp. */
  batch: PlannedEvent[];
  /** Highest id consumed (sent or dropped): acknowledge up to it after success. */
  lastId: number;
  dropped: { tooOld: number; tooNew: number; truncated: number };
}

export interface PlanOptions {
  nowMs: number;
  retentionDays?: number;
  maxBatchBytes?: number;
  maxBatchEvents?: number;
}

function truncateUtf8(text: string, maxBytes: number): string {
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= maxBytes) return text;
  let end = maxBytes;
  // Never cut inside a multi-byte character.
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--;
  return buf.subarray(0, end).toString('utf8');
}

/**
 * Takes records in spool order and returns the next batch. Records are
 * consumed in order: the batch ends at the first record that would break a
 * limit, so acknowledging `lastId` never skips an unsent record.
 */
export function planBatch(records: readonly BatchInput[], o: PlanOptions): Plan {
  const maxBytes = o.maxBatchBytes ?? MAX_BATCH_BYTES;
  const maxEvents = o.maxBatchEvents ?? MAX_BATCH_EVENTS;
  const retentionMs =
    o.retentionDays !== undefined ? o.retentionDays * 24 * 3600 * 1000 : MAX_AGE_MS;
  const oldest = o.nowMs - Math.min(MAX_AGE_MS, retentionMs);
  const newest = o.nowMs + MAX_FUTURE_MS;
  const plan: Plan = {
    bytes: 0,
    batch: [],
    lastId: 0,
    dropped: { tooOld: 0, tooNew: 0, truncated: 0 },
  };
  let bytes = 0;
  let minTs = Number.POSITIVE_INFINITY;
  let maxTs = Number.NEGATIVE_INFINITY;
  for (const r of records) {
    if (r.timestampMs < oldest) {
      plan.dropped.tooOld++;
      plan.lastId = r.id;
      continue;
    }
    if (r.timestampMs > newest) {
      plan.dropped.tooNew++;
      plan.lastId = r.id;
      continue;
    }
    let message = r.line;
    let size = Buffer.byteLength(message, 'utf8') + EVENT_OVERHEAD;
    if (size > MAX_EVENT_BYTES) {
      message = truncateUtf8(message, MAX_EVENT_BYTES - EVENT_OVERHEAD);
      size = Buffer.byteLength(message, 'utf8') + EVENT_OVERHEAD;
      plan.dropped.truncated++;
    }
    const span = Math.max(maxTs, r.timestampMs) - Math.min(minTs, r.timestampMs);
    if (
      plan.batch.length > 0 &&
      (bytes + size > maxBytes || plan.batch.length >= maxEvents || span > MAX_SPAN_MS)
    ) {
      break;
    }
    plan.batch.push({ id: r.id, timestamp: r.timestampMs, message });
    plan.lastId = r.id;
    bytes += size;
    plan.bytes = bytes;
    minTs = Math.min(minTs, r.timestampMs);
    maxTs = Math.max(maxTs, r.timestampMs);
  }
  // Stable sort: records of one flush share a timestamp and keep their order.
  plan.batch.sort((a, b) => a.timestamp - b.timestamp);
  return plan;
}

/** Bytes a batch counts against the 1 MiB limit. */
export function batchBytes(events: readonly { message: string }[]): number {
  let n = 0;
  for (const e of events) n += Buffer.byteLength(e.message, 'utf8') + EVENT_OVERHEAD;
  return n;
}
