/**
 * Builders for netlink messages in the kernel's layout, used to test the
 * decoders on exact bytes (and to check them against captured fixtures).
 */

export interface Attr {
  type: number;
  nested?: boolean;
  value: Buffer | Attr[];
}

export function attrBytes(a: Attr): Buffer {
  const value = Array.isArray(a.value) ? Buffer.concat(a.value.map(attrBytes)) : a.value;
  const len = 4 + value.length;
  const padded = (len + 3) & ~3;
  const b = Buffer.alloc(padded);
  b.writeUInt16LE(len, 0);
  b.writeUInt16LE(a.type | (a.nested || Array.isArray(a.value) ? 0x8000 : 0), 2);
  value.copy(b, 4);
  return b;
}

export function nfMessage(opts: {
  type: number;
  flags?: number;
  seq?: number;
  family?: number;
  resId?: number;
  attrs: Attr[];
}): Buffer {
  const body = Buffer.concat(opts.attrs.map(attrBytes));
  const len = 16 + 4 + body.length;
  const b = Buffer.alloc(len);
  b.writeUInt32LE(len, 0);
  b.writeUInt16LE(opts.type, 4);
  b.writeUInt16LE(opts.flags ?? 0, 6);
  b.writeUInt32LE(opts.seq ?? 0, 8);
  b.writeUInt32LE(0, 12);
  b[16] = opts.family ?? 2;
  b[17] = 0;
  b.writeUInt16BE(opts.resId ?? 0, 18);
  body.copy(b, 20);
  return b;
}

export const u8 = (n: number) => Buffer.from([n]);
export const be16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};
export const be32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
export const be64 = (n: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(n);
  return b;
};
export const ip4 = (s: string) => Buffer.from(s.split('.').map(Number));

export function tupleAttr(
  type: number,
  t: {
    src: string;
    dst: string;
    proto: number;
    sport?: number;
    dport?: number;
    icmp?: { type: number; code: number; id: number };
  },
): Attr {
  const proto: Attr[] = [{ type: 1, value: u8(t.proto) }];
  if (t.icmp) {
    proto.push(
      { type: 4, value: be16(t.icmp.id) },
      { type: 5, value: u8(t.icmp.type) },
      { type: 6, value: u8(t.icmp.code) },
    );
  } else {
    proto.push({ type: 2, value: be16(t.sport ?? 0) }, { type: 3, value: be16(t.dport ?? 0) });
  }
  return {
    type,
    value: [
      {
        type: 1,
        value: [
          { type: 1, value: ip4(t.src) },
          { type: 2, value: ip4(t.dst) },
        ],
      },
      { type: 2, value: proto },
    ],
  };
}

/** A ctnetlink DESTROY with counters, as the kernel sends it with acct and timestamps on. */
export function destroyMessage(o: {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  id: number;
  packets: [number, number];
  bytes: [number, number];
}): Buffer {
  return nfMessage({
    type: 0x102,
    attrs: [
      tupleAttr(1, { src: o.src, dst: o.dst, proto: 6, sport: o.sport, dport: o.dport }),
      tupleAttr(2, { src: o.dst, dst: o.src, proto: 6, sport: o.dport, dport: o.sport }),
      { type: 3, value: be32(0x18e) },
      {
        type: 9,
        value: [
          { type: 1, value: be64(BigInt(o.packets[0])) },
          { type: 2, value: be64(BigInt(o.bytes[0])) },
        ],
      },
      {
        type: 10,
        value: [
          { type: 1, value: be64(BigInt(o.packets[1])) },
          { type: 2, value: be64(BigInt(o.bytes[1])) },
        ],
      },
      { type: 12, value: be32(o.id) },
      {
        type: 20,
        value: [
          { type: 1, value: be64(1_700_000_000_000_000_000n) },
          { type: 2, value: be64(1_700_000_001_500_000_000n) },
        ],
      },
    ],
  });
}

/** An NFLOG packet message carrying an IPv4 header + 4 bytes of L4 (ports). */
export function nflogMessage(o: {
  group: number;
  prefix: string;
  src: string;
  dst: string;
  proto: number;
  sport: number;
  dport: number;
  totalLength: number;
}): Buffer {
  const ip = Buffer.alloc(24);
  ip[0] = 0x45;
  ip.writeUInt16BE(o.totalLength, 2);
  ip[8] = 64;
  ip[9] = o.proto;
  ip4(o.src).copy(ip, 12);
  ip4(o.dst).copy(ip, 16);
  ip.writeUInt16BE(o.sport, 20);
  ip.writeUInt16BE(o.dport, 22);
  return nfMessage({
    type: 0x400,
    family: 2,
    resId: o.group,
    attrs: [
      { type: 1, value: Buffer.from([0x08, 0x00, 3, 0]) },
      { type: 10, value: Buffer.from(`${o.prefix}\0`, 'latin1') },
      { type: 3, value: Buffer.concat([be64(1_700_000_000n), be64(250_000n)]) },
      { type: 4, value: be32(7) },
      { type: 9, value: ip },
    ],
  });
}
