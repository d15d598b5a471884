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
 * Written for V8: byte arithmetic on the Uint8Array, no per-attribute
 * closures, addresses kept as numbers (IPv4) or a view of the buffer (IPv6)
 * and turned into text only when read. A malformed message is reported
 * through `out.error` with the attribute and offset and skipped; decoding
 * goes on with the next message. The nesting depth is fixed by the
 * structure (message → tuple → ip/proto), so no input can make it recurse.
 */

import {
  align4,
  forEachMessage,
  NFGENMSG_LEN,
  NLA_TYPE_MASK,
  NLM_F_CREATE,
  NLM_F_DUMP_INTR,
  NLM_F_EXCL,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  reportNlError,
  u16be,
  u16le,
  u32be,
  u64be,
  u64beBig,
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

export interface ConntrackBatchHandler {
  event(ev: ConntrackEvent): void;
  error(err: DecodeError): void;
  /** NLMSG_DONE: the end of a dump (seq of the request). */
  done?(seq: number, interrupted: boolean): void;
  /** NLMSG_ERROR: errno 0 is an ACK. */
  nlError?(seq: number, errno: number): void;
}

export interface DecodeOptions {
  /** The bytes are replies to a dump request (events get fromDump=true). */
  fromDump?: boolean;
}

/** One direction of a connection; address text is built on first read. */
export class Tuple implements ConntrackTuple {
  family: IpFamily = 4;
  proto = 0;
  src4 = 0;
  dst4 = 0;
  src6: Uint8Array | undefined = undefined;
  dst6: Uint8Array | undefined = undefined;
  sport = 0;
  dport = 0;
  icmpType: number | undefined = undefined;
  icmpCode: number | undefined = undefined;
  icmpId: number | undefined = undefined;
  private srcText: string | undefined = undefined;
  private dstText: string | undefined = undefined;

  get src(): string {
    if (this.srcText === undefined) {
      this.srcText = this.src6 ? formatIPv6(this.src6, 0) : formatIPv4(this.src4);
    }
    return this.srcText;
  }

  get dst(): string {
    if (this.dstText === undefined) {
      this.dstText = this.dst6 ? formatIPv6(this.dst6, 0) : formatIPv4(this.dst4);
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

class Event implements ConntrackEvent {
  type: ConntrackEventType = 'new';
  fromDump = false;
  orig: Tuple = new Tuple();
  reply: Tuple | undefined = undefined;
  id = 0;
  zone = 0;
  mark = 0;
  status = 0;
  tcpState: number | undefined = undefined;
  // Counters as plain numbers (-1 = absent); objects only when read.
  po = -1;
  bo = 0;
  pr = -1;
  br = 0;

  get countersOrig(): ConntrackCounters | undefined {
    return this.po < 0 ? undefined : { packets: this.po, bytes: this.bo };
  }

  get countersReply(): ConntrackCounters | undefined {
    return this.pr < 0 ? undefined : { packets: this.pr, bytes: this.br };
  }
  /** Offsets of the raw be64 timestamps: BigInts are built only when read. */
  buf: Uint8Array | undefined = undefined;
  startOff = -1;
  stopOff = -1;

  get startNs(): bigint | undefined {
    return this.startOff < 0 ? undefined : u64beBig(this.buf!, this.startOff);
  }

  get stopNs(): bigint | undefined {
    return this.stopOff < 0 ? undefined : u64beBig(this.buf!, this.stopOff);
  }
}

/** Thrown internally, caught per message: never escapes the decoder. */
class Malformed {
  constructor(readonly err: DecodeError) {}
}

function malformed(code: string, message: string, offset: number, attribute: string): Malformed {
  return new Malformed(new DecodeError(code, message, { offset, attribute }));
}

/** Validates an attribute header at o within end; returns its length. */
function attrLen(b: Uint8Array, o: number, end: number, where: string): number {
  const len = u16le(b, o);
  if (len < 4 || len > end - o) {
    throw malformed(
      'ERR_ATTR_OVERRUN',
      `${where}: attribute ${u16le(b, o + 2) & NLA_TYPE_MASK} length ${len} overruns its container at offset ${o}`,
      o,
      where,
    );
  }
  return len;
}

function need(len: number, want: number, o: number, where: string): void {
  if (len < want) {
    throw malformed(
      'ERR_ATTR_SHORT',
      `${where}: value of ${len} bytes, expected ${want} at offset ${o}`,
      o,
      where,
    );
  }
}

function decodeIp(b: Uint8Array, start: number, end: number, t: Tuple): void {
  for (let o = start; end - o >= 4; ) {
    const len = attrLen(b, o, end, 'CTA_TUPLE_IP');
    const type = u16le(b, o + 2) & NLA_TYPE_MASK;
    const v = o + 4;
    const vlen = len - 4;
    switch (type) {
      case CTA_IP_V4_SRC:
        need(vlen, 4, o, 'CTA_IP_V4_SRC');
        t.family = 4;
        t.src4 = u32be(b, v);
        break;
      case CTA_IP_V4_DST:
        need(vlen, 4, o, 'CTA_IP_V4_DST');
        t.family = 4;
        t.dst4 = u32be(b, v);
        break;
      case CTA_IP_V6_SRC:
        need(vlen, 16, o, 'CTA_IP_V6_SRC');
        t.family = 6;
        t.src6 = b.subarray(v, v + 16);
        break;
      case CTA_IP_V6_DST:
        need(vlen, 16, o, 'CTA_IP_V6_DST');
        t.family = 6;
        t.dst6 = b.subarray(v, v + 16);
        break;
      default:
        break; // unknown: skip, so old code runs on new kernels
    }
    o += align4(len);
  }
}

function decodeProto(b: Uint8Array, start: number, end: number, t: Tuple): void {
  for (let o = start; end - o >= 4; ) {
    const len = attrLen(b, o, end, 'CTA_TUPLE_PROTO');
    const type = u16le(b, o + 2) & NLA_TYPE_MASK;
    const v = o + 4;
    const vlen = len - 4;
    switch (type) {
      case CTA_PROTO_NUM:
        need(vlen, 1, o, 'CTA_PROTO_NUM');
        t.proto = b[v]!;
        break;
      case CTA_PROTO_SRC_PORT:
        need(vlen, 2, o, 'CTA_PROTO_SRC_PORT');
        t.sport = u16be(b, v);
        break;
      case CTA_PROTO_DST_PORT:
        need(vlen, 2, o, 'CTA_PROTO_DST_PORT');
        t.dport = u16be(b, v);
        break;
      case CTA_PROTO_ICMP_ID:
      case CTA_PROTO_ICMPV6_ID:
        need(vlen, 2, o, 'CTA_PROTO_ICMP_ID');
        t.icmpId = u16be(b, v);
        break;
      case CTA_PROTO_ICMP_TYPE:
      case CTA_PROTO_ICMPV6_TYPE:
        need(vlen, 1, o, 'CTA_PROTO_ICMP_TYPE');
        t.icmpType = b[v]!;
        break;
      case CTA_PROTO_ICMP_CODE:
      case CTA_PROTO_ICMPV6_CODE:
        need(vlen, 1, o, 'CTA_PROTO_ICMP_CODE');
        t.icmpCode = b[v]!;
        break;
      default:
        break;
    }
    o += align4(len);
  }
}

function decodeTuple(b: Uint8Array, start: number, end: number, where: string): Tuple {
  const t = new Tuple();
  let sawIp = false;
  let sawProto = false;
  for (let o = start; end - o >= 4; ) {
    const len = attrLen(b, o, end, where);
    const type = u16le(b, o + 2) & NLA_TYPE_MASK;
    if (type === CTA_TUPLE_IP) {
      decodeIp(b, o + 4, o + len, t);
      sawIp = true;
    } else if (type === CTA_TUPLE_PROTO) {
      decodeProto(b, o + 4, o + len, t);
      sawProto = true;
    }
    o += align4(len);
  }
  if (!sawIp || !sawProto || (t.family === 6 && (!t.src6 || !t.dst6))) {
    throw malformed(
      'ERR_CT_BAD_TUPLE',
      `${where}: tuple without addresses or protocol at offset ${start}`,
      start,
      where,
    );
  }
  return t;
}

function decodeCounters(
  b: Uint8Array,
  start: number,
  end: number,
  where: string,
  ev: Event,
  orig: boolean,
): void {
  let packets = 0;
  let bytes = 0;
  for (let o = start; end - o >= 4; ) {
    const len = attrLen(b, o, end, where);
    const type = u16le(b, o + 2) & NLA_TYPE_MASK;
    const v = o + 4;
    const vlen = len - 4;
    switch (type) {
      case CTA_COUNTERS_PACKETS:
        need(vlen, 8, o, `${where}.PACKETS`);
        packets = u64be(b, v);
        break;
      case CTA_COUNTERS_BYTES:
        need(vlen, 8, o, `${where}.BYTES`);
        bytes = u64be(b, v);
        break;
      case CTA_COUNTERS32_PACKETS:
        need(vlen, 4, o, `${where}.PACKETS32`);
        packets = u32be(b, v);
        break;
      case CTA_COUNTERS32_BYTES:
        need(vlen, 4, o, `${where}.BYTES32`);
        bytes = u32be(b, v);
        break;
      default:
        break;
    }
    o += align4(len);
  }
  if (orig) {
    ev.po = packets;
    ev.bo = bytes;
  } else {
    ev.pr = packets;
    ev.br = bytes;
  }
}

function decodeProtoinfo(b: Uint8Array, start: number, end: number, ev: Event): void {
  for (let o = start; end - o >= 4; ) {
    const len = attrLen(b, o, end, 'CTA_PROTOINFO');
    if ((u16le(b, o + 2) & NLA_TYPE_MASK) === CTA_PROTOINFO_TCP) {
      const iend = o + len;
      for (let i = o + 4; iend - i >= 4; ) {
        const ilen = attrLen(b, i, iend, 'CTA_PROTOINFO_TCP');
        if ((u16le(b, i + 2) & NLA_TYPE_MASK) === CTA_PROTOINFO_TCP_STATE && ilen >= 5)
          ev.tcpState = b[i + 4]!;
        i += align4(ilen);
      }
    }
    o += align4(len);
  }
}

function decodeTimestamp(b: Uint8Array, start: number, end: number, ev: Event): void {
  for (let o = start; end - o >= 4; ) {
    const len = attrLen(b, o, end, 'CTA_TIMESTAMP');
    const type = u16le(b, o + 2) & NLA_TYPE_MASK;
    if (type === CTA_TIMESTAMP_START) {
      need(len - 4, 8, o, 'CTA_TIMESTAMP_START');
      ev.buf = b;
      ev.startOff = o + 4;
    } else if (type === CTA_TIMESTAMP_STOP) {
      need(len - 4, 8, o, 'CTA_TIMESTAMP_STOP');
      ev.buf = b;
      ev.stopOff = o + 4;
    }
    o += align4(len);
  }
}

/**
 * Decodes one ctnetlink message whose header starts at `offset`. Returns the
 * event, or a DecodeError for a malformed message.
 */
export function decodeConntrackMessage(
  b: Uint8Array,
  offset: number,
  length: number,
  type: number,
  flags: number,
  fromDump: boolean,
): ConntrackEvent | DecodeError {
  const bodyStart = offset + NLMSG_HDRLEN;
  const end = offset + length;
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
  const ev = new Event();
  ev.fromDump = fromDump;
  ev.type =
    type === CT_MSG_DELETE
      ? 'destroy'
      : (flags & (NLM_F_CREATE | NLM_F_EXCL)) !== 0 && !fromDump
        ? 'new'
        : 'update';
  let sawOrig = false;
  try {
    for (let o = bodyStart + NFGENMSG_LEN; end - o >= 4; ) {
      const len = attrLen(b, o, end, 'ctnetlink');
      const atype = u16le(b, o + 2) & NLA_TYPE_MASK;
      const v = o + 4;
      const vend = o + len;
      switch (atype) {
        case CTA_TUPLE_ORIG:
          ev.orig = decodeTuple(b, v, vend, 'CTA_TUPLE_ORIG');
          sawOrig = true;
          break;
        case CTA_TUPLE_REPLY:
          ev.reply = decodeTuple(b, v, vend, 'CTA_TUPLE_REPLY');
          break;
        case CTA_STATUS:
          need(len - 4, 4, o, 'CTA_STATUS');
          ev.status = u32be(b, v);
          break;
        case CTA_PROTOINFO:
          decodeProtoinfo(b, v, vend, ev);
          break;
        case CTA_MARK:
          need(len - 4, 4, o, 'CTA_MARK');
          ev.mark = u32be(b, v);
          break;
        case CTA_COUNTERS_ORIG:
          decodeCounters(b, v, vend, 'CTA_COUNTERS_ORIG', ev, true);
          break;
        case CTA_COUNTERS_REPLY:
          decodeCounters(b, v, vend, 'CTA_COUNTERS_REPLY', ev, false);
          break;
        case CTA_ID:
          need(len - 4, 4, o, 'CTA_ID');
          ev.id = u32be(b, v);
          break;
        case CTA_ZONE:
          need(len - 4, 2, o, 'CTA_ZONE');
          ev.zone = u16be(b, v);
          break;
        case CTA_TIMESTAMP:
          decodeTimestamp(b, v, vend, ev);
          break;
        default:
          break;
      }
      o += align4(len);
    }
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
  return ev;
}

/**
 * Decodes every message of a batch. Control messages (ERROR/ACK, DONE) go to
 * the optional callbacks; messages of other subsystems are skipped.
 */
export function decodeConntrackBatch(
  buf: Uint8Array,
  out: ConntrackBatchHandler,
  options: DecodeOptions = {},
): void {
  const fromDump = options.fromDump === true;
  forEachMessage(
    buf,
    (b, o, length, type, flags, seq) => {
      if (type === CT_MSG_NEW || type === CT_MSG_DELETE) {
        const r = decodeConntrackMessage(b, o, length, type, flags, fromDump);
        if (r instanceof DecodeError) out.error(r);
        else out.event(r);
      } else if (type === NLMSG_DONE) {
        out.done?.(seq, (flags & NLM_F_DUMP_INTR) !== 0);
      } else if (type === NLMSG_ERROR) {
        reportNlError(b, o, length, out);
      }
      // NOOP, OVERRUN and other subsystems' messages are not ours: skipped.
    },
    (err) => out.error(err),
  );
}
