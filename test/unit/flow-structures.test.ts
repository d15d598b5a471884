import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ConntrackEvent } from '../../src/conntrack/types.js';
import { ConnStore, type NewSlot } from '../../src/flows/conn-store.js';
import { Phase } from '../../src/flows/connection-state.js';
import { HashCells, mix } from '../../src/flows/hash-cells.js';
import { ipv4Number, TupleCounts, tupleHash, tupleHash4 } from '../../src/flows/tuple-counts.js';

describe('HashCells: (hash, value) cells, open addressing', () => {
  // A small table wraps around its end and grows; few hashes make long runs.
  it('enumerates exactly the values stored under each hash, through inserts, removals and growth; an insert names a value already under its hash', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.boolean(),
            fc.constantFrom(0, 1, 2, 3, 7, 8, 15, -1, -16, 0x7fff_ffff, -0x8000_0000),
          ),
          { maxLength: 300 },
        ),
        (ops) => {
          const cells = new HashCells(2);
          const model = new Map<number, number[]>();
          let next = 1;
          const valuesOf = (h: number) => {
            const out: number[] = [];
            for (let p = cells.first(h); p >= 0; p = cells.next(p, h)) out.push(cells.value(p));
            return out.sort((a, b) => a - b);
          };
          for (const [remove, h] of ops) {
            const held = model.get(h) ?? [];
            if (remove && held.length > 0) {
              const v = held.shift()!;
              expect(cells.remove(h, v)).toBe(true);
              expect(cells.remove(h, next)).toBe(false); // a value never stored
            } else {
              const same = cells.insert(h, next);
              // It names a value already under h whenever there is one.
              if (held.length === 0) expect(same).toBe(0);
              else expect(held).toContain(same);
              held.push(next++);
            }
            model.set(h, held);
          }
          for (const [h, held] of model)
            expect(valuesOf(h)).toEqual([...held].sort((a, b) => a - b));
          expect(cells.size).toBe([...model.values()].reduce((n, v) => n + v.length, 0));
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('ConnStore: connections and tombstones in slots, found by identity', () => {
  // Few ids and addresses: many identities share an index home, so lookups walk
  // runs and removals shift cells back; both address forms are exercised (a
  // decoder view gives IPv4 as numbers, parsed snapshot keys give text only).
  const ipText = (n: number) => `10.0.0.${n}`;
  const identityArb = fc.record({
    id: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.constantFrom(0x8000_0001, 0xffff_ffff)),
    src: fc.integer({ min: 1, max: 3 }),
    dst: fc.integer({ min: 1, max: 3 }),
    sport: fc.constantFrom(1000, 2000),
    numbers: fc.boolean(),
  });
  type Identity = { id: number; src: number; dst: number; sport: number; numbers: boolean };
  const keyOf = (x: Identity) => `${x.id}|${x.src}|${x.dst}|${x.sport}`;
  const slotIdentity = (x: Identity, more: Partial<NewSlot> = {}): NewSlot => ({
    id: x.id,
    zone: 0,
    proto: 6,
    origSrc: ipText(x.src),
    origDst: ipText(x.dst),
    origSrc4: x.numbers ? (10 << 24) + x.src : -1,
    origDst4: x.numbers ? (10 << 24) + x.dst : -1,
    a: x.sport,
    b: 80,
    dst: ipText(x.dst),
    dst4: x.numbers ? (10 << 24) + x.dst : -1,
    dport: 80,
    tupleHash: 0,
    phase: Phase.Starting,
    startMs: 0,
    kernelStartMs: Number.NaN,
    gen: 0,
    ...more,
  });
  const eventOf = (x: Identity, numbers: boolean) =>
    ({
      id: x.id,
      zone: 0,
      orig: {
        family: 4,
        proto: 6,
        src: ipText(x.src),
        dst: ipText(x.dst),
        src4: numbers ? (10 << 24) + x.src : undefined,
        dst4: numbers ? (10 << 24) + x.dst : undefined,
        sport: x.sport,
        dport: 80,
      },
    }) as unknown as ConntrackEvent;

  it('finds every live entry by either address form and nothing else, through adds, removals and entombing', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('add', 'remove', 'entomb'), identityArb), {
          maxLength: 300,
        }),
        (ops) => {
          // Two slots to start with: the index wraps around its end and grows.
          const st = new ConnStore(2);
          const seen: Identity[] = [];
          // The model: identity -> slot, per kind (a connection and a tombstone may share one).
          const conns = new Map<string, number>();
          const tombs = new Map<string, number>();
          for (const [op, x] of ops) {
            const k = keyOf(x);
            seen.push(x);
            if (op === 'add' && !conns.has(k)) conns.set(k, st.add(slotIdentity(x)));
            else if (op === 'remove' && tombs.has(k)) {
              st.remove(tombs.get(k)!);
              tombs.delete(k);
            } else if (op === 'remove' && conns.has(k)) {
              st.remove(conns.get(k)!);
              conns.delete(k);
            } else if (op === 'entomb' && conns.has(k)) {
              // One tombstone per identity: an older one with it is replaced.
              st.entomb(conns.get(k)!, 1_000, 1, false);
              tombs.set(k, conns.get(k)!);
              conns.delete(k);
            }
          }
          for (const x of seen) {
            const k = keyOf(x);
            for (const numbers of [true, false]) {
              const ev = eventOf(x, numbers);
              expect(st.find(ev, false)).toBe(conns.get(k) ?? -1);
              expect(st.find(ev, true)).toBe(tombs.get(k) ?? -1);
            }
          }
          // A slot's twin: the other kind's entry with its identity (never itself).
          for (const [k, slot] of conns) expect(st.findTwin(slot, true)).toBe(tombs.get(k) ?? -1);
          for (const [k, slot] of tombs) expect(st.findTwin(slot, false)).toBe(conns.get(k) ?? -1);
          for (const slot of [...conns.values(), ...tombs.values()]) {
            expect(st.findTwin(slot, st.isTomb(slot))).toBe(-1);
          }
          expect([st.size, st.tombs]).toEqual([conns.size, tombs.size]);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps one tombstone per identity: entombing or restoring one replaces the older', () => {
    const st = new ConnStore();
    const x = { id: 7, src: 1, dst: 2, sport: 9, numbers: true };
    const first = st.add(slotIdentity(x));
    st.entomb(first, 1_000, 1, false);
    // The same identity again, completed: as text only (a restored snapshot key) and as numbers.
    const restored = st.restoreTomb(
      slotIdentity({ ...x, numbers: false }, { phase: Phase.Ended }),
      2_000,
      { po: 0, bo: 0, pr: 0, br: 0 },
      Number.NaN,
    );
    expect([st.tombs, st.isLive(first)]).toEqual([1, false]);
    const again = st.add(slotIdentity(x));
    st.entomb(again, 3_000, 2, false);
    expect([st.tombs, st.isLive(restored)]).toEqual([1, false]);
    expect(st.find(eventOf(x, true), true)).toBe(again);
  });

  it('keeps one tombstone per identity whichever of two slots with one CTA_ID is entombed first', () => {
    for (const order of [
      [0, 1],
      [1, 0],
    ]) {
      const st = new ConnStore();
      const x = { id: 7, src: 1, dst: 2, sport: 9, numbers: true };
      // Slots that share a CTA_ID see each other only when the later one is indexed.
      const slots = [st.add(slotIdentity(x)), st.add(slotIdentity(x))];
      for (const k of order) st.entomb(slots[k]!, 1_000, 1, false);
      expect(st.tombs).toBe(1);
      expect(st.find(eventOf(x, true), true)).toBe(slots[order[1]!]);
    }
  });

  it("keeps the newest connection's tombstone whatever the order slots are entombed in", () => {
    // Only the newest of a reopened 5-tuple can still be in the kernel's table.
    for (const order of [
      [0, 1],
      [1, 0],
    ]) {
      const st = new ConnStore();
      const x = { id: 7, src: 1, dst: 2, sport: 9, numbers: true };
      const slots = [
        st.add(slotIdentity(x, { kernelStartMs: 100 })),
        st.add(slotIdentity(x, { kernelStartMs: 200 })),
      ];
      for (const k of order) st.entomb(slots[k]!, 1_000, 1, false);
      expect(st.tombs).toBe(1);
      expect(st.find(eventOf(x, true), true)).toBe(slots[1]);
      expect(st.isLive(slots[0]!)).toBe(false);
    }
  });

  it('a removal in a run that wraps around the index end moves the wrapped cells back', () => {
    // 1,024 slots: 2,048 cells. Three ids whose home is the last cell fill it and the first two.
    const ids: number[] = [];
    for (let id = 0; ids.length < 3; id++) if ((mix(id) & 2047) === 2047) ids.push(id);
    const x = (id: number) => ({ id, src: 1, dst: 2, sport: 9, numbers: false });
    const st = new ConnStore(1024);
    const slots = ids.map((id) => st.add(slotIdentity(x(id))));
    st.remove(slots[1]!);
    expect(ids.map((id) => st.find(eventOf(x(id), false), false))).toEqual([
      slots[0],
      -1,
      slots[2],
    ]);
    st.remove(slots[0]!);
    expect(st.find(eventOf(x(ids[2]!), false), false)).toBe(slots[2]);
  });

  const manyAt = (i: number) => ({
    id: i * 2_654_435_761,
    src: 1 + (i % 200),
    dst: 7,
    sport: i % 60_000,
    numbers: true,
  });

  it('keeps every slot’s numbers and its index while growing, and hands out a freed slot zeroed', () => {
    const st = new ConnStore();
    const slots: number[] = [];
    for (let i = 0; i < 5_000; i++) {
      const x = manyAt(i);
      const s = st.add(slotIdentity(x, { startMs: 1_700_000_000_000 + i }));
      st.raise(s, { countersOrig: { packets: i, bytes: 0 } } as unknown as ConntrackEvent);
      slots.push(s);
    }
    expect(new Set(slots).size).toBe(5_000);
    slots.forEach((s, i) => {
      expect(st.counters(s).po).toBe(i);
      expect(st.firstSeenMs(s)).toBe(1_700_000_000_000 + i);
      const x = manyAt(i);
      expect(st.find(eventOf(x, true), false)).toBe(s);
    });
    st.setReported(slots[7]!, { po: 0, bo: 0, pr: 0, br: 99 });
    st.remove(slots[7]!);
    const again = st.add(slotIdentity({ id: 3, src: 1, dst: 2, sport: 9, numbers: false }));
    expect(again).toBe(slots[7]);
    expect(st.reported(again).br).toBe(0);
    expect(st.size).toBe(5_000);
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

  it('hashes an IPv4 5-tuple the same from numbers (the decoder view) and from text', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff_ffff }),
        fc.integer({ min: 0, max: 0xffff_ffff }),
        fc.integer({ min: -1, max: 65_535 }),
        (src4, dst4, port) => {
          const text = (n: number) =>
            [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
          expect(ipv4Number(text(src4))).toBe(src4);
          expect(tupleHash(17, text(src4), text(dst4), port, 53)).toBe(
            tupleHash4(17, src4, dst4, port, 53),
          );
        },
      ),
    );
    for (const bad of ['fd00::1', '10.0.0', '10.0.0.256', '10.0.0.1.2', '1e1.0.0.1', '']) {
      expect(ipv4Number(bad)).toBe(-1);
    }
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
