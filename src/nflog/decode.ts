/**
 * NFLOG packet decoder: the group, the rule prefix (parsed into a verdict),
 * timestamp, interfaces, and the payload's IPv4/IPv6 and TCP/UDP/SCTP/ICMP
 * headers → 5-tuple and IP length. The payload is usually cut at the copy
 * range (128 bytes): enough for the headers, and the IP length field still
 * gives the packet's full size.
 */

import {
  align4,
  forEachMessage,
  NFGENMSG_LEN,
  NLA_TYPE_MASK,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  reportNlError,
  u16be,
  u16le,
  u32be,
  u64be,
} from '../netlink/frame.js';
import { formatIPv4, formatIPv6 } from '../netlink/ip.js';
import { DecodeError } from '../util/errors.js';
import { hasPorts } from '../util/ip-proto.js';
import {
  NFULA_HWADDR,
  NFULA_IFINDEX_INDEV,
  NFULA_IFINDEX_OUTDEV,
  NFULA_PAYLOAD,
  NFULA_PREFIX,
  NFULA_TIMESTAMP,
  NFULNL_MSG_PACKET,
} from './constants.js';
import { parseRulePrefix } from './prefix.js';
import type { NflogPacket, RuleVerdict } from './types.js';

export interface NflogBatchHandler {
  packet(p: NflogPacket): void;
  error(err: DecodeError): void;
  nlError?(seq: number, errno: number): void;
}

interface L3 {
  family: 4 | 6;
  proto: number;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  icmpType: number | undefined;
  icmpCode: number | undefined;
  bytes: number;
  ipId: number;
}

function l4(
  b: Uint8Array,
  o: number,
  end: number,
  proto: number,
  out: L3,
  firstFragment: boolean,
): void {
  if (!firstFragment) return;
  if (hasPorts(proto) && end - o >= 4) {
    out.sport = u16be(b, o);
    out.dport = u16be(b, o + 2);
  } else if ((proto === 1 || proto === 58) && end - o >= 2) {
    out.icmpType = b[o]!;
    out.icmpCode = b[o + 1]!;
  }
}

/** Decodes the IP header at [o, end); returns a DecodeError when it cannot. */
export function decodeIpPayload(b: Uint8Array, o: number, end: number): L3 | DecodeError {
  if (end - o < 1) return new DecodeError('ERR_NFLOG_BAD_PAYLOAD', 'empty payload', { offset: o });
  const version = b[o]! >> 4;
  const out: L3 = {
    family: 4,
    proto: 0,
    src: '',
    dst: '',
    sport: 0,
    dport: 0,
    icmpType: undefined,
    icmpCode: undefined,
    bytes: 0,
    ipId: 0,
  };
  if (version === 4) {
    if (end - o < 20)
      return new DecodeError('ERR_NFLOG_BAD_PAYLOAD', 'IPv4 header truncated', { offset: o });
    const ihl = (b[o]! & 15) * 4;
    if (ihl < 20)
      return new DecodeError('ERR_NFLOG_BAD_PAYLOAD', `IPv4 header length ${ihl}`, { offset: o });
    out.bytes = u16be(b, o + 2);
    out.ipId = u16be(b, o + 4);
    out.proto = b[o + 9]!;
    out.src = formatIPv4(u32be(b, o + 12));
    out.dst = formatIPv4(u32be(b, o + 16));
    const fragOffset = u16be(b, o + 6) & 0x1fff;
    l4(b, o + ihl, end, out.proto, out, fragOffset === 0);
    return out;
  }
  if (version === 6) {
    if (end - o < 40)
      return new DecodeError('ERR_NFLOG_BAD_PAYLOAD', 'IPv6 header truncated', { offset: o });
    out.family = 6;
    out.bytes = u16be(b, o + 4) + 40;
    out.src = formatIPv6(b, o + 8);
    out.dst = formatIPv6(b, o + 24);
    let next = b[o + 6]!;
    let p = o + 40;
    let firstFragment = true;
    // Walk extension headers (bounded: each one advances p by ≥ 8 bytes).
    for (let hops = 0; hops < 16; hops++) {
      if (next === 0 || next === 43 || next === 60) {
        if (end - p < 2) break;
        const n = b[p]!;
        p += (b[p + 1]! + 1) * 8;
        next = n;
      } else if (next === 44) {
        if (end - p < 8) break;
        firstFragment = (u16be(b, p + 2) & 0xfff8) === 0;
        next = b[p]!;
        p += 8;
      } else if (next === 51) {
        if (end - p < 2) break;
        const n = b[p]!;
        p += (b[p + 1]! + 2) * 4;
        next = n;
      } else {
        break;
      }
    }
    out.proto = next;
    if (p <= end) l4(b, p, end, next, out, firstFragment);
    return out;
  }
  return new DecodeError('ERR_NFLOG_BAD_PAYLOAD', `IP version ${version}`, { offset: o });
}

/**
 * Recently seen short byte strings (rule prefixes, hardware addresses) and
 * what was built from them. Prefixes repeat on every packet of a rule and
 * hardware addresses on every packet of a neighbour, so comparing a few
 * bytes against the last ones seen replaces building a string (and, for a
 * prefix, hashing it) per packet. A miss builds as before and takes the
 * oldest slot; entries hold copies, never views of a batch.
 */
class RecentBytes<T> {
  private readonly keys: (Uint8Array | undefined)[];
  private readonly texts: string[];
  private readonly values: T[];
  private next = 0;

  constructor(
    private readonly size: number,
    empty: T,
  ) {
    this.keys = new Array<Uint8Array | undefined>(size).fill(undefined);
    this.texts = new Array<string>(size).fill('');
    this.values = new Array<T>(size).fill(empty);
  }

  /** The slot holding exactly b[o, o + len), or -1. */
  find(b: Uint8Array, o: number, len: number): number {
    for (let i = 0; i < this.size; i++) {
      const k = this.keys[i];
      if (k === undefined || k.length !== len) continue;
      let j = 0;
      while (j < len && k[j] === b[o + j]) j++;
      if (j === len) return i;
    }
    return -1;
  }

  text(slot: number): string {
    return this.texts[slot]!;
  }

  value(slot: number): T {
    return this.values[slot]!;
  }

  add(b: Uint8Array, o: number, len: number, text: string, value: T): void {
    const slot = this.next;
    this.next = (slot + 1) % this.size;
    this.keys[slot] = b.slice(o, o + len);
    this.texts[slot] = text;
    this.values[slot] = value;
  }
}

const recentPrefixes = new RecentBytes<RuleVerdict | undefined>(16, undefined);
const recentHwaddrs = new RecentBytes<undefined>(16, undefined);

/** Length of the C string at [o, o + max): up to its NUL. */
function cStringLength(b: Uint8Array, o: number, max: number): number {
  let n = 0;
  while (n < max && b[o + n] !== 0) n++;
  return n;
}

function cString(b: Uint8Array, o: number, len: number): string {
  // Prefixes are short: building the string directly beats a Buffer slice.
  let s = '';
  for (let i = o; i < o + len; i++) s += String.fromCharCode(b[i]!);
  return s;
}

function hwaddrText(b: Uint8Array, o: number, n: number): string {
  const parts: string[] = [];
  for (let i = 0; i < n; i++) parts.push(b[o + i]!.toString(16).padStart(2, '0'));
  return parts.join(':');
}

export function decodeNflogMessage(
  b: Uint8Array,
  offset: number,
  length: number,
): NflogPacket | DecodeError {
  const end = offset + length;
  if (length < NLMSG_HDRLEN + NFGENMSG_LEN) {
    return new DecodeError('ERR_NFLOG_SHORT', `NFLOG message of ${length} bytes has no nfgenmsg`, {
      offset,
    });
  }
  const group = u16be(b, offset + NLMSG_HDRLEN + 2);
  let prefix = '';
  let verdict = parseRulePrefix('');
  let payloadStart = -1;
  let payloadEnd = -1;
  let timestampMs: number | undefined;
  let indev: number | undefined;
  let outdev: number | undefined;
  let hwaddr: string | undefined;
  for (let o = offset + NLMSG_HDRLEN + NFGENMSG_LEN; end - o >= 4; ) {
    const len = u16le(b, o);
    const type = u16le(b, o + 2) & NLA_TYPE_MASK;
    if (len < 4 || len > end - o) {
      return new DecodeError(
        'ERR_ATTR_OVERRUN',
        `NFLOG attribute ${type} length ${len} overruns the message`,
        {
          offset: o,
          attribute: type,
        },
      );
    }
    const v = o + 4;
    const vlen = len - 4;
    switch (type) {
      case NFULA_PREFIX: {
        const n = cStringLength(b, v, vlen);
        const slot = recentPrefixes.find(b, v, n);
        if (slot >= 0) {
          prefix = recentPrefixes.text(slot);
          verdict = recentPrefixes.value(slot);
        } else {
          prefix = cString(b, v, n);
          verdict = parseRulePrefix(prefix);
          recentPrefixes.add(b, v, n, prefix, verdict);
        }
        break;
      }
      case NFULA_PAYLOAD:
        payloadStart = v;
        payloadEnd = v + vlen;
        break;
      case NFULA_TIMESTAMP:
        if (vlen >= 16) timestampMs = u64be(b, v) * 1000 + Math.floor(u64be(b, v + 8) / 1000);
        break;
      case NFULA_IFINDEX_INDEV:
        if (vlen >= 4) indev = u32be(b, v);
        break;
      case NFULA_IFINDEX_OUTDEV:
        if (vlen >= 4) outdev = u32be(b, v);
        break;
      case NFULA_HWADDR:
        if (vlen >= 4) {
          const n = Math.min(u16be(b, v), vlen - 4, 8);
          const slot = recentHwaddrs.find(b, v + 4, n);
          if (slot >= 0) hwaddr = recentHwaddrs.text(slot);
          else {
            hwaddr = hwaddrText(b, v + 4, n);
            recentHwaddrs.add(b, v + 4, n, hwaddr, undefined);
          }
        }
        break;
      default:
        break;
    }
    o += align4(len);
  }
  if (payloadStart < 0) {
    return new DecodeError('ERR_NFLOG_NO_PAYLOAD', 'NFLOG packet without NFULA_PAYLOAD', {
      offset,
      attribute: 'NFULA_PAYLOAD',
    });
  }
  const l3 = decodeIpPayload(b, payloadStart, payloadEnd);
  if (l3 instanceof DecodeError) return l3;
  return {
    group,
    prefix,
    verdict,
    family: l3.family,
    proto: l3.proto,
    src: l3.src,
    dst: l3.dst,
    sport: l3.sport,
    dport: l3.dport,
    ...(l3.icmpType !== undefined ? { icmpType: l3.icmpType, icmpCode: l3.icmpCode } : {}),
    bytes: l3.bytes,
    ipId: l3.ipId,
    timestampMs,
    indev,
    outdev,
    hwaddr,
  };
}

export function decodeNflogBatch(buf: Uint8Array, out: NflogBatchHandler): void {
  forEachMessage(
    buf,
    (b, o, length, type) => {
      if (type === NFULNL_MSG_PACKET) {
        const r = decodeNflogMessage(b, o, length);
        if (r instanceof DecodeError) out.error(r);
        else out.packet(r);
      } else if (type === NLMSG_ERROR) {
        reportNlError(b, o, length, out);
      }
    },
    (err) => out.error(err),
  );
}
