import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConnNumbers, PO, RBR, START, WIDTH } from '../../src/flows/conn-numbers.js';
import { type TupleRef, TupleRefs } from '../../src/flows/tuple-refs.js';

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

describe('TupleRefs: connections per 5-tuple', () => {
  const tupleArb = fc.record({
    proto: fc.constantFrom(1, 6, 17),
    src: fc.constantFrom('10.0.0.1', '10.0.0.2', 'fd00::1'),
    dst: fc.constantFrom('10.0.0.3', '10.0.0.4', 'fd00::2'),
    sport: fc.constantFrom(-1, 80, 443, 50_000),
    dport: fc.constantFrom(-1, 80, 8080),
  });

  it('counts like a map keyed by the whole 5-tuple, through acquire and release', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), tupleArb), { maxLength: 200 }), (ops) => {
        const refs = new TupleRefs();
        const model = new Map<string, number>();
        const held = new Map<string, TupleRef[]>();
        for (const [release, t] of ops) {
          const key = JSON.stringify(t);
          if (release && (held.get(key)?.length ?? 0) > 0) {
            refs.release(held.get(key)!.pop()!);
            model.set(key, model.get(key)! - 1);
          } else {
            const r = refs.acquire(t.proto, t.src, t.dst, t.sport, t.dport);
            r.n++;
            held.set(key, [...(held.get(key) ?? []), r]);
            model.set(key, (model.get(key) ?? 0) + 1);
          }
        }
        for (const [key, list] of held) {
          const t = JSON.parse(key);
          const r = refs.acquire(t.proto, t.src, t.dst, t.sport, t.dport);
          // A live 5-tuple gives back its entry; a released one a fresh entry.
          expect(r.n).toBe(model.get(key));
          if (list.length > 0) expect(r).toBe(list[0]);
        }
      }),
      { numRuns: 300 },
    );
  });
});
