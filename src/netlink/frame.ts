/**
 * Netlink framing over one buffer, without copies: the 16-byte nlmsghdr
 * (host order: little-endian here), the 4-byte nfgenmsg of netfilter
 * messages, and the attribute layout (4-byte aligned, type mask 0x3fff,
 * netfilter values big-endian; each decoder walks its attributes inline, on
 * the hot path).
 *
 * Every read is preceded by a bounds check against the remaining length, and
 * a bad length stops the walk with a typed DecodeError rather than reading
 * past the buffer (libmnl's mnl_nlmsg_ok / mnl_attr_ok discipline). Reads are
 * byte arithmetic on the Uint8Array: several times faster in V8 than the
 * Buffer.readUInt* methods at millions of messages per second.
 */
import { DecodeError } from '../util/errors.js';

export const NLMSG_HDRLEN = 16;
export const NFGENMSG_LEN = 4;
export const NLA_HDRLEN = 4;
export const NLA_TYPE_MASK = 0x3fff;
export const NLA_F_NESTED = 0x8000;

export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;

export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;

export function align4(n: number): number {
  return (n + 3) & ~3;
}

export function u16le(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8);
}
export function u32le(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}
export function i32le(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24);
}
export function u16be(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}
export function u32be(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}
/** A big-endian u64 as a number (exact below 2^53: counters never get there). */
export function u64be(b: Uint8Array, o: number): number {
  return u32be(b, o) * 4294967296 + u32be(b, o + 4);
}
export function u64beBig(b: Uint8Array, o: number): bigint {
  return (BigInt(u32be(b, o)) << 32n) | BigInt(u32be(b, o + 4));
}

/** Called once per netlink message found in a buffer. */
export type MessageCallback = (
  buf: Uint8Array,
  offset: number,
  length: number,
  type: number,
  flags: number,
  seq: number,
) => void;

/** The error for a header whose length is impossible at `offset`. */
export function badMessageLength(buf: Uint8Array, offset: number, length: number): DecodeError {
  const remaining = buf.length - offset;
  return new DecodeError(
    'ERR_NL_BAD_LENGTH',
    `netlink message length ${length} at offset ${offset} does not fit`,
    { offset, length, remaining },
  );
}

/**
 * After the last whole message at `offset`: trailing zero padding is normal;
 * anything else is a truncated header, reported once.
 */
export function checkTrailing(
  buf: Uint8Array,
  offset: number,
  onError: (err: DecodeError) => void,
): void {
  const end = buf.length;
  for (let i = offset; i < end; i++) {
    if (buf[i] !== 0) {
      onError(
        new DecodeError('ERR_NL_TRUNCATED', `truncated netlink header at offset ${offset}`, {
          offset,
          remaining: end - offset,
        }),
      );
      return;
    }
  }
}

/**
 * Walks the netlink messages of a buffer (one or more datagrams, each padded
 * to 4 bytes). Returns the number of messages visited. A header whose length
 * is impossible stops the walk: nothing after it can be framed.
 *
 * The hot decoders (conntrack, NFLOG) inline this loop rather than pay a
 * callback per message; keep them in step with it.
 */
export function forEachMessage(
  buf: Uint8Array,
  visit: MessageCallback,
  onError: (err: DecodeError) => void,
): number {
  let offset = 0;
  let count = 0;
  const end = buf.length;
  while (end - offset >= NLMSG_HDRLEN) {
    const length = u32le(buf, offset);
    if (length < NLMSG_HDRLEN || length > end - offset) {
      onError(badMessageLength(buf, offset, length));
      return count;
    }
    const type = u16le(buf, offset + 4);
    const flags = u16le(buf, offset + 6);
    const seq = u32le(buf, offset + 8);
    count++;
    visit(buf, offset, length, type, flags, seq);
    offset += align4(length);
  }
  checkTrailing(buf, offset, onError);
  return count;
}

/** errno of an NLMSG_ERROR message (0 = ACK), or undefined when too short. */
export function errorCode(buf: Uint8Array, offset: number, length: number): number | undefined {
  if (length < NLMSG_HDRLEN + 4) return undefined;
  return -i32le(buf, offset + NLMSG_HDRLEN);
}

/** Sequence number of the request an NLMSG_ERROR answers (its embedded header). */
export function errorRequestSeq(
  buf: Uint8Array,
  offset: number,
  length: number,
): number | undefined {
  if (length < NLMSG_HDRLEN + 4 + NLMSG_HDRLEN) return undefined;
  return u32le(buf, offset + NLMSG_HDRLEN + 4 + 8);
}

/** Writes an nlmsghdr + nfgenmsg into `out` at 0; returns the header size (20). */
export function writeNfHeader(
  out: Uint8Array,
  totalLength: number,
  type: number,
  flags: number,
  seq: number,
  family: number,
  resId: number,
): number {
  const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
  v.setUint32(0, totalLength, true);
  v.setUint16(4, type, true);
  v.setUint16(6, flags, true);
  v.setUint32(8, seq, true);
  v.setUint32(12, 0, true); // pid 0: the kernel fills in ours
  out[16] = family;
  out[17] = 0; // NFNETLINK_V0
  v.setUint16(18, resId, false); // res_id is big-endian
  return NLMSG_HDRLEN + NFGENMSG_LEN;
}

/** Reports an NLMSG_ERROR (an ACK when errno is 0) to a batch handler. */
export function reportNlError(
  buf: Uint8Array,
  offset: number,
  length: number,
  out: { error(err: DecodeError): void; nlError?(seq: number, errno: number): void },
): void {
  const errno = errorCode(buf, offset, length);
  if (errno === undefined) {
    out.error(new DecodeError('ERR_NL_SHORT_ERROR', `NLMSG_ERROR of ${length} bytes`, { offset }));
  } else {
    out.nlError?.(errorRequestSeq(buf, offset, length) ?? u32le(buf, offset + 8), errno);
  }
}
