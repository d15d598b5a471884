/**
 * How far a projection to a day can be trusted: how wide the sample is, and
 * a 95 % range for each per-day figure from the variation between the
 * sample's flush intervals.
 *
 * The sample is cut into its flush intervals (intervals with no records count
 * as zero). With n intervals whose totals have mean m and standard deviation
 * s, the sample's total n·m is uncertain by ± t(0.975, n−1) · s · √n, scaled to
 * a day like the total itself. This covers the interval-to-interval noise the
 * sample shows, not what it cannot show: a sample shorter than a day misses
 * the daily cycle (business hours, nightly jobs), which the warnings say.
 */
import type { FlowRecord } from '../format/record.js';

/** Below this width a projection to a day is called a rough guess. */
export const SHORT_SAMPLE_SECONDS = 3_600;
export const DAY_SECONDS = 86_400;

export interface SampleWidth {
  spanSeconds: number;
  /** The flush interval the records were written at (their most common endTime − startTime). */
  intervalSeconds: number;
  /** Flush intervals in the span. */
  intervals: number;
  /** Narrower than SHORT_SAMPLE_SECONDS. */
  short: boolean;
  /** At least a day wide (so the daily cycle is in it). */
  coversDay: boolean;
}

/** [low, high] of a per-day figure, 95 %; absent when the sample has a single interval. */
export type Range = [number, number];

/** Two-sided 95 % quantiles of Student's t, by degrees of freedom 1…30. */
const T975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145,
  2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048,
  2.045, 2.042,
];

/** t(0.975, df); past the table 1.96 + 2.5/df is within 0.002 of the exact value. */
export function t975(df: number): number {
  if (df < 1) return Number.POSITIVE_INFINITY;
  return T975[df - 1] ?? 1.96 + 2.5 / df;
}

function mostCommon(values: Iterable<number>): number {
  const counts = new Map<number, number>();
  let best = 0;
  let bestCount = 0;
  for (const v of values) {
    const c = (counts.get(v) ?? 0) + 1;
    counts.set(v, c);
    if (c > bestCount || (c === bestCount && v < best)) {
      best = v;
      bestCount = c;
    }
  }
  return best;
}

export function sampleWidth(records: readonly FlowRecord[], spanSeconds: number): SampleWidth {
  const width = mostCommon(records.map((r) => r.endTime - r.startTime));
  const intervalSeconds = width > 0 ? width : spanSeconds;
  return {
    spanSeconds,
    intervalSeconds,
    intervals: Math.max(1, Math.round(spanSeconds / intervalSeconds)),
    short: spanSeconds < SHORT_SAMPLE_SECONDS,
    coversDay: spanSeconds >= DAY_SECONDS,
  };
}

/**
 * The 95 % range of `weight` summed over `records` and scaled to a day, or
 * undefined with fewer than two intervals. `spanStart` is the sample's first
 * second; each record falls in the interval its startTime is in.
 */
export function perDayRange(
  records: readonly FlowRecord[],
  weight: (r: FlowRecord, index: number) => number,
  sample: SampleWidth,
  spanStart: number,
): Range | undefined {
  const n = sample.intervals;
  if (n < 2) return undefined;
  const bins = new Float64Array(n);
  records.forEach((r, index) => {
    const i = Math.floor((r.startTime - spanStart) / sample.intervalSeconds);
    bins[Math.min(n - 1, Math.max(0, i))]! += weight(r, index);
  });
  let total = 0;
  for (const b of bins) total += b;
  const mean = total / n;
  let squares = 0;
  for (const b of bins) squares += (b - mean) ** 2;
  const sd = Math.sqrt(squares / (n - 1));
  const half = t975(n - 1) * sd * Math.sqrt(n);
  const perDay = DAY_SECONDS / sample.spanSeconds;
  return [Math.max(0, total - half) * perDay, (total + half) * perDay];
}

function duration(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7_200) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3_600).toFixed(1)} h`;
}

/** What a reader of the projection must know about the sample, one sentence each. */
export function sampleWarnings(s: SampleWidth): string[] {
  const what = `the sample spans ${duration(s.spanSeconds)} (${s.intervals} flush interval${s.intervals === 1 ? '' : 's'} of ${duration(s.intervalSeconds)})`;
  const out: string[] = [];
  if (s.short) {
    out.push(
      `${what}: a day projected from it is a rough guess; sample at least an hour, better a whole day`,
    );
  } else if (!s.coversDay) {
    out.push(
      `${what}: shorter than a day, so daily cycles (business hours, nightly jobs) are not in it`,
    );
  }
  if (s.intervals < 2) {
    out.push('a single flush interval: no range can be given for the projection');
  } else if (!s.coversDay) {
    out.push(
      'the 95% ranges cover only the variation between the sampled intervals, not the rest of the day',
    );
  }
  return out;
}
