import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EndpointCache } from '../../src/endpoints/cache.js';
import { EndpointByAddress, Ipv4TextCache } from '../../src/flows/ipv4-caches.js';

const text = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

describe('Ipv4TextCache', () => {
  it('answers only the address it holds; addresses sharing an entry take turns', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 0xffff_ffff }), { maxLength: 200 }), (ns) => {
        const cache = new Ipv4TextCache();
        for (const n of ns) {
          const hit = cache.get(n);
          if (hit !== undefined) expect(hit).toBe(text(n));
          else cache.set(n, text(n));
          expect(cache.get(n)).toBe(text(n));
        }
      }),
    );
    // 65,536 entries: more addresses than that must collide, and never answer for another.
    const cache = new Ipv4TextCache();
    for (let n = 0; n < 200_000; n++) cache.set(n, text(n));
    let held = 0;
    for (let n = 0; n < 200_000; n++) {
      const t = cache.get(n);
      if (t !== undefined) {
        expect(t).toBe(text(n));
        held++;
      }
    }
    expect(held).toBeLessThanOrEqual(65_536);
  });

  it('holds an address by its bits: u32 or int32 form, neighbours apart', () => {
    const cache = new Ipv4TextCache();
    for (let n = 0xc0a8_0000; n < 0xc0a8_0000 + 4 * 65_536; n += 4) {
      cache.set(n, text(n));
      // A u32 and its int32 bits (as read from an Int32Array) are one address.
      expect(cache.get(n | 0)).toBe(text(n));
      for (const d of [1, 2, 3]) expect(cache.get(n + d)).toBeUndefined();
    }
  });
});

describe('EndpointByAddress', () => {
  // Owner histories with IP reuse, deletions and the grace period; lookups at
  // any time (before, during and after owners) between changes.
  const ips = [0x0af4_0101, 0x0af4_0102, 0x0af4_0203];
  const op = fc.oneof(
    fc.record({
      kind: fc.constant('upsert' as const),
      pod: fc.integer({ min: 0, max: 4 }),
      ip: fc.constantFrom(...ips),
      local: fc.boolean(),
    }),
    fc.record({ kind: fc.constant('delete' as const), pod: fc.integer({ min: 0, max: 4 }) }),
    fc.record({ kind: fc.constant('prune' as const) }),
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('lookup' as const),
        ip: fc.constantFrom(...ips, 0x0808_0808),
        // At a change (and a millisecond either side: the spans' edges), or anywhere.
        change: fc.nat(),
        delta: fc.oneof(fc.constantFrom(-1, 0, 1), fc.integer({ min: -400_000, max: 400_000 })),
      }),
    },
  );

  it('answers exactly as the endpoint cache, through owner changes (its version)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(op, fc.integer({ min: 0, max: 200_000 })), {
          minLength: 30,
          maxLength: 150,
        }),
        (ops) => {
          const cache = new EndpointCache({ nodeName: 'n1', graceMs: 300_000 });
          const byAddress = new EndpointByAddress(cache);
          let now = 1_000_000;
          const changes = [now];
          for (const [o, step] of ops) {
            now += step;
            if (o.kind !== 'lookup') changes.push(now);
            if (o.kind === 'upsert') {
              cache.upsertPod(
                {
                  namespace: 'ns',
                  name: `pod-${o.pod}`,
                  ips: [text(o.ip)],
                  nodeName: o.local ? 'n1' : 'n2',
                },
                now,
              );
            } else if (o.kind === 'delete')
              cache.deletePod({ namespace: 'ns', name: `pod-${o.pod}` }, now);
            else if (o.kind === 'prune') cache.prune(now);
            else {
              const t = changes[o.change % changes.length]! + o.delta;
              expect(byAddress.lookup(o.ip, text(o.ip), t, cache.version)).toBe(
                cache.lookup(text(o.ip), t),
              );
            }
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it('holds an answer to the millisecond its owner changes, not past it', () => {
    const cache = new EndpointCache({ nodeName: 'n1', graceMs: 300_000 });
    const byAddress = new EndpointByAddress(cache);
    const ip = 0x0af4_0101;
    cache.upsertPod({ namespace: 'ns', name: 'old', ips: [text(ip)], nodeName: 'n1' }, 1_000);
    cache.upsertPod({ namespace: 'ns', name: 'new', ips: [text(ip)], nodeName: 'n1' }, 2_000);
    const at = (t: number) => byAddress.lookup(ip, text(ip), t, cache.version).name;
    // Each edge asked right after a time inside the other owner's span (its cached answer).
    expect([at(1_500), at(2_000), at(2_500), at(1_999), at(999), at(1_000)]).toEqual([
      'old',
      'new',
      'new',
      'old',
      'old',
      'old',
    ]);
  });

  it('holds an address by its bits: a u32 and its int32 form are one entry', () => {
    const cache = new EndpointCache({ nodeName: 'n1' });
    const ip = 0xc0a8_0001; // above 2^31: negative as read from an Int32Array
    cache.upsertPod({ namespace: 'ns', name: 'p', ips: [text(ip)], nodeName: 'n1' }, 0);
    let asked = 0;
    const byAddress = new EndpointByAddress({
      version: cache.version,
      lookup: (a, t) => cache.lookup(a, t),
      lookupSpan: (a, t, out) => {
        asked++;
        cache.lookupSpan(a, t, out);
      },
    });
    const names = [ip, ip | 0, ip].map((n) => byAddress.lookup(n, text(ip), 5, cache.version).name);
    expect([names, asked]).toEqual([['p', 'p', 'p'], 1]);
  });
});
