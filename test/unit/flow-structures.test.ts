import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConnNumbers, PO, RBR, START, WIDTH } from '../../src/flows/conn-numbers.js';
import { TupleCounts, tupleHash } from '../../src/flows/tuple-counts.js';

describe('ConnNumbers: per-connection numbers in one Float64Array', () => {
  it('keeps every slot’s values while growing, and hands out a released slot zeroed', () => {
    const n = new ConnNumbers();
    const bases: number[] = [];
    for (let i = 0; i < 5_000; i++) {
      const b = n.alloc();
      n.a[b + PO] = i;
      n.a[b + START] = 1_700_000_000_000 + i;
      bases.push(b);
    }
    expect(new Set(bases).size).toBe(5_000);
    bases.forEach((b, i) => {
      expect(n.a[b + PO]).toBe(i);
      expect(n.a[b + START]).toBe(1_700_000_000_000 + i);
    });
    n.a[bases[7]! + RBR] = 99;
    n.release(bases[7]!);
    const again = n.alloc();
    expect(again).toBe(bases[7]);
    expect([...n.a.subarray(again, again + WIDTH)]).toEqual(new Array(WIDTH).fill(0));
  });
});

describe('TupleCounts: connections per 5-tuple hash', () => {
  const tupleArb = fc.record({
    proto: fc.constantFrom(1, 6, 17),
    src: fc.constantFrom('10.0.0.1', '10.0.0.2', 'fd00::1'),
    dst: fc.constantFrom('10.0.0.3', '10.0.0.4', 'fd00::2'),
    sport: fc.constantFrom(-1, 80, 443, 50_000),
    dport: fc.constantFrom(-1, 80, 8080),
  });
  const hashOf = (t: { proto: number; src: string; dst: string; sport: number; dport: number }) =>
    tupleHash(t.proto, t.src, t.dst, t.sport, t.dport);

  it('never calls a 5-tuple unshared while another live connection has it, and forgets released ones', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), tupleArb), { maxLength: 200 }), (ops) => {
        const counts = new TupleCounts();
        const model = new Map<string, number>();
        for (const [release, t] of ops) {
          const key = JSON.stringify(t);
          if (release && (model.get(key) ?? 0) > 0) {
            counts.release(hashOf(t));
            model.set(key, model.get(key)! - 1);
          } else {
            counts.add(hashOf(t));
            model.set(key, (model.get(key) ?? 0) + 1);
          }
        }
        for (const [key, n] of model) {
          const t = JSON.parse(key);
          if (n > 1) expect(counts.shared(hashOf(t))).toBe(true);
        }
        // With distinct hashes (the usual case) the answer is exact.
        const hashes = new Set([...model.keys()].map((k) => hashOf(JSON.parse(k))));
        if (hashes.size === model.size) {
          for (const [key, n] of model) expect(counts.shared(hashOf(JSON.parse(key)))).toBe(n > 1);
        }
        const live = new Set(
          [...model].filter(([, n]) => n > 0).map(([k]) => hashOf(JSON.parse(k))),
        );
        expect(counts.size).toBe(live.size);
      }),
      { numRuns: 300 },
    );
  });

  it('gives different hashes to 5-tuples that differ in one field', () => {
    const base = tupleHash(6, '10.0.0.1', '10.0.0.2', 40_000, 80);
    expect(tupleHash(17, '10.0.0.1', '10.0.0.2', 40_000, 80)).not.toBe(base);
    expect(tupleHash(6, '10.0.0.2', '10.0.0.1', 40_000, 80)).not.toBe(base);
    expect(tupleHash(6, '10.0.0.1', '10.0.0.2', 40_001, 80)).not.toBe(base);
    expect(tupleHash(6, '10.0.0.1', '10.0.0.2', 40_000, 81)).not.toBe(base);
    expect(base).toBe(base & 0x3fffffff);
  });
});
