/** How wide an estimate's sample is, and the 95 % range of a projection (src/estimate/uncertainty.ts). */
import { describe, expect, it } from 'vitest';
import { perDayRange, sampleWarnings, sampleWidth, t975 } from '../../src/estimate/uncertainty.js';
import type { FlowRecord } from '../../src/format/record.js';

const at = (startTime: number, width = 60) =>
  ({ startTime, endTime: startTime + width }) as FlowRecord;

describe('t975', () => {
  it('is Student t at 97.5 % (two-sided 95 %): table values, then close to the normal', () => {
    expect(t975(1)).toBe(12.706);
    expect(t975(2)).toBe(4.303);
    expect(t975(30)).toBe(2.042);
    expect(t975(60)).toBeCloseTo(2.0003, 2);
    expect(t975(120)).toBeCloseTo(1.9799, 2);
    expect(t975(1e9)).toBeCloseTo(1.96, 6);
    expect(t975(0)).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('sampleWidth', () => {
  it('takes the most common record width as the flush interval', () => {
    const records = [at(0), at(60), at(120), at(180, 30)];
    expect(sampleWidth(records, 240)).toEqual({
      spanSeconds: 240,
      intervalSeconds: 60,
      intervals: 4,
      short: true,
      coversDay: false,
    });
  });
});

describe('perDayRange', () => {
  it('counts intervals without records as zero', () => {
    // 4 intervals of 60 s: 3, 0, 0, 1 records.
    const records = [at(0), at(0), at(0), at(180)];
    const s = sampleWidth(records, 240);
    const range = perDayRange(records, () => 1, s, 0)!;
    const mean = 1;
    const sd = Math.sqrt(((3 - mean) ** 2 + 1 + 1 + 0) / 3);
    const half = 3.182 * sd * 2;
    expect(range[0]).toBe(0); // never below zero
    expect(range[1]).toBeCloseTo((4 + half) * (86_400 / 240), 9);
  });

  it('is the point itself when every interval is the same, and undefined from one interval', () => {
    const records = [at(0), at(60), at(120)];
    const s = sampleWidth(records, 180);
    expect(perDayRange(records, () => 2, s, 0)).toEqual([6 * 480, 6 * 480]);
    expect(perDayRange([at(0)], () => 1, sampleWidth([at(0)], 60), 0)).toBeUndefined();
  });
});

describe('sampleWarnings', () => {
  it('says what limits the projection', () => {
    const w = (span: number, interval: number) =>
      sampleWarnings({
        spanSeconds: span,
        intervalSeconds: interval,
        intervals: Math.round(span / interval),
        short: span < 3_600,
        coversDay: span >= 86_400,
      });
    expect(w(9, 3)[0]).toMatch(
      /^the sample spans 9 s \(3 flush intervals of 3 s\): a day projected from it is a rough guess/,
    );
    expect(w(7_200, 300)[0]).toMatch(/^the sample spans 2\.0 h .*daily cycles/);
    expect(w(7_200, 300)[1]).toMatch(/cover only the variation between the sampled intervals/);
    expect(w(60, 60)).toContain(
      'a single flush interval: no range can be given for the projection',
    );
    expect(w(86_400, 300)).toEqual([]);
  });
});
