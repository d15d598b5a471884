/**
 * ctnetlink decoder: NEW / UPDATE / DESTROY events and dump replies into
 * typed ConntrackEvents.
 *
 * How the kind is told apart: IPCTNL_MSG_CT_DELETE is a DESTROY;
 * IPCTNL_MSG_CT_NEW with NLM_F_CREATE|NLM_F_EXCL is a NEW event, without them
 * an UPDATE. Dump replies are also IPCTNL_MSG_CT_NEW (with NLM_F_MULTI); the
 * caller says which socket the bytes came from (`fromDump`), because a dump
 * is requested on its own socket.
 *
 * Two entry points share one decoder:
 * - decodeConntrackBatch: a new event per message, which the handler may
 *   keep (dumps, tests, array consumers).
 * - decodeConntrackBatchView: one event object reused for every message of
 *   the batch (the agent's live path: no allocation per message). The
 *   contract, stated on ConntrackEventView: the view, its tuples and its
 *   counters objects are valid only during the `event` callback; a consumer
 *   that keeps an event beyond it keeps `ev.copy()`.
 *
 * Written for V8: one DataView per batch for the reads (bounds are checked
 * by hand before each, so none can fail), no per-message or per-attribute
 * closures, every value a number in a field of its own (IPv4 addresses as
 * one u32, IPv6 as four: never a view of the buffer, so nothing decoded
 * keeps the batch alive), and objects (address text, counters objects,
 * BigInt timestamps) built only when read. A malformed message is reported
 * through `out.error` with the attribute and offset and skipped; decoding
 * goes on with the next message. The nesting depth is fixed by the
 * structure (message → tuple → ip/proto), so no input can make it recurse.
 */

import {
  align4,
  badMessageLength,
  checkTrailing,
  NFGENMSG_LEN,
  NLA_TYPE_MASK,
  NLM_F_CREATE,
  NLM_F_DUMP_INTR,
  NLM_F_EXCL,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  reportNlError,
  u16le,
  u32le,
} from '../netlink/frame.js';
import { formatIPv4, formatIPv6 } from '../netlink/ip.js';
import { DecodeError } from '../util/errors.js';
import {
  AF_INET,
  AF_INET6,
  CT_MSG_DELETE,
  CT_MSG_NEW,
  CTA_COUNTERS_BYTES,
  CTA_COUNTERS_ORIG,
  CTA_COUNTERS_PACKETS,
  CTA_COUNTERS_REPLY,
  CTA_COUNTERS32_BYTES,
  CTA_COUNTERS32_PACKETS,
  CTA_ID,
  CTA_IP_V4_DST,
  CTA_IP_V4_SRC,
  CTA_IP_V6_DST,
  CTA_IP_V6_SRC,
  CTA_MARK,
  CTA_PROTO_DST_PORT,
  CTA_PROTO_ICMP_CODE,
  CTA_PROTO_ICMP_ID,
  CTA_PROTO_ICMP_TYPE,
  CTA_PROTO_ICMPV6_CODE,
  CTA_PROTO_ICMPV6_ID,
  CTA_PROTO_ICMPV6_TYPE,
  CTA_PROTO_NUM,
  CTA_PROTO_SRC_PORT,
  CTA_PROTOINFO,
  CTA_PROTOINFO_TCP,
  CTA_PROTOINFO_TCP_STATE,
  CTA_STATUS,
  CTA_TIMESTAMP,
  CTA_TIMESTAMP_START,
  CTA_TIMESTAMP_STOP,
  CTA_TUPLE_IP,
  CTA_TUPLE_ORIG,
  CTA_TUPLE_PROTO,
  CTA_TUPLE_REPLY,
  CTA_ZONE,
} from './constants.js';
import type {
  ConntrackCounters,
  ConntrackEvent,
  ConntrackEventType,
  ConntrackTuple,
  IpFamily,
} from './types.js';

/** What a batch decode reports to its caller. */
export interface ConntrackBatchHandler {
  /** A new event per message: the handler may keep it. */
  event(ev: ConntrackEvent): void;
  error(err: DecodeError): void;
  /** NLMSG_DONE: the end of a dump (seq of the request). */
  done?(seq: number, interrupted: boolean): void;
  /** NLMSG_ERROR: errno 0 is an ACK. */
  nlError?(seq: number, errno: number): void;
}

/**
 * A conntrack event that is only valid during the callback it was passed to.
 * The decoder overwrites it (and its tuples and counters objects) with the
 * next message: read what you need inside the callback, or call `copy()` for
 * an event you may keep.
 */
export interface ConntrackEventView extends ConntrackEvent {
  /** A stable event with the same values, independent of the view and of the buffer. */
  copy(): ConntrackEvent;
}

/** What a view decode reports: the same view object for every message of the batch. */
export interface ConntrackViewHandler extends Omit<ConntrackBatchHandler, 'event'> {
  /**
   * The view is reused for the next message as soon as this returns: do not
   * keep it, its `orig`/`reply` tuples or its counters objects; keep
   * `ev.copy()` instead.
   */
  event(ev: ConntrackEventView): void;
}

export interface DecodeOptions {
  /** The bytes are replies to a dump request (events get fromDump=true). */
  fromDump?: boolean;
}

/** Scratch for formatting IPv6 words: text is built synchronously from it. */
const v6scratch = new Uint8Array(16);

function formatV6Words(w0: number, w1: number, w2: number, w3: number): string {
  const s = v6scratch;
  s[0] = w0 >>> 24;
  s[1] = w0 >>> 16;
  s[2] = w0 >>> 8;
  s[3] = w0;
  s[4] = w1 >>> 24;
  s[5] = w1 >>> 16;
  s[6] = w1 >>> 8;
  s[7] = w1;
  s[8] = w2 >>> 24;
  s[9] = w2 >>> 16;
  s[10] = w2 >>> 8;
  s[11] = w2;
  s[12] = w3 >>> 24;
  s[13] = w3 >>> 16;
  s[14] = w3 >>> 8;
  s[15] = w3;
  return formatIPv6(s, 0);
}

/**
 * One direction of a connection. Addresses are held as numbers (IPv4 as one
 * u32, IPv6 as four big-endian u32 words), never as views of the buffer, so
 * a copied tuple does not keep the batch alive; text is built on first read.
 */
export class Tuple implements ConntrackTuple {
  family: IpFamily = 4;
  proto = 0;
  src4 = 0;
  dst4 = 0;
  src6a = 0;
  src6b = 0;
  src6c = 0;
  src6d = 0;
  dst6a = 0;
  dst6b = 0;
  dst6c = 0;
  dst6d = 0;
  sport = 0;
  dport = 0;
  icmpType: number | undefined = undefined;
  icmpCode: number | undefined = undefined;
  icmpId: number | undefined = undefined;
  private srcText: string | undefined = undefined;
  private dstText: string | undefined = undefined;

  /** Back to the state of a new tuple (the decoder reuses tuples). */
  reset(): void {
    this.family = 4;
    this.proto = 0;
    this.src4 = 0;
    this.dst4 = 0;
    this.src6a = 0;
    this.src6b = 0;
    this.src6c = 0;
    this.src6d = 0;
    this.dst6a = 0;
    this.dst6b = 0;
    this.dst6c = 0;
    this.dst6d = 0;
    this.sport = 0;
    this.dport = 0;
    this.icmpType = undefined;
    this.icmpCode = undefined;
    this.icmpId = undefined;
    this.srcText = undefined;
    this.dstText = undefined;
  }

  copyFrom(t: Tuple): void {
    this.family = t.family;
    this.proto = t.proto;
    this.src4 = t.src4;
    this.dst4 = t.dst4;
    this.src6a = t.src6a;
    this.src6b = t.src6b;
    this.src6c = t.src6c;
    this.src6d = t.src6d;
    this.dst6a = t.dst6a;
    this.dst6b = t.dst6b;
    this.dst6c = t.dst6c;
    this.dst6d = t.dst6d;
    this.sport = t.sport;
    this.dport = t.dport;
    this.icmpType = t.icmpType;
    this.icmpCode = t.icmpCode;
    this.icmpId = t.icmpId;
    this.srcText = t.srcText;
    this.dstText = t.dstText;
  }

  get src(): string {
    if (this.srcText === undefined) {
      this.srcText =
        this.family === 6
          ? formatV6Words(this.src6a, this.src6b, this.src6c, this.src6d)
          : formatIPv4(this.src4);
    }
    return this.srcText;
  }

  get dst(): string {
    if (this.dstText === undefined) {
      this.dstText =
        this.family === 6
          ? formatV6Words(this.dst6a, this.dst6b, this.dst6c, this.dst6d)
          : formatIPv4(this.dst4);
    }
    return this.dstText;
  }

  toJSON(): Record<string, unknown> {
    return {
      family: this.family,
      proto: this.proto,
      src: this.src,
      dst: this.dst,
      sport: this.sport,
      dport: this.dport,
      ...(this.icmpType !== undefined
        ? { icmpType: this.icmpType, icmpCode: this.icmpCode, icmpId: this.icmpId }
        : {}),
    };
  }
}

/**
 * floor((hi * 2^32 + lo) / 1e6), exactly, in doubles: 2^32 = 4294 * 1e6 +
 * 967296, and hi * 967296 + lo stays below 2^53.
 */
function nsHalvesToMs(hi: number, lo: number): number {
  return hi * 4294 + Math.floor((hi * 967296 + lo) / 1_000_000);
}

/**
 * The decoded event: every value is a number (or a string for the kind) in
 * a field of its own; objects (counters, BigInt timestamps, address text)
 * are built only when read. The same class serves both entry points: the
 * batch decoder fills a new one per message, the view decoder refills one.
 */
class Event implements ConntrackEventView {
  type: ConntrackEventType = 'new';
  fromDump = false;
  readonly orig: Tuple = new Tuple();
  readonly replyTuple: Tuple = new Tuple();
  hasReply = false;
  id = 0;
  zone = 0;
  mark = 0;
  status = 0;
  tcpState: number | undefined = undefined;
  // Counters as plain numbers (packets -1 = absent).
  po = -1;
  bo = 0;
  pr = -1;
  br = 0;
  // Timestamps as be64 halves (high -1 = absent): BigInts only when read.
  startHi = -1;
  startLo = 0;
  stopHi = -1;
  stopLo = 0;
  private co: ConntrackCounters | undefined = undefined;
  private cr: ConntrackCounters | undefined = undefined;

  /** Back to a new event's state, for the next message. */
  reset(type: ConntrackEventType, fromDump: boolean): void {
    this.type = type;
    this.fromDump = fromDump;
    // orig is reset by decodeTuple (a message without it is an error, never
    // delivered); reply by decodeTuple too, and hidden until then.
    this.hasReply = false;
    this.id = 0;
    this.zone = 0;
    this.mark = 0;
    this.status = 0;
    this.tcpState = undefined;
    this.po = -1;
    this.bo = 0;
    this.pr = -1;
    this.br = 0;
    this.startHi = -1;
    this.startLo = 0;
    this.stopHi = -1;
    this.stopLo = 0;
  }

  get reply(): Tuple | undefined {
    return this.hasReply ? this.replyTuple : undefined;
  }

  /** One object per event, refreshed on each read (so a view allocates nothing per message). */
  get countersOrig(): ConntrackCounters | undefined {
    if (this.po < 0) return undefined;
    if (this.co === undefined) this.co = { packets: 0, bytes: 0 };
    this.co.packets = this.po;
    this.co.bytes = this.bo;
    return this.co;
  }

  get countersReply(): ConntrackCounters | undefined {
    if (this.pr < 0) return undefined;
    if (this.cr === undefined) this.cr = { packets: 0, bytes: 0 };
    this.cr.packets = this.pr;
    this.cr.bytes = this.br;
    return this.cr;
  }

  get startNs(): bigint | undefined {
    return this.startHi < 0 ? undefined : (BigInt(this.startHi) << 32n) | BigInt(this.startLo);
  }

  get stopNs(): bigint | undefined {
    return this.stopHi < 0 ? undefined : (BigInt(this.stopHi) << 32n) | BigInt(this.stopLo);
  }

  get startMs(): number | undefined {
    return this.startHi < 0 ? undefined : nsHalvesToMs(this.startHi, this.startLo);
  }

  get stopMs(): number | undefined {
    return this.stopHi < 0 ? undefined : nsHalvesToMs(this.stopHi, this.stopLo);
  }

  copy(): ConntrackEvent {
    const e = new Event();
    e.type = this.type;
    e.fromDump = this.fromDump;
    e.orig.copyFrom(this.orig);
    if (this.hasReply) e.replyTuple.copyFrom(this.replyTuple);
    e.hasReply = this.hasReply;
    e.id = this.id;
    e.zone = this.zone;
    e.mark = this.mark;
    e.status = this.status;
    e.tcpState = this.tcpState;
    e.po = this.po;
    e.bo = this.bo;
    e.pr = this.pr;
    e.br = this.br;
    e.startHi = this.startHi;
    e.startLo = this.startLo;
    e.stopHi = this.stopHi;
    e.stopLo = this.stopLo;
    return e;
  }

  toJSON(): Record<string, unknown> {
    return {
      type: this.type,
      fromDump: this.fromDump,
      orig: this.orig,
      reply: this.reply,
      id: this.id,
      zone: this.zone,
      mark: this.mark,
      status: this.status,
      tcpState: this.tcpState,
      countersOrig: this.countersOrig,
      countersReply: this.countersReply,
      startNs: this.startNs?.toString(),
      stopNs: this.stopNs?.toString(),
    };
  }
}

/** Thrown internally, caught per message: never escapes the decoder. */
class Malformed {
  constructor(readonly err: DecodeError) {}
}

function malformed(code: string, message: string, offset: number, attribute: string): Malformed {
  return new Malformed(new DecodeError(code, message, { offset, attribute }));
}

// The hot functions below read through the batch's DataView inline rather
// than through helpers: TurboFan stops inlining small helpers once a
// function is this large, and a call per field read cost a third of the
// decode time; DataView reads compile to one load each, where byte
// arithmetic costs one bounds-checked load per byte. Every read is still
// preceded by its length check (so no DataView read can throw RangeError);
// the error paths are the cold functions here.

/** Throws for an attribute header at o whose length does not fit its container. */
function overrun(b: Uint8Array, o: number, where: string): never {
  const len = u16le(b, o);
  throw malformed(
    'ERR_ATTR_OVERRUN',
    `${where}: attribute ${u16le(b, o + 2) & NLA_TYPE_MASK} length ${len} overruns its container at offset ${o}`,
    o,
    where,
  );
}

/** Throws for a value of `len` bytes where `want` are needed. */
function short(len: number, want: number, o: number, where: string): never {
  throw malformed(
    'ERR_ATTR_SHORT',
    `${where}: value of ${len} bytes, expected ${want} at offset ${o}`,
    o,
    where,
  );
}

/** Walks CTA_TUPLE_IP; returns bit 1 for an IPv6 source seen, bit 2 for an IPv6 destination. */
function decodeIp(b: Uint8Array, d: DataView, start: number, end: number, t: Tuple): number {
  let v6 = 0;
  for (let o = start; end - o >= 4; ) {
    const len = d.getUint16(o, true);
    if (len < 4 || len > end - o) overrun(b, o, 'CTA_TUPLE_IP');
    const v = o + 4;
    const vlen = len - 4;
    switch (d.getUint16(o + 2, true) & NLA_TYPE_MASK) {
      case CTA_IP_V4_SRC:
        if (vlen < 4) short(vlen, 4, o, 'CTA_IP_V4_SRC');
        t.family = 4;
        t.src4 = d.getUint32(v);
        break;
      case CTA_IP_V4_DST:
        if (vlen < 4) short(vlen, 4, o, 'CTA_IP_V4_DST');
        t.family = 4;
        t.dst4 = d.getUint32(v);
        break;
      case CTA_IP_V6_SRC:
        if (vlen < 16) short(vlen, 16, o, 'CTA_IP_V6_SRC');
        t.family = 6;
        t.src6a = d.getUint32(v);
        t.src6b = d.getUint32(v + 4);
        t.src6c = d.getUint32(v + 8);
        t.src6d = d.getUint32(v + 12);
        v6 |= 1;
        break;
      case CTA_IP_V6_DST:
        if (vlen < 16) short(vlen, 16, o, 'CTA_IP_V6_DST');
        t.family = 6;
        t.dst6a = d.getUint32(v);
        t.dst6b = d.getUint32(v + 4);
        t.dst6c = d.getUint32(v + 8);
        t.dst6d = d.getUint32(v + 12);
        v6 |= 2;
        break;
      default:
        break; // unknown: skip, so old code runs on new kernels
    }
    o += (len + 3) & ~3;
  }
  return v6;
}

function decodeProto(b: Uint8Array, d: DataView, start: number, end: number, t: Tuple): void {
  for (let o = start; end - o >= 4; ) {
    const len = d.getUint16(o, true);
    if (len < 4 || len > end - o) overrun(b, o, 'CTA_TUPLE_PROTO');
    const v = o + 4;
    const vlen = len - 4;
    switch (d.getUint16(o + 2, true) & NLA_TYPE_MASK) {
      case CTA_PROTO_NUM:
        if (vlen < 1) short(vlen, 1, o, 'CTA_PROTO_NUM');
        t.proto = d.getUint8(v);
        break;
      case CTA_PROTO_SRC_PORT:
        if (vlen < 2) short(vlen, 2, o, 'CTA_PROTO_SRC_PORT');
        t.sport = d.getUint16(v);
        break;
      case CTA_PROTO_DST_PORT:
        if (vlen < 2) short(vlen, 2, o, 'CTA_PROTO_DST_PORT');
        t.dport = d.getUint16(v);
        break;
      case CTA_PROTO_ICMP_ID:
      case CTA_PROTO_ICMPV6_ID:
        if (vlen < 2) short(vlen, 2, o, 'CTA_PROTO_ICMP_ID');
        t.icmpId = d.getUint16(v);
        break;
      case CTA_PROTO_ICMP_TYPE:
      case CTA_PROTO_ICMPV6_TYPE:
        if (vlen < 1) short(vlen, 1, o, 'CTA_PROTO_ICMP_TYPE');
        t.icmpType = d.getUint8(v);
        break;
      case CTA_PROTO_ICMP_CODE:
      case CTA_PROTO_ICMPV6_CODE:
        if (vlen < 1) short(vlen, 1, o, 'CTA_PROTO_ICMP_CODE');
        t.icmpCode = d.getUint8(v);
        break;
      default:
        break;
    }
    o += (len + 3) & ~3;
  }
}

/** Fills `t` (reset first) from a CTA_TUPLE_ORIG/REPLY body. */
function decodeTuple(
  b: Uint8Array,
  d: DataView,
  start: number,
  end: number,
  where: string,
  t: Tuple,
): void {
  t.reset();
  let sawIp = false;
  let sawProto = false;
  let v6 = 0;
  for (let o = start; end - o >= 4; ) {
    const len = d.getUint16(o, true);
    if (len < 4 || len > end - o) overrun(b, o, where);
    const type = d.getUint16(o + 2, true) & NLA_TYPE_MASK;
    if (type === CTA_TUPLE_IP) {
      v6 |= decodeIp(b, d, o + 4, o + len, t);
      sawIp = true;
    } else if (type === CTA_TUPLE_PROTO) {
      decodeProto(b, d, o + 4, o + len, t);
      sawProto = true;
    }
    o += (len + 3) & ~3;
  }
  if (!sawIp || !sawProto || (t.family === 6 && v6 !== 3)) {
    throw malformed(
      'ERR_CT_BAD_TUPLE',
      `${where}: tuple without addresses or protocol at offset ${start}`,
      start,
      where,
    );
  }
}

function decodeCounters(
  b: Uint8Array,
  d: DataView,
  start: number,
  end: number,
  where: string,
  ev: Event,
  orig: boolean,
): void {
  let packets = 0;
  let bytes = 0;
  for (let o = start; end - o >= 4; ) {
    const len = d.getUint16(o, true);
    if (len < 4 || len > end - o) overrun(b, o, where);
    const v = o + 4;
    const vlen = len - 4;
    // be64 values as numbers: exact below 2^53, which counters never reach.
    switch (d.getUint16(o + 2, true) & NLA_TYPE_MASK) {
      case CTA_COUNTERS_PACKETS:
        if (vlen < 8) short(vlen, 8, o, `${where}.PACKETS`);
        packets = d.getUint32(v) * 4294967296 + d.getUint32(v + 4);
        break;
      case CTA_COUNTERS_BYTES:
        if (vlen < 8) short(vlen, 8, o, `${where}.BYTES`);
        bytes = d.getUint32(v) * 4294967296 + d.getUint32(v + 4);
        break;
      case CTA_COUNTERS32_PACKETS:
        if (vlen < 4) short(vlen, 4, o, `${where}.PACKETS32`);
        packets = d.getUint32(v);
        break;
      case CTA_COUNTERS32_BYTES:
        if (vlen < 4) short(vlen, 4, o, `${where}.BYTES32`);
        bytes = d.getUint32(v);
        break;
      default:
        break;
    }
    o += (len + 3) & ~3;
  }
  if (orig) {
    ev.po = packets;
    ev.bo = bytes;
  } else {
    ev.pr = packets;
    ev.br = bytes;
  }
}

function decodeProtoinfo(b: Uint8Array, d: DataView, start: number, end: number, ev: Event): void {
  for (let o = start; end - o >= 4; ) {
    const len = d.getUint16(o, true);
    if (len < 4 || len > end - o) overrun(b, o, 'CTA_PROTOINFO');
    if ((d.getUint16(o + 2, true) & NLA_TYPE_MASK) === CTA_PROTOINFO_TCP) {
      const iend = o + len;
      for (let i = o + 4; iend - i >= 4; ) {
        const ilen = d.getUint16(i, true);
        if (ilen < 4 || ilen > iend - i) overrun(b, i, 'CTA_PROTOINFO_TCP');
        if ((d.getUint16(i + 2, true) & NLA_TYPE_MASK) === CTA_PROTOINFO_TCP_STATE && ilen >= 5)
          ev.tcpState = d.getUint8(i + 4);
        i += align4(ilen);
      }
    }
    o += align4(len);
  }
}

function decodeTimestamp(b: Uint8Array, d: DataView, start: number, end: number, ev: Event): void {
  for (let o = start; end - o >= 4; ) {
    const len = d.getUint16(o, true);
    if (len < 4 || len > end - o) overrun(b, o, 'CTA_TIMESTAMP');
    const type = d.getUint16(o + 2, true) & NLA_TYPE_MASK;
    if (type === CTA_TIMESTAMP_START) {
      if (len < 12) short(len - 4, 8, o, 'CTA_TIMESTAMP_START');
      ev.startHi = d.getUint32(o + 4);
      ev.startLo = d.getUint32(o + 8);
    } else if (type === CTA_TIMESTAMP_STOP) {
      if (len < 12) short(len - 4, 8, o, 'CTA_TIMESTAMP_STOP');
      ev.stopHi = d.getUint32(o + 4);
      ev.stopLo = d.getUint32(o + 8);
    }
    o += align4(len);
  }
}

/** The message's attributes into `ev` (already reset); throws Malformed. */
function decodeAttributes(
  b: Uint8Array,
  d: DataView,
  start: number,
  end: number,
  ev: Event,
): boolean {
  let sawOrig = false;
  for (let o = start; end - o >= 4; ) {
    const len = d.getUint16(o, true);
    if (len < 4 || len > end - o) overrun(b, o, 'ctnetlink');
    const v = o + 4;
    const vend = o + len;
    switch (d.getUint16(o + 2, true) & NLA_TYPE_MASK) {
      case CTA_TUPLE_ORIG:
        decodeTuple(b, d, v, vend, 'CTA_TUPLE_ORIG', ev.orig);
        sawOrig = true;
        break;
      case CTA_TUPLE_REPLY:
        decodeTuple(b, d, v, vend, 'CTA_TUPLE_REPLY', ev.replyTuple);
        ev.hasReply = true;
        break;
      case CTA_STATUS:
        if (len < 8) short(len - 4, 4, o, 'CTA_STATUS');
        ev.status = d.getUint32(v);
        break;
      case CTA_PROTOINFO:
        decodeProtoinfo(b, d, v, vend, ev);
        break;
      case CTA_MARK:
        if (len < 8) short(len - 4, 4, o, 'CTA_MARK');
        ev.mark = d.getUint32(v);
        break;
      case CTA_COUNTERS_ORIG:
        decodeCounters(b, d, v, vend, 'CTA_COUNTERS_ORIG', ev, true);
        break;
      case CTA_COUNTERS_REPLY:
        decodeCounters(b, d, v, vend, 'CTA_COUNTERS_REPLY', ev, false);
        break;
      case CTA_ID:
        if (len < 8) short(len - 4, 4, o, 'CTA_ID');
        ev.id = d.getUint32(v);
        break;
      case CTA_ZONE:
        if (len < 6) short(len - 4, 2, o, 'CTA_ZONE');
        ev.zone = d.getUint16(v);
        break;
      case CTA_TIMESTAMP:
        decodeTimestamp(b, d, v, vend, ev);
        break;
      default:
        break;
    }
    o += (len + 3) & ~3;
  }
  return sawOrig;
}

/**
 * Decodes one ctnetlink message whose header starts at `offset` into `ev`.
 * Returns undefined when `ev` holds the event, else the DecodeError (and
 * `ev` holds nothing of use).
 */
function decodeInto(
  ev: Event,
  b: Uint8Array,
  d: DataView,
  offset: number,
  length: number,
  type: number,
  flags: number,
  fromDump: boolean,
): DecodeError | undefined {
  const bodyStart = offset + NLMSG_HDRLEN;
  if (offset < 0 || length > b.length - offset) {
    // Only a direct caller of decodeConntrackMessage can get here (the batch
    // walk frames messages itself); the DataView reads need it.
    return badMessageLength(b, offset, length);
  }
  if (length < NLMSG_HDRLEN + NFGENMSG_LEN) {
    return new DecodeError('ERR_CT_SHORT', `ctnetlink message of ${length} bytes has no nfgenmsg`, {
      offset,
    });
  }
  const family = b[bodyStart]!;
  if (family !== AF_INET && family !== AF_INET6) {
    return new DecodeError('ERR_CT_FAMILY', `ctnetlink message for address family ${family}`, {
      offset,
      family,
    });
  }
  ev.reset(
    type === CT_MSG_DELETE
      ? 'destroy'
      : (flags & (NLM_F_CREATE | NLM_F_EXCL)) !== 0 && !fromDump
        ? 'new'
        : 'update',
    fromDump,
  );
  let sawOrig: boolean;
  try {
    sawOrig = decodeAttributes(b, d, bodyStart + NFGENMSG_LEN, offset + length, ev);
  } catch (e) {
    if (e instanceof Malformed) return e.err;
    throw e;
  }
  if (!sawOrig) {
    return new DecodeError('ERR_CT_MISSING_TUPLE', 'ctnetlink message without CTA_TUPLE_ORIG', {
      offset,
      attribute: 'CTA_TUPLE_ORIG',
    });
  }
  return undefined;
}

/**
 * Decodes one ctnetlink message whose header starts at `offset`. Returns a
 * new event (the caller may keep it), or a DecodeError for a malformed message.
 */
export function decodeConntrackMessage(
  b: Uint8Array,
  offset: number,
  length: number,
  type: number,
  flags: number,
  fromDump: boolean,
): ConntrackEvent | DecodeError {
  const ev = new Event();
  return (
    decodeInto(
      ev,
      b,
      new DataView(b.buffer, b.byteOffset, b.byteLength),
      offset,
      length,
      type,
      flags,
      fromDump,
    ) ?? ev
  );
}

/**
 * The batch walk shared by both entry points: forEachMessage's framing,
 * inlined so a message costs no callback but the handler's. With `view`,
 * every message is decoded into it; without, into a new Event.
 */
function walkBatch(
  buf: Uint8Array,
  out: ConntrackViewHandler,
  fromDump: boolean,
  view: Event | undefined,
): void {
  const end = buf.length;
  const d = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let offset = 0;
  while (end - offset >= NLMSG_HDRLEN) {
    const length = d.getUint32(offset, true);
    if (length < NLMSG_HDRLEN || length > end - offset) {
      out.error(badMessageLength(buf, offset, length));
      return;
    }
    const type = d.getUint16(offset + 4, true);
    if (type === CT_MSG_NEW || type === CT_MSG_DELETE) {
      const flags = d.getUint16(offset + 6, true);
      const ev = view ?? new Event();
      const err = decodeInto(ev, buf, d, offset, length, type, flags, fromDump);
      if (err === undefined) out.event(ev);
      else out.error(err);
    } else if (type === NLMSG_DONE) {
      const flags = u16le(buf, offset + 6);
      out.done?.(u32le(buf, offset + 8), (flags & NLM_F_DUMP_INTR) !== 0);
    } else if (type === NLMSG_ERROR) {
      reportNlError(buf, offset, length, out);
    }
    // NOOP, OVERRUN and other subsystems' messages are not ours: skipped.
    offset += align4(length);
  }
  checkTrailing(buf, offset, (err) => out.error(err));
}

/**
 * Decodes every message of a batch into a new event each, which the handler
 * may keep. Control messages (ERROR/ACK, DONE) go to the optional callbacks;
 * messages of other subsystems are skipped.
 */
export function decodeConntrackBatch(
  buf: Uint8Array,
  out: ConntrackBatchHandler,
  options: DecodeOptions = {},
): void {
  walkBatch(buf, out, options.fromDump === true, undefined);
}

/**
 * Decodes every message of a batch into one reused view: no allocation per
 * message (the hot path at millions of events per second). The contract:
 * the view, its tuples and its counters objects are valid only until
 * `out.event` returns; a consumer that keeps an event beyond the callback
 * must keep `ev.copy()`. Errors and control messages as decodeConntrackBatch.
 */
export function decodeConntrackBatchView(
  buf: Uint8Array,
  out: ConntrackViewHandler,
  options: DecodeOptions = {},
): void {
  walkBatch(buf, out, options.fromDump === true, new Event());
}
