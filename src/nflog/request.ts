/** NFLOG configuration requests: bind a group, copy mode, buffer sizes. */
import { NLM_F_ACK, NLM_F_REQUEST, writeNfHeader } from '../netlink/frame.js';
import {
  NFULA_CFG_CMD,
  NFULA_CFG_MODE,
  NFULA_CFG_NLBUFSIZ,
  NFULA_CFG_QTHRESH,
  NFULA_CFG_TIMEOUT,
  NFULNL_CFG_CMD_BIND,
  NFULNL_CFG_CMD_UNBIND,
  NFULNL_COPY_PACKET,
  NFULNL_MSG_CONFIG,
} from './constants.js';

export interface NflogBindOptions {
  /** Bytes of each packet copied to us: the IP and L4 headers are enough. */
  copyRange?: number;
  /** Kernel-side buffer before a flush to us (bytes). */
  nlbufsiz?: number;
  /** Flush timeout in 1/100 s. */
  timeoutCs?: number;
  /** Packets queued before a flush. */
  qthresh?: number;
}

function configMessage(
  group: number,
  seq: number,
  attrs: { type: number; value: Buffer }[],
): Buffer {
  const bodyLen = attrs.reduce((n, a) => n + 4 + ((a.value.length + 3) & ~3), 0);
  const total = 20 + bodyLen;
  const buf = Buffer.alloc(total);
  // AF_UNSPEC: modern kernels need no per-family PF_BIND.
  let o = writeNfHeader(buf, total, NFULNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, seq, 0, group);
  for (const a of attrs) {
    buf.writeUInt16LE(4 + a.value.length, o);
    buf.writeUInt16LE(a.type, o + 2);
    a.value.copy(buf, o + 4);
    o += 4 + ((a.value.length + 3) & ~3);
  }
  return buf;
}

function be32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** The config messages to send, in order, each answered by an ACK or an error. */
export function buildNflogBindRequests(
  group: number,
  seq: number,
  opts: NflogBindOptions = {},
): Buffer[] {
  const mode = Buffer.alloc(6); // struct nfulnl_msg_config_mode { __be32 copy_range; __u8 copy_mode; __u8 pad; }
  mode.writeUInt32BE(opts.copyRange ?? 128, 0);
  mode[4] = NFULNL_COPY_PACKET;
  return [
    configMessage(group, seq, [{ type: NFULA_CFG_CMD, value: Buffer.from([NFULNL_CFG_CMD_BIND]) }]),
    configMessage(group, seq + 1, [
      { type: NFULA_CFG_MODE, value: mode },
      { type: NFULA_CFG_NLBUFSIZ, value: be32(opts.nlbufsiz ?? 65536) },
      { type: NFULA_CFG_TIMEOUT, value: be32(opts.timeoutCs ?? 1) },
      { type: NFULA_CFG_QTHRESH, value: be32(opts.qthresh ?? 64) },
    ]),
  ];
}

export function buildNflogUnbindRequest(group: number, seq: number): Buffer {
  return configMessage(group, seq, [
    { type: NFULA_CFG_CMD, value: Buffer.from([NFULNL_CFG_CMD_UNBIND]) },
  ]);
}
