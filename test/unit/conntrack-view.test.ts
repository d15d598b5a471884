/**
 * The reused-view conntrack decoder (decodeConntrackBatchView): the agent's
 * hot path. It must decode exactly what decodeConntrackBatch decodes, report
 * the same errors, and honour its contract: the view is overwritten by the
 * next message, `copy()` is stable.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type ConntrackEventView,
  decodeConntrackBatch,
  decodeConntrackBatchView,
} from '../../src/conntrack/decode.js';
import type { ConntrackEvent, ConntrackTuple } from '../../src/conntrack/types.js';
import type { Endpoint, EndpointLookup } from '../../src/endpoints/types.js';
import { AggregationKind } from '../../src/flows/aggregation.js';
import { FlowTable } from '../../src/flows/flow-table.js';
import { DecodeError } from '../../src/util/errors.js';
import { feedEvents } from '../harness/conntrack-events.js';
import { be16, be64, destroyMessage, nfMessage, tupleAttr, u8 } from '../helpers/netlink-bytes.js';

const fixture = (name: string) =>
  readFileSync(new URL(`../fixtures/netlink/${name}`, import.meta.url));

/** Every field of the ConntrackEvent interface, as plain values. */
function plainTuple(t: ConntrackTuple | undefined) {
  if (t === undefined) return undefined;
  return {
    family: t.family,
    proto: t.proto,
    src: t.src,
    dst: t.dst,
    sport: t.sport,
    dport: t.dport,
    icmpType: t.icmpType,
    icmpCode: t.icmpCode,
    icmpId: t.icmpId,
  };
}
function plain(e: ConntrackEvent) {
  return {
    type: e.type,
    fromDump: e.fromDump,
    orig: plainTuple(e.orig),
    reply: plainTuple(e.reply),
    id: e.id,
    zone: e.zone,
    mark: e.mark,
    status: e.status,
    tcpState: e.tcpState,
    countersOrig: e.countersOrig === undefined ? undefined : { ...e.countersOrig },
    countersReply: e.countersReply === undefined ? undefined : { ...e.countersReply },
    startNs: e.startNs,
    stopNs: e.stopNs,
    startMs: e.startMs,
    stopMs: e.stopMs,
  };
}

/** Both decoders on the same bytes: events as plain values (the view's read inside its callback), error codes. */
function both(buf: Uint8Array, fromDump = false) {
  const copied = { events: [] as ReturnType<typeof plain>[], errors: [] as string[] };
  decodeConntrackBatch(
    buf,
    {
      event: (e) => copied.events.push(plain(e)),
      error: (e) => {
        expect(e).toBeInstanceOf(DecodeError);
        copied.errors.push(e.code);
      },
    },
    { fromDump },
  );
  const viewed = { events: [] as ReturnType<typeof plain>[], errors: [] as string[] };
  const copies: ConntrackEvent[] = [];
  decodeConntrackBatchView(
    buf,
    {
      event: (v) => {
        viewed.events.push(plain(v));
        copies.push(v.copy());
      },
      error: (e) => {
        expect(e).toBeInstanceOf(DecodeError);
        viewed.errors.push(e.code);
      },
    },
    { fromDump },
  );
  return { copied, viewed, copies: copies.map(plain) };
}

describe('conntrack view decoder', () => {
  it('decodes the recorded kernel events and dump exactly as the copying decoder', () => {
    for (const [name, fromDump] of [
      ['events.bin', false],
      ['dump.bin', true],
    ] as const) {
      const r = both(fixture(name), fromDump);
      expect(r.copied.errors).toEqual([]);
      expect(r.copied.events.length).toBeGreaterThan(2);
      expect(r.viewed).toEqual(r.copied);
      expect(r.copies).toEqual(r.copied.events);
    }
  });

  it('hands the same object for every message, and copy() stays as it was', () => {
    const a = destroyMessage({
      src: '10.0.0.1',
      dst: '10.0.0.2',
      sport: 1000,
      dport: 80,
      id: 1,
      packets: [1, 2],
      bytes: [100, 200],
    });
    const b = destroyMessage({
      src: '10.0.0.3',
      dst: '10.0.0.4',
      sport: 2000,
      dport: 443,
      id: 2,
      packets: [3, 4],
      bytes: [300, 400],
    });
    const buf = Buffer.concat([a, b]);
    const views: ConntrackEventView[] = [];
    const copies: ConntrackEvent[] = [];
    decodeConntrackBatchView(buf, {
      event: (v) => {
        views.push(v);
        copies.push(v.copy());
      },
      error: (e) => {
        throw e;
      },
    });
    expect(views).toHaveLength(2);
    expect(views[0]).toBe(views[1]); // reused: keeping a view keeps only the last message
    buf.fill(0); // copies do not refer to the buffer
    expect(copies.map((c) => [c.orig.src, c.orig.dport, c.id, c.countersReply?.bytes])).toEqual([
      ['10.0.0.1', 80, 1, 200],
      ['10.0.0.3', 443, 2, 400],
    ]);
    expect(copies[0]!.stopNs).toBe(1_700_000_001_500_000_000n);
    expect(copies[0]!.stopMs).toBe(1_700_000_001_500);
  });

  it('copies IPv6 addresses by value', () => {
    const src = Buffer.from('fd000000000000000000000000000001', 'hex');
    const dst = Buffer.from('20010db8000000000001000000000002', 'hex');
    const ip = {
      type: 1,
      value: [
        { type: 3, value: src },
        { type: 4, value: dst },
      ],
    };
    const proto = {
      type: 2,
      value: [
        { type: 1, value: u8(17) },
        { type: 2, value: be16(5353) },
        { type: 3, value: be16(53) },
      ],
    };
    const m = nfMessage({
      type: 0x100,
      flags: 0x600,
      family: 10,
      attrs: [{ type: 1, value: [ip, proto] }],
    });
    let kept: ConntrackEvent | undefined;
    decodeConntrackBatchView(m, {
      event: (v) => {
        kept = v.copy();
      },
      error: (e) => {
        throw e;
      },
    });
    m.fill(0xff);
    expect([kept?.orig.family, kept?.orig.src, kept?.orig.dst]).toEqual([
      6,
      'fd00::1',
      '2001:db8::1:0:0:2',
    ]);
  });

  it('a flow table fed views inside the callback reports what it reports when fed copies', () => {
    const endpoints: EndpointLookup = {
      lookup: (ip: string): Endpoint => ({
        type: 'wep',
        namespace: 'default',
        name: ip,
        aggregatedName: ip,
        labels: {},
        local: true,
      }),
    };
    const make = () =>
      new FlowTable({
        endpoints,
        aggregationKindForAllowed: AggregationKind.Full,
        aggregationKindForDenied: AggregationKind.Full,
        includeLabels: false,
        ingressGroup: 1,
        egressGroup: 2,
      });
    const bytes = Buffer.concat([fixture('events.bin'), fixture('events.bin')]);
    const viaViews = make();
    decodeConntrackBatchView(bytes, {
      event: (v) => viaViews.onConntrackEvent(v, 1_000),
      error: (e) => {
        throw e;
      },
    });
    const viaCopies = make();
    const events: ConntrackEvent[] = [];
    decodeConntrackBatch(bytes, {
      event: (e) => events.push(e),
      error: (e) => {
        throw e;
      },
    });
    feedEvents(viaCopies, events, 1_000);
    const records = viaCopies.flush(0, 2_000_000_000_000);
    expect(records.length).toBeGreaterThan(0);
    expect(viaViews.flush(0, 2_000_000_000_000)).toEqual(records);
  });
});

describe('conntrack timestamps', () => {
  it('startMs/stopMs are startNs/stopNs in whole ms, for any be64 (fuzz)', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        (start, stop) => {
          const m = nfMessage({
            type: 0x102,
            attrs: [
              tupleAttr(1, { src: '10.0.0.1', dst: '10.0.0.2', proto: 6, sport: 1, dport: 2 }),
              {
                type: 20,
                value: [
                  { type: 1, value: be64(start) },
                  { type: 2, value: be64(stop) },
                ],
              },
            ],
          });
          let seen: ConntrackEvent | undefined;
          decodeConntrackBatchView(m, {
            event: (v) => {
              seen = v.copy();
              expect([v.startNs, v.stopNs]).toEqual([start, stop]);
              expect([v.startMs, v.stopMs]).toEqual([
                Number(start / 1_000_000n),
                Number(stop / 1_000_000n),
              ]);
            },
            error: (e) => {
              throw e;
            },
          });
          expect([seen?.startMs, seen?.stopMs]).toEqual([
            Number(start / 1_000_000n),
            Number(stop / 1_000_000n),
          ]);
        },
      ),
      { numRuns: 100_000 },
    );
  });
});

describe('conntrack view decoder on arbitrary bytes (fuzz)', () => {
  const NUM_RUNS = 100_000;
  const destroy = destroyMessage({
    src: '10.244.1.2',
    dst: '10.244.1.3',
    sport: 40000,
    dport: 6379,
    id: 0xdeadbeef,
    packets: [6, 5],
    bytes: [1312, 20564],
  });
  const same = (bytes: Uint8Array) => {
    const r = both(bytes);
    expect(r.viewed).toEqual(r.copied);
    expect(r.copies).toEqual(r.copied.events);
  };

  it('random bytes: never throws, same events and errors as the copying decoder', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 96 }), same), { numRuns: NUM_RUNS });
  });

  it('mutations of a real-format DESTROY, two in a batch: same as the copying decoder', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(2 * destroy.length - 1), fc.integer({ min: 0, max: 255 })), {
          maxLength: 4,
        }),
        fc.nat(2 * destroy.length),
        (flips, cut) => {
          // Two messages: a bad first one must not leave state in the reused view.
          const m = Buffer.concat([destroy, destroy]);
          for (const [i, v] of flips) m[i] = v;
          same(m.subarray(0, cut));
          same(m);
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });
});
