/**
 * Decodes the kfree_skb program's ring-buffer records (48 bytes each, the
 * layout of struct kdrop_event in native/bpf/kfree_skb.bpf.c): host byte
 * order (little-endian on the machines we build for) except the addresses,
 * which are in network order. Pure; bytes in, events out.
 *
 *   0 u32 reason      4 u32 netns      8 u32 ifindex    12 u32 ip_len
 *  16 u8 ip_version  17 u8 ip_proto   18 u16 ip_id
 *  20 u8[4] saddr    24 u8[4] daddr   28 u16 sport     30 u16 dport
 *  32 u16 l3proto    34 u16 frag      36 u32 skb_len   40 u64 location
 */
import { formatIPv4 } from '../netlink/ip.js';
import { DecodeError } from '../util/errors.js';
import type { DropReasons, KernelDrop } from './types.js';

export const KDROP_EVENT_BYTES = 48;

export interface KdropBatchHandler {
  drop(d: KernelDrop): void;
  error(err: DecodeError): void;
}

function addr(b: Uint8Array, o: number): string {
  return formatIPv4(((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0);
}

/** One record at offset o (the caller checked that 48 bytes are there). */
export function decodeKdrop(
  view: DataView,
  b: Uint8Array,
  o: number,
  reasons: DropReasons,
): KernelDrop | DecodeError {
  const version = b[o + 16]!;
  if (version !== 0 && version !== 4 && version !== 6) {
    return new DecodeError(
      'ERR_KDROP_BAD_VERSION',
      `kernel drop record with IP version ${version}`,
      {
        offset: o,
        field: 'ip_version',
        value: version,
      },
    );
  }
  const reason = view.getUint32(o, true);
  const v4 = version === 4;
  return {
    reason,
    reasonName: reasons.name(reason),
    netns: view.getUint32(o + 4, true),
    ifindex: view.getUint32(o + 8, true),
    ipVersion: version,
    proto: b[o + 17]!,
    src: v4 ? addr(b, o + 20) : '',
    dst: v4 ? addr(b, o + 24) : '',
    sport: view.getUint16(o + 28, true),
    dport: view.getUint16(o + 30, true),
    bytes: view.getUint32(o + 12, true),
    ipId: view.getUint16(o + 18, true),
    l3proto: view.getUint16(o + 32, true),
    skbLen: view.getUint32(o + 36, true),
    location: view.getBigUint64(o + 40, true),
  };
}

/** Every record of a batch; a trailing partial record is one error naming its length. */
export function decodeKdropBatch(
  buf: Uint8Array,
  reasons: DropReasons,
  out: KdropBatchHandler,
): void {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const whole = buf.byteLength - (buf.byteLength % KDROP_EVENT_BYTES);
  for (let o = 0; o < whole; o += KDROP_EVENT_BYTES) {
    const d = decodeKdrop(view, buf, o, reasons);
    if (d instanceof DecodeError) out.error(d);
    else out.drop(d);
  }
  if (whole !== buf.byteLength) {
    out.error(
      new DecodeError(
        'ERR_KDROP_SHORT',
        `kernel drop batch of ${buf.byteLength} bytes ends with a partial ${buf.byteLength - whole}-byte record (records are ${KDROP_EVENT_BYTES} bytes)`,
        { offset: whole, field: 'length', value: buf.byteLength },
      ),
    );
  }
}
