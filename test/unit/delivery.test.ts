import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type BatchInput,
  batchBytes,
  MAX_BATCH_BYTES,
  MAX_EVENT_BYTES,
  MAX_SPAN_MS,
  planBatch,
} from '../../src/sinks/cloudwatch-logs/batcher.js';
import { backoffMs, classify } from '../../src/sinks/cloudwatch-logs/retry.js';

const NOW = 1_800_000_000_000;
const rec = (id: number, line: string, ts = NOW): BatchInput => ({ id, timestampMs: ts, line });

describe('PutLogEvents batches', () => {
  it('fills exactly 1,048,576 bytes counting 26 per event, and one byte more starts a new batch', () => {
    // 1024 events of 1000 bytes: 1024 × 1026 = 1,050,624 > 1 MiB, so size them to land exactly.
    const per = 1000;
    const n = Math.floor(MAX_BATCH_BYTES / (per + 26)) - 1; // 1021 events of 1026 bytes
    const rest = MAX_BATCH_BYTES - n * (per + 26) - 26; // one last event's message fills exactly
    const records = [
      ...Array.from({ length: n }, (_, i) => rec(i + 1, 'x'.repeat(per))),
      rec(n + 1, 'y'.repeat(rest)),
    ];
    const full = planBatch(records, { nowMs: NOW });
    expect(full.batch).toHaveLength(n + 1);
    expect(batchBytes(full.batch)).toBe(MAX_BATCH_BYTES);
    const over = planBatch([...records.slice(0, -1), rec(n + 1, 'y'.repeat(rest + 1))], {
      nowMs: NOW,
    });
    expect(over.batch).toHaveLength(n);
    expect(over.lastId).toBe(n);
  });

  it('counts multi-byte UTF-8 as bytes, not characters', () => {
    const line = 'é'.repeat(500); // 1000 bytes
    const n = Math.floor(MAX_BATCH_BYTES / (1000 + 26));
    const plan = planBatch(
      Array.from({ length: n + 5 }, (_, i) => rec(i + 1, line)),
      { nowMs: NOW },
    );
    expect(plan.batch).toHaveLength(n);
  });

  it('holds at most 10,000 events', () => {
    const plan = planBatch(
      Array.from({ length: 10_001 }, (_, i) => rec(i + 1, 'a')),
      { nowMs: NOW },
    );
    expect(plan.batch).toHaveLength(10_000);
    expect(plan.lastId).toBe(10_000);
  });

  it('spans at most 24 hours, and sorts by timestamp', () => {
    const plan = planBatch(
      [
        rec(1, 'b', NOW - 1000),
        rec(2, 'a', NOW - 2000),
        rec(3, 'c', NOW - 2000 + MAX_SPAN_MS),
        rec(4, 'd', NOW - 2000 + MAX_SPAN_MS + 1),
      ],
      { nowMs: NOW + MAX_SPAN_MS },
    );
    expect(plan.batch.map((e) => e.message)).toEqual(['a', 'b', 'c']);
    expect(plan.lastId).toBe(3);
  });

  it('drops events older than 14 days (or the retention) and more than 2 h ahead, counted, before sending', () => {
    const day = 24 * 3600 * 1000;
    const plan = planBatch(
      [
        rec(1, 'old', NOW - 15 * day),
        rec(2, 'ok', NOW - 3600 * 1000),
        rec(3, 'future', NOW + 3 * 3600 * 1000),
        rec(4, 'ok2', NOW),
      ],
      { nowMs: NOW },
    );
    expect(plan.dropped).toMatchObject({ tooOld: 1, tooNew: 1 });
    expect(plan.batch.map((e) => e.message)).toEqual(['ok', 'ok2']);
    expect(plan.lastId).toBe(4);
    const retention = planBatch([rec(1, 'x', NOW - 4 * day)], { nowMs: NOW, retentionDays: 3 });
    expect(retention.dropped.tooOld).toBe(1);
  });

  it('cuts an event too large to ever fit to 256 KiB and counts it', () => {
    const plan = planBatch([rec(1, 'z'.repeat(300_000))], { nowMs: NOW });
    expect(Buffer.byteLength(plan.batch[0]!.message) + 26).toBe(MAX_EVENT_BYTES);
    expect(plan.dropped.truncated).toBe(1);
  });

  it('property: every batch is within every limit and consumes records in order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(3000), fc.integer({ min: -3 * 86_400_000, max: 0 })), {
          maxLength: 400,
        }),
        (spec) => {
          let records = spec.map(([len, dt], i) => rec(i + 1, 'q'.repeat(len + 1), NOW + dt * 10));
          let consumed = 0;
          while (records.length > 0) {
            const plan = planBatch(records, {
              nowMs: NOW,
              maxBatchBytes: 50_000,
              maxBatchEvents: 50,
            });
            expect(batchBytes(plan.batch)).toBeLessThanOrEqual(50_000);
            expect(plan.batch.length).toBeLessThanOrEqual(50);
            const ts = plan.batch.map((e) => e.timestamp);
            if (ts.length)
              expect(Math.max(...ts) - Math.min(...ts)).toBeLessThanOrEqual(MAX_SPAN_MS);
            expect(ts).toEqual([...ts].sort((a, b) => a - b));
            expect(plan.lastId).toBeGreaterThan(consumed);
            consumed = plan.lastId;
            records = records.filter((r) => r.id > plan.lastId);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('retry classification', () => {
  const err = (name: string, status?: number, extra: object = {}) =>
    Object.assign(
      new Error(`${name} happened`),
      { name, $metadata: { httpStatusCode: status } },
      extra,
    );
  it.each([
    [err('ThrottlingException', 400), 'retryable'],
    [err('ServiceUnavailableException', 503), 'retryable'],
    [err('InternalServerError', 500), 'retryable'],
    [Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), 'retryable'],
    [err('TimeoutError'), 'retryable'],
    [err('ResourceNotFoundException', 400), 'missing'],
    [err('AccessDeniedException', 400), 'fatal'],
    [err('UnrecognizedClientException', 400), 'fatal'],
    [err('InvalidParameterException', 400), 'fatal'],
  ])('%s → %s', (e, kind) => {
    expect(classify(e).kind).toBe(kind);
  });
  it('backoff is capped, exponential and fully jittered', () => {
    expect(backoffMs(0, () => 0.999)).toBe(199);
    expect(backoffMs(3, () => 0.5)).toBe(800);
    expect(backoffMs(30, () => 0.999)).toBe(29_970);
    expect(backoffMs(5, () => 0)).toBe(0);
  });
});
