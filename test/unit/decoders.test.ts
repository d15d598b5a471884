import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ConntrackBatchHandler, decodeConntrackBatch } from '../../src/conntrack/decode.js';
import { buildDumpRequest } from '../../src/conntrack/request.js';
import type { ConntrackEvent } from '../../src/conntrack/types.js';
import { formatIPv6 } from '../../src/netlink/ip.js';
import { decodeNflogBatch } from '../../src/nflog/decode.js';
import { parseRulePrefix } from '../../src/nflog/prefix.js';
import { buildNflogBindRequests } from '../../src/nflog/request.js';
import type { NflogPacket } from '../../src/nflog/types.js';
import { DecodeError } from '../../src/util/errors.js';
import {
  attrBytes,
  be16,
  destroyMessage,
  nflogMessage,
  nfMessage,
  tupleAttr,
  u8,
} from '../helpers/netlink-bytes.js';

function decodeCt(buf: Uint8Array, fromDump = false) {
  const events: ConntrackEvent[] = [];
  const errors: DecodeError[] = [];
  const done: number[] = [];
  const acks: [number, number][] = [];
  const h: ConntrackBatchHandler = {
    event: (e) => events.push(e),
    error: (e) => errors.push(e),
    done: (s) => done.push(s),
    nlError: (s, e) => acks.push([s, e]),
  };
  decodeConntrackBatch(buf, h, { fromDump });
  return { events, errors, done, acks };
}

function decodeNf(buf: Uint8Array) {
  const packets: NflogPacket[] = [];
  const errors: DecodeError[] = [];
  decodeNflogBatch(buf, { packet: (p) => packets.push(p), error: (e) => errors.push(e) });
  return { packets, errors };
}

const destroy = destroyMessage({
  src: '10.244.1.2',
  dst: '10.244.1.3',
  sport: 40000,
  dport: 6379,
  id: 0xdeadbeef,
  packets: [6, 5],
  bytes: [1312, 20564],
});

describe('conntrack decoder', () => {
  it('decodes a DESTROY with tuples, counters, id, status and timestamps', () => {
    // nlmsghdr: len, type 0x0102 (CTNETLINK | IPCTNL_MSG_CT_DELETE), flags 0
    // nfgenmsg: AF_INET, v0, res_id 0; then CTA_TUPLE_ORIG, CTA_TUPLE_REPLY,
    // CTA_STATUS, CTA_COUNTERS_ORIG/REPLY (be64), CTA_ID, CTA_TIMESTAMP.
    const { events, errors } = decodeCt(destroy);
    expect(errors).toEqual([]);
    expect(events).toHaveLength(1);
    const ev = events[0]!;
    expect(ev.type).toBe('destroy');
    expect(ev.fromDump).toBe(false);
    expect([ev.orig.src, ev.orig.dst, ev.orig.sport, ev.orig.dport, ev.orig.proto]).toEqual([
      '10.244.1.2',
      '10.244.1.3',
      40000,
      6379,
      6,
    ]);
    expect([ev.reply?.src, ev.reply?.sport]).toEqual(['10.244.1.3', 6379]);
    expect(ev.countersOrig).toEqual({ packets: 6, bytes: 1312 });
    expect(ev.countersReply).toEqual({ packets: 5, bytes: 20564 });
    expect(ev.id).toBe(0xdeadbeef);
    expect(ev.status).toBe(0x18e);
    expect(ev.startNs).toBe(1_700_000_000_000_000_000n);
    expect(ev.stopNs).toBe(1_700_000_001_500_000_000n);
  });

  it('tells NEW (CREATE|EXCL) from UPDATE, and marks dump replies', () => {
    const attrs = [
      tupleAttr(1, { src: '1.2.3.4', dst: '5.6.7.8', proto: 17, sport: 1, dport: 53 }),
    ];
    const n = nfMessage({ type: 0x100, flags: 0x600, attrs });
    const u = nfMessage({ type: 0x100, flags: 0, attrs });
    expect(decodeCt(Buffer.concat([n, u])).events.map((e) => e.type)).toEqual(['new', 'update']);
    const d = decodeCt(nfMessage({ type: 0x100, flags: 0x2, attrs }), true).events[0]!;
    expect([d.type, d.fromDump]).toEqual(['update', true]);
  });

  it('decodes ICMP type, code and id', () => {
    const m = nfMessage({
      type: 0x100,
      flags: 0x600,
      attrs: [
        tupleAttr(1, {
          src: '10.0.0.1',
          dst: '10.0.0.2',
          proto: 1,
          icmp: { type: 8, code: 0, id: 4242 },
        }),
      ],
    });
    const ev = decodeCt(m).events[0]!;
    expect([
      ev.orig.proto,
      ev.orig.icmpType,
      ev.orig.icmpCode,
      ev.orig.icmpId,
      ev.orig.sport,
    ]).toEqual([1, 8, 0, 4242, 0]);
  });

  it('decodes IPv6 tuples and formats them per RFC 5952', () => {
    const src = Buffer.from('fd000000000000000000000000000001', 'hex');
    const dst = Buffer.from('20010db8000000000001000000000002', 'hex');
    const m = nfMessage({
      type: 0x100,
      flags: 0x600,
      family: 10,
      attrs: [
        {
          type: 1,
          value: [
            {
              type: 1,
              value: [
                { type: 3, value: src },
                { type: 4, value: dst },
              ],
            },
            {
              type: 2,
              value: [
                { type: 1, value: u8(6) },
                { type: 2, value: be16(1234) },
                { type: 3, value: be16(443) },
              ],
            },
          ],
        },
      ],
    });
    const ev = decodeCt(m).events[0]!;
    // Two zero runs of equal length: RFC 5952 shortens the first.
    expect([ev.orig.family, ev.orig.src, ev.orig.dst]).toEqual([6, 'fd00::1', '2001:db8::1:0:0:2']);
  });

  it('reports NLMSG_DONE and ACK/error messages of a dump', () => {
    const done = Buffer.alloc(20);
    done.writeUInt32LE(20, 0);
    done.writeUInt16LE(3, 4);
    done.writeUInt32LE(77, 8);
    const err = Buffer.alloc(36);
    err.writeUInt32LE(36, 0);
    err.writeUInt16LE(2, 4);
    err.writeInt32LE(-1, 16); // -EPERM
    err.writeUInt32LE(78, 16 + 4 + 8); // the request's seq
    const r = decodeCt(Buffer.concat([done, err]));
    expect(r.done).toEqual([77]);
    expect(r.acks).toEqual([[78, 1]]);
  });

  it('skips unknown attributes, so new kernels do not break old decoders', () => {
    const m = nfMessage({
      type: 0x100,
      flags: 0x600,
      attrs: [
        { type: 99, value: Buffer.from('future!!') },
        tupleAttr(1, { src: '1.1.1.1', dst: '2.2.2.2', proto: 6, sport: 1, dport: 2 }),
      ],
    });
    expect(decodeCt(m).events).toHaveLength(1);
  });

  describe('malformed messages get a typed error naming what is wrong', () => {
    it('a message without its original tuple', () => {
      const r = decodeCt(nfMessage({ type: 0x102, attrs: [{ type: 12, value: Buffer.alloc(4) }] }));
      expect(r.errors.map((e) => e.code)).toEqual(['ERR_CT_MISSING_TUPLE']);
    });
    it('an attribute length past the message', () => {
      const m = Buffer.from(destroy);
      m.writeUInt16LE(0x7fff, 20); // first attribute claims 32 KiB
      const r = decodeCt(m);
      expect(r.errors[0]?.code).toBe('ERR_ATTR_OVERRUN');
      expect(r.errors[0]).toBeInstanceOf(DecodeError);
    });
    it('a zero-length attribute', () => {
      const m = Buffer.from(destroy);
      m.writeUInt16LE(0, 20);
      expect(decodeCt(m).errors[0]?.code).toBe('ERR_ATTR_OVERRUN');
    });
    it('a value shorter than its type needs', () => {
      const m = nfMessage({
        type: 0x102,
        attrs: [
          tupleAttr(1, { src: '1.1.1.1', dst: '2.2.2.2', proto: 6, sport: 1, dport: 2 }),
          { type: 12, value: Buffer.alloc(2) },
        ],
      });
      expect(decodeCt(m).errors[0]?.code).toBe('ERR_ATTR_SHORT');
    });
    it('a message length past the buffer stops the batch', () => {
      const m = Buffer.concat([destroy, destroy]);
      m.writeUInt32LE(100_000, destroy.length);
      const r = decodeCt(m);
      expect(r.events).toHaveLength(1);
      expect(r.errors.map((e) => e.code)).toEqual(['ERR_NL_BAD_LENGTH']);
    });
    it('a wrong address family', () => {
      const m = Buffer.from(destroy);
      m[16] = 7;
      expect(decodeCt(m).errors[0]?.code).toBe('ERR_CT_FAMILY');
    });
    // The exact error at every level of the attribute walk: which attribute,
    // which length, which offset (20 is the first attribute after nlmsghdr +
    // nfgenmsg; each level of nesting adds its 4-byte header).
    const hdr = (len: number, type: number) => {
      const b = Buffer.alloc(8);
      b.writeUInt16LE(len, 0);
      b.writeUInt16LE(type, 2);
      return b;
    };
    const overrun = (where: string, type: number, len: number, offset: number) => ({
      code: 'ERR_ATTR_OVERRUN',
      message: `${where}: attribute ${type} length ${len} overruns its container at offset ${offset}`,
      context: { offset, attribute: where },
    });
    const short = (where: string, len: number, want: number, offset: number) => ({
      code: 'ERR_ATTR_SHORT',
      message: `${where}: value of ${len} bytes, expected ${want} at offset ${offset}`,
      context: { offset, attribute: where },
    });
    const firstAttrLength = (len: number) => {
      const m = Buffer.from(destroy);
      m.writeUInt16LE(len, 20);
      return m;
    };
    const ct = (attrs: Parameters<typeof nfMessage>[0]['attrs']) =>
      nfMessage({ type: 0x102, attrs });
    it.each([
      ['message', firstAttrLength(0x7fff), overrun('ctnetlink', 1, 0x7fff, 20)],
      ['message, zero length', firstAttrLength(0), overrun('ctnetlink', 1, 0, 20)],
      ['tuple', ct([{ type: 1, value: hdr(100, 1) }]), overrun('CTA_TUPLE_ORIG', 1, 100, 24)],
      [
        'tuple ip',
        ct([{ type: 2, value: [{ type: 1, value: hdr(2, 3) }] }]),
        overrun('CTA_TUPLE_IP', 3, 2, 28),
      ],
      [
        'tuple proto',
        ct([{ type: 1, value: [{ type: 2, value: hdr(9, 0x4003) }] }]),
        overrun('CTA_TUPLE_PROTO', 3, 9, 28),
      ],
      ['counters', ct([{ type: 10, value: hdr(50, 2) }]), overrun('CTA_COUNTERS_REPLY', 2, 50, 24)],
      ['protoinfo', ct([{ type: 4, value: hdr(50, 1) }]), overrun('CTA_PROTOINFO', 1, 50, 24)],
      [
        'protoinfo tcp',
        ct([{ type: 4, value: [{ type: 1, value: hdr(3, 1) }] }]),
        overrun('CTA_PROTOINFO_TCP', 1, 3, 28),
      ],
      ['timestamp', ct([{ type: 20, value: hdr(0, 2) }]), overrun('CTA_TIMESTAMP', 2, 0, 24)],
      [
        'short counter',
        ct([{ type: 9, value: [{ type: 1, value: Buffer.alloc(4) }] }]),
        short('CTA_COUNTERS_ORIG.PACKETS', 4, 8, 24),
      ],
      [
        'short 32-bit counter',
        ct([{ type: 9, value: [{ type: 4, value: Buffer.alloc(2) }] }]),
        short('CTA_COUNTERS_ORIG.BYTES32', 2, 4, 24),
      ],
      [
        'short stop time',
        ct([{ type: 20, value: [{ type: 2, value: Buffer.alloc(7) }] }]),
        short('CTA_TIMESTAMP_STOP', 7, 8, 24),
      ],
      ['short zone', ct([{ type: 18, value: u8(1) }]), short('CTA_ZONE', 1, 2, 20)],
      [
        'short IPv6 source',
        ct([{ type: 1, value: [{ type: 1, value: [{ type: 3, value: Buffer.alloc(12) }] }] }]),
        short('CTA_IP_V6_SRC', 12, 16, 28),
      ],
      [
        'short ICMPv6 id',
        ct([{ type: 1, value: [{ type: 2, value: [{ type: 7, value: u8(1) }] }] }]),
        short('CTA_PROTO_ICMP_ID', 1, 2, 28),
      ],
    ])('names the attribute, length and offset: %s', (_, m, want) => {
      const [err] = decodeCt(m).errors;
      expect(err).toBeInstanceOf(DecodeError);
      expect({ code: err?.code, message: err?.message, context: err?.context }).toEqual(want);
    });
    it('a tuple without addresses', () => {
      const m = nfMessage({
        type: 0x102,
        attrs: [{ type: 1, value: [{ type: 2, value: [{ type: 1, value: u8(6) }] }] }],
      });
      expect(decodeCt(m).errors[0]?.code).toBe('ERR_CT_BAD_TUPLE');
    });
  });
});

describe('NFLOG decoder', () => {
  it('decodes group, prefix, verdict, 5-tuple, IP length and timestamp', () => {
    const m = nflogMessage({
      group: 1,
      prefix: 'DPI|default.default-deny',
      src: '10.244.1.2',
      dst: '10.244.1.3',
      proto: 17,
      sport: 5000,
      dport: 53,
      totalLength: 48,
    });
    const { packets, errors } = decodeNf(m);
    expect(errors).toEqual([]);
    expect(packets[0]).toMatchObject({
      group: 1,
      prefix: 'DPI|default.default-deny',
      verdict: {
        action: 'deny',
        owner: 'policy',
        direction: 'ingress',
        ruleIndex: undefined,
        policyName: 'default.default-deny',
      },
      family: 4,
      proto: 17,
      src: '10.244.1.2',
      dst: '10.244.1.3',
      sport: 5000,
      dport: 53,
      bytes: 48,
      timestampMs: 1_700_000_000_250,
      indev: 7,
    });
  });

  it('tells prefixes and hardware addresses apart by their bytes (more of them than it remembers)', () => {
    // The decoder remembers the last 16 prefixes and hardware addresses it
    // built text for; 20 of each, same lengths, each seen three times.
    const prefixes = Array.from({ length: 20 }, (_, i) => `DPE${String(i).padStart(2, '0')}|t.p`);
    const macs = Array.from({ length: 20 }, (_, i) => Buffer.from([2, 0, 0, 0, 0, i]));
    const ip = Buffer.from('45000030000000004011000001020304050607080001000200000000', 'hex');
    const msgs: Buffer[] = [];
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 20; i++) {
        msgs.push(
          nfMessage({
            type: 0x400,
            resId: 2,
            attrs: [
              { type: 10, value: Buffer.from(`${prefixes[i]}\0`, 'latin1') },
              {
                type: 8,
                value: Buffer.concat([be16(6), Buffer.alloc(2), macs[i]!, Buffer.alloc(2)]),
              },
              { type: 9, value: ip },
            ],
          }),
        );
      }
    }
    const batch = Buffer.concat(msgs);
    const { packets, errors } = decodeNf(batch);
    batch.fill(0); // what was decoded does not change with the buffer
    expect(errors).toEqual([]);
    expect(packets.map((p) => [p.prefix, p.verdict?.ruleIndex, p.hwaddr])).toEqual(
      [0, 1, 2].flatMap(() =>
        prefixes.map((pr, i) => [pr, i, `02:00:00:00:00:${i.toString(16).padStart(2, '0')}`]),
      ),
    );
  });

  it('any prefix decodes to its text up to the NUL and the verdict parseRulePrefix gives (fuzz)', () => {
    fc.assert(
      fc.property(
        fc.string({
          unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)),
          maxLength: 40,
        }),
        (prefix) => {
          const m = nflogMessage({
            group: 1,
            prefix,
            src: '10.0.0.1',
            dst: '10.0.0.2',
            proto: 6,
            sport: 1,
            dport: 2,
            totalLength: 40,
          });
          const { packets, errors } = decodeNf(m);
          expect(errors).toEqual([]);
          const text = prefix.split('\0')[0]!;
          expect(packets[0]?.prefix).toBe(text);
          expect(packets[0]?.verdict).toEqual(parseRulePrefix(text));
        },
      ),
      { numRuns: 100_000 },
    );
  });

  it('a packet without payload is an error naming the attribute', () => {
    const m = nfMessage({
      type: 0x400,
      resId: 1,
      attrs: [{ type: 10, value: Buffer.from('x\0') }],
    });
    expect(decodeNf(m).errors[0]?.code).toBe('ERR_NFLOG_NO_PAYLOAD');
  });

  it('an attribute length past the message names the attribute, length and offset', () => {
    const m = nfMessage({
      type: 0x400,
      resId: 1,
      attrs: [
        { type: 10, value: Buffer.from('x\0') },
        { type: 9, value: Buffer.alloc(20) },
      ],
    });
    m.writeUInt16LE(300, 28);
    const [err] = decodeNf(m).errors;
    expect(err).toBeInstanceOf(DecodeError);
    expect({ code: err?.code, message: err?.message, context: err?.context }).toEqual({
      code: 'ERR_ATTR_OVERRUN',
      message: 'NFLOG attribute 9 length 300 overruns the message',
      context: { offset: 28, attribute: 9 },
    });
  });

  it('a payload that is not IPv4 or IPv6 is an error', () => {
    const m = nfMessage({
      type: 0x400,
      resId: 1,
      attrs: [{ type: 9, value: Buffer.from([0x55, 0, 0, 0]) }],
    });
    expect(decodeNf(m).errors[0]?.code).toBe('ERR_NFLOG_BAD_PAYLOAD');
  });
});

describe('rule prefixes (AODIII|tier.policy)', () => {
  it.each([
    [
      'API0|default.allow-frontend',
      {
        action: 'allow',
        owner: 'policy',
        direction: 'ingress',
        ruleIndex: 0,
        policyName: 'default.allow-frontend',
      },
    ],
    [
      'APE12|security.egress-dns',
      {
        action: 'allow',
        owner: 'policy',
        direction: 'egress',
        ruleIndex: 12,
        policyName: 'security.egress-dns',
      },
    ],
    [
      'DPI|default.default-deny',
      {
        action: 'deny',
        owner: 'policy',
        direction: 'ingress',
        ruleIndex: undefined,
        policyName: 'default.default-deny',
      },
    ],
    [
      'PRE3|kns.prod',
      {
        action: 'pass',
        owner: 'profile',
        direction: 'egress',
        ruleIndex: 3,
        policyName: 'kns.prod',
      },
    ],
  ])('%s', (prefix, expected) => {
    expect(parseRulePrefix(prefix)).toMatchObject({ ...expected, prefix });
  });
  it.each([
    '',
    'DROP',
    'XPI|a',
    'DXI|a',
    'DPX|a',
    'DPIx|a',
    'DPI|',
    'DPI1',
    'DPI|two words',
    'DPI1|a|b',
  ])('rejects %j', (prefix) => {
    expect(parseRulePrefix(prefix)).toBeUndefined();
  });
});

describe('requests', () => {
  it('builds the conntrack dump request the kernel expects', () => {
    // len 20, type 0x0101 (CT_GET), flags REQUEST|DUMP (0x301), seq 9, AF_UNSPEC
    expect(buildDumpRequest(9).toString('hex')).toBe('1400000001010103090000000000000000000000');
  });
  it('binds an NFLOG group with copy-packet mode, acked', () => {
    const [bind, mode] = buildNflogBindRequests(5, 100, { copyRange: 96 });
    expect(bind!.readUInt16BE(18)).toBe(5); // res_id = group
    expect(bind!.readUInt16LE(6)).toBe(0x5); // REQUEST|ACK
    expect(bind!.subarray(20).toString('hex')).toBe('0500010001000000'); // NFULA_CFG_CMD bind
    expect(mode!.readUInt32BE(24)).toBe(96); // copy range
    expect(mode![28]).toBe(2); // NFULNL_COPY_PACKET
  });
});

describe('IPv6 text', () => {
  it.each([
    ['00000000000000000000000000000001', '::1'],
    ['20010db8000000000000000000000000', '2001:db8::'],
    ['20010db8000100000001000100010001', '2001:db8:1:0:1:1:1:1'],
    ['00000000000000000000ffff0a000001', '::ffff:10.0.0.1'],
    ['fd00000000000000000000000ec20254', 'fd00::ec2:254'],
  ])('%s → %s', (hex, text) => {
    expect(formatIPv6(Buffer.from(hex, 'hex'), 0)).toBe(text);
  });
});

describe('decoders on arbitrary bytes (fuzz)', () => {
  const NUM_RUNS = 100_000;
  const noThrowCt = (bytes: Uint8Array) => {
    const r = decodeCt(bytes);
    for (const e of r.errors) expect(e).toBeInstanceOf(DecodeError);
    // Touch the lazy fields: formatting must not read out of bounds either.
    for (const ev of r.events) void [ev.orig.src, ev.orig.dst, ev.reply?.src];
  };
  const noThrowNf = (bytes: Uint8Array) => {
    const r = decodeNf(bytes);
    for (const e of r.errors) expect(e).toBeInstanceOf(DecodeError);
  };

  it('conntrack: random bytes never throw, hang or read out of bounds', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 96 }), noThrowCt), { numRuns: NUM_RUNS });
  });

  it('conntrack: mutations of a real-format DESTROY (bit flips, truncation, length corruption)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(destroy.length - 1), fc.integer({ min: 0, max: 255 })), {
          maxLength: 4,
        }),
        fc.nat(destroy.length),
        (flips, cut) => {
          const m = Buffer.from(destroy);
          for (const [i, v] of flips) m[i] = v;
          noThrowCt(m.subarray(0, cut));
          noThrowCt(m);
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });

  it('NFLOG: random bytes and mutations of a real-format packet never throw', () => {
    const real = nflogMessage({
      group: 2,
      prefix: 'APE1|a.b',
      src: '1.2.3.4',
      dst: '5.6.7.8',
      proto: 6,
      sport: 1,
      dport: 2,
      totalLength: 60,
    });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 96 }), noThrowNf), { numRuns: NUM_RUNS });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(real.length - 1), fc.integer({ min: 0, max: 255 })), {
          maxLength: 4,
        }),
        (flips) => {
          const m = Buffer.from(real);
          for (const [i, v] of flips) m[i] = v;
          noThrowNf(m);
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });

  it('deeply nested and looping-looking attributes terminate', () => {
    // Nested attributes 1000 deep: the decoder's depth is fixed, so it walks none of them.
    let inner = Buffer.from(attrBytes({ type: 1, value: Buffer.alloc(4) }));
    for (let i = 0; i < 1000 && inner.length < 60_000; i++)
      inner = Buffer.from(attrBytes({ type: 1, value: inner }));
    const m = nfMessage({ type: 0x100, flags: 0x600, attrs: [] });
    const whole = Buffer.concat([m, inner]);
    whole.writeUInt32LE(whole.length, 0);
    const r = decodeCt(whole);
    expect(r.events.length + r.errors.length).toBe(1);
  });
});
