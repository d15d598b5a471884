/**
 * NFLOG packets from the configured groups. Binding a group is a config
 * request the kernel acknowledges; only one socket per network namespace may
 * bind a group, so a group held by another process (another flowtrail, or
 * ulogd) is reported with its number instead of failing obscurely.
 */

import { decodeNflogBatch } from '../nflog/decode.js';
import { buildNflogBindRequests, buildNflogUnbindRequest } from '../nflog/request.js';
import type { NflogPacket } from '../nflog/types.js';
import type { DecodeError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { NetlinkError, NetlinkSocket } from './netlink-socket.js';
import { errnoName, hasNetAdmin, NEEDS_NET_ADMIN } from './privilege.js';

export interface NflogListenerStats {
  packets: number;
  unparsedPrefixes: number;
  decodeErrors: number;
  overruns: number;
  batches: number;
}

export interface NflogListenerOptions {
  groups: number[];
  rcvbufBytes?: number;
  tickMs?: number;
  copyRange?: number;
  ref?: boolean;
  logger?: Logger;
  onPackets(packets: NflogPacket[]): void;
  onOverrun?(count: number): void;
  onDecodeError?(err: DecodeError): void;
  onError?(err: Error): void;
}

const ACK_TIMEOUT_MS = 5_000;

export class NflogGroupError extends NetlinkError {
  readonly group: number;
  constructor(group: number, errno: string, message: string) {
    super(errno, 'bind', message);
    this.group = group;
  }
}

export class NflogListener {
  readonly stats: NflogListenerStats = {
    packets: 0,
    unparsedPrefixes: 0,
    decodeErrors: 0,
    overruns: 0,
    batches: 0,
  };
  private socket: NetlinkSocket | undefined;
  private readonly seenBadPrefixes = new Set<string>();
  private readonly pendingAcks = new Map<number, (errno: number) => void>();
  private seq = Math.floor(Math.random() * 0x7fff_0000);
  private closed = false;

  constructor(private readonly options: NflogListenerOptions) {}

  /** Opens the socket and binds every group; rejects with NflogGroupError naming the group. */
  async start(): Promise<void> {
    this.socket = NetlinkSocket.open({
      groups: [],
      rcvbufBytes: this.options.rcvbufBytes,
      tickMs: this.options.tickMs,
      onBatch: (buf) => this.onBatch(buf),
      onOverrun: (count) => {
        this.stats.overruns += count;
        this.options.onOverrun?.(count);
      },
      onError: (err) => this.options.onError?.(err),
    });
    this.socket.listen(this.options.ref ?? true);
    try {
      for (const group of this.options.groups) {
        for (const req of buildNflogBindRequests(group, this.nextSeq(2), {
          copyRange: this.options.copyRange ?? 128,
        })) {
          const errno = await this.request(req);
          if (errno !== 0) {
            const name = errnoName(errno);
            // EPERM is also the answer without the capability: say which it is.
            if (errno === 1 && hasNetAdmin() === false) {
              throw new NetlinkError(
                'EPERM',
                'bind',
                `binding NFLOG group ${group} was refused (EPERM): this process ${NEEDS_NET_ADMIN}`,
              );
            }
            const why =
              errno === 1 || errno === 16
                ? `NFLOG group ${group} is already bound by another process in this network namespace (${name}); stop it or choose another group (nflog.ingressGroup / nflog.egressGroup)`
                : `binding NFLOG group ${group} failed (${name})`;
            throw new NflogGroupError(group, name, why);
          }
        }
      }
    } catch (err) {
      this.socket.close();
      this.socket = undefined;
      throw err;
    }
  }

  private nextSeq(n: number): number {
    const s = this.seq;
    this.seq = (this.seq + n) >>> 0;
    return s;
  }

  private request(req: Buffer): Promise<number> {
    const seq = req.readUInt32LE(8);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingAcks.delete(seq);
        reject(
          new NetlinkError(
            'ETIMEDOUT',
            'bind',
            `no answer to an NFLOG config request within ${ACK_TIMEOUT_MS} ms`,
          ),
        );
      }, ACK_TIMEOUT_MS);
      this.pendingAcks.set(seq, (errno) => {
        clearTimeout(timer);
        resolve(errno);
      });
      try {
        this.socket!.send(req);
      } catch (err) {
        clearTimeout(timer);
        this.pendingAcks.delete(seq);
        reject(err);
      }
    });
  }

  private onBatch(buf: Buffer): void {
    if (this.closed) return;
    this.stats.batches++;
    const packets: NflogPacket[] = [];
    decodeNflogBatch(buf, {
      packet: (p) => {
        packets.push(p);
        if (p.verdict === undefined) this.unparsed(p.prefix);
      },
      error: (err) => {
        this.stats.decodeErrors++;
        this.options.onDecodeError?.(err);
      },
      nlError: (seq, errno) => {
        const ack = this.pendingAcks.get(seq);
        if (ack) {
          this.pendingAcks.delete(seq);
          ack(errno);
        }
      },
    });
    this.stats.packets += packets.length;
    if (packets.length > 0) this.options.onPackets(packets);
  }

  private unparsed(prefix: string): void {
    this.stats.unparsedPrefixes++;
    if (this.seenBadPrefixes.has(prefix) || this.seenBadPrefixes.size >= 1000) return;
    this.seenBadPrefixes.add(prefix);
    this.options.logger?.warn(
      { prefix },
      'NFLOG prefix does not follow the AODIII|tier.policy convention; its packets carry no verdict (logged once per prefix)',
    );
  }

  /** The listener's counters, with the messages the kernel dropped on its socket (sk_drops). */
  readStats(): Readonly<NflogListenerStats> & { kernelDrops: number } {
    return { ...this.stats, kernelDrops: this.socket?.stats().kernelDrops ?? 0 };
  }

  /** The addon's own counters (recv calls, datagrams, bytes), for diagnostics. */
  nativeStats() {
    return this.socket?.stats();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const socket = this.socket;
    if (!socket) return;
    for (const group of this.options.groups) {
      try {
        socket.send(buildNflogUnbindRequest(group, this.nextSeq(1)));
      } catch {
        // Closing the socket unbinds too.
      }
    }
    socket.close();
  }
}
