/**
 * The soak's short version, on every test run (`npm run soak -- --minutes N`
 * is the long one): about a minute of mixed traffic with pod churn and IP
 * reuse, CloudWatch faults through the fault proxy, kill -9 and restarts of
 * the agent, and overrun storms; then every 5-tuple's totals in CloudWatch
 * (moto) against the kernel's counters, and attribution under IP reuse.
 */
import { describe, expect, it } from 'vitest';
import { runSoak, type SoakResult } from '../../tooling/soak/run.js';
import { skipKernel, skipMoto } from '../harness/env.js';

describe.skipIf(skipKernel || skipMoto)('soak (short)', () => {
  it('keeps every count exact and every flow attributed through churn, faults, kills and storms', async () => {
    const r: SoakResult = await runSoak({ minutes: 1.2 });
    const summary = {
      mismatched: r.check.mismatched,
      mismatchSamples: r.check.mismatchSamples.slice(0, 3),
      unexplainedGroups: r.check.unexplainedGroups,
      misattributed: r.check.misattributed,
      misattributedSamples: r.check.misattributedSamples.slice(0, 3),
    };
    expect(summary).toEqual({
      mismatched: 0,
      mismatchSamples: [],
      unexplainedGroups: 0,
      misattributed: 0,
      misattributedSamples: [],
    });
    expect(r.pass).toBe(true);
    // The run really exercised what it claims.
    expect(r.check.exact).toBeGreaterThan(1_000);
    expect(r.kills).toBeGreaterThanOrEqual(1);
    expect(r.restarts).toBe(r.kills);
    expect(r.storms).toBeGreaterThanOrEqual(1);
    expect(r.churns).toBeGreaterThanOrEqual(3);
    // Reopened 5-tuples (tw_reuse from a narrow port range) were checked, all exact.
    expect(r.reuseBursts).toBeGreaterThanOrEqual(1);
    expect(r.check.reusedChecked).toBeGreaterThanOrEqual(100);
    expect(r.check.reusedExact).toBe(r.check.reusedChecked);
    expect(r.check.attributionChecked).toBeGreaterThan(0);
    expect(r.faults.length).toBeGreaterThanOrEqual(1);
    expect(r.lost.ConntrackOverrun ?? 0).toBeGreaterThan(0);
    expect(r.samples.length).toBeGreaterThan(5);
    expect(r.records).toBeGreaterThan(0);
  }, 300_000);
});
