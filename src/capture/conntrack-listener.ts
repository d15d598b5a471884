/**
 * Conntrack events and dumps over ctnetlink.
 *
 * The event socket joins NEW and DESTROY (UPDATE optional: it multiplies the
 * event rate and counters come from dumps anyway). Every batch the kernel
 * delivers is decoded in one go: each event goes to `onEvent` as a reused
 * view (no allocation per event: the agent's hot path), and/or the batch goes
 * to `onEvents` as an array of stable events. When the socket overran
 * (ENOBUFS: the kernel dropped events), the listener reports the overrun;
 * with `onResync` it also runs a resync dump itself, so no open connection
 * stays unknown (the capture command). The agent passes none: its core takes
 * the resync dump, one dump at a time with the others (src/agent/core.ts).
 */

import {
  type ConntrackEventView,
  decodeConntrackBatch,
  decodeConntrackBatchView,
} from '../conntrack/decode.js';
import {
  buildDumpRequest,
  CT_GROUP_DESTROY,
  CT_GROUP_NEW,
  CT_GROUP_UPDATE,
} from '../conntrack/request.js';
import type { ConntrackEvent } from '../conntrack/types.js';
import type { DecodeError } from '../util/errors.js';
import { NetlinkError, NetlinkSocket } from './netlink-socket.js';
import { errnoName, NEEDS_NET_ADMIN } from './privilege.js';

export interface ConntrackListenerStats {
  new: number;
  update: number;
  destroy: number;
  dumped: number;
  dumps: number;
  overruns: number;
  resyncs: number;
  decodeErrors: number;
  batches: number;
}

export interface OverrunInfo {
  /** ENOBUFS errors seen in the drain (each means one or more lost events). */
  count: number;
  atMs: number;
}

export interface ConntrackListenerOptions {
  subscribeUpdates?: boolean;
  rcvbufBytes?: number;
  tickMs?: number;
  /** Keep the event loop alive while listening (default true). */
  ref?: boolean;
  now?: () => number;
  /**
   * Each event of a batch, as it is decoded. `ev` is a view the decoder
   * reuses for the next event as soon as this returns: read it here, or keep
   * `ev.copy()` (see ConntrackEventView).
   */
  onEvent?(ev: ConntrackEventView): void;
  /** Each batch as an array of events the callee may keep (one object per event). */
  onEvents?(events: ConntrackEvent[]): void;
  onOverrun?(info: OverrunInfo): void;
  /** The resync dump that follows an overrun; without it, the listener takes none. */
  onResync?(events: ConntrackEvent[], info: OverrunInfo): void;
  onDecodeError?(err: DecodeError): void;
  onError?(err: Error): void;
}

const DUMP_TIMEOUT_MS = 30_000;
const DUMP_RETRIES = 3;

let seqCounter = Math.floor(Math.random() * 0x7fff_0000);
function nextSeq(): number {
  seqCounter = (seqCounter + 1) >>> 0;
  return seqCounter;
}

/**
 * One dump on its own socket: resolves with every entry (fromDump events).
 * An interrupted dump (NLM_F_DUMP_INTR: the table changed under it) is retried.
 */
export async function dumpConntrack(
  options: { rcvbufBytes?: number; onDecodeError?(err: DecodeError): void } = {},
): Promise<ConntrackEvent[]> {
  for (let attempt = 1; ; attempt++) {
    const events: ConntrackEvent[] = [];
    const result = await dumpOnce(options, (ev) => events.push(ev), false);
    if (!result.interrupted || attempt >= DUMP_RETRIES) return events;
  }
}

/**
 * A dump whose entries are handed to `onEvent` as they are decoded, as one
 * reused view (keep nothing of it): no array of every connection is built.
 * An interrupted dump is walked again, so `onEvent` must be idempotent per
 * entry (the flow table's dump entries are). Resolves with the entry count
 * of the last pass.
 */
export async function dumpConntrackInto(
  onEvent: (ev: ConntrackEvent) => void,
  options: {
    rcvbufBytes?: number;
    onDecodeError?(err: DecodeError): void;
    /** Called before each batch of entries is decoded (the agent drains its event socket there). */
    beforeBatch?(): void;
  } = {},
): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    let n = 0;
    const result = await dumpOnce(
      options,
      (ev) => {
        n++;
        onEvent(ev);
      },
      true,
    );
    if (!result.interrupted || attempt >= DUMP_RETRIES) return n;
  }
}

function dumpOnce(
  options: {
    rcvbufBytes?: number;
    onDecodeError?(err: DecodeError): void;
    beforeBatch?(): void;
  },
  onEvent: (ev: ConntrackEvent) => void,
  view: boolean,
): Promise<{ interrupted: boolean }> {
  return new Promise((resolve, reject) => {
    const decode = view ? decodeConntrackBatchView : decodeConntrackBatch;
    const seq = nextSeq();
    let interrupted = false;
    let settled = false;
    let socket: NetlinkSocket | undefined;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket?.close();
      if (err) reject(err);
      else resolve({ interrupted });
    };
    const timer = setTimeout(
      () =>
        finish(
          new NetlinkError(
            'ETIMEDOUT',
            'dump',
            `conntrack dump did not finish within ${DUMP_TIMEOUT_MS} ms`,
          ),
        ),
      DUMP_TIMEOUT_MS,
    );
    try {
      socket = NetlinkSocket.open({
        groups: [],
        rcvbufBytes: options.rcvbufBytes ?? 32 * 1024 * 1024,
        tickMs: 0,
        onBatch: (buf) => {
          options.beforeBatch?.();
          decode(
            buf,
            {
              event: onEvent,
              error: (err) => options.onDecodeError?.(err),
              done: (doneSeq, intr) => {
                if (doneSeq !== seq) return;
                interrupted = intr;
                finish();
              },
              nlError: (errSeq, errno) => {
                if (errSeq === seq && errno !== 0) {
                  const name = errnoName(errno);
                  finish(
                    new NetlinkError(
                      name,
                      'dump',
                      `conntrack dump refused by the kernel (${name})${name === 'EPERM' ? `: this process ${NEEDS_NET_ADMIN}` : ''}`,
                    ),
                  );
                }
              },
            },
            { fromDump: true },
          );
        },
        onOverrun: () =>
          finish(
            new NetlinkError(
              'ENOBUFS',
              'dump',
              'conntrack dump overran its receive buffer; raise conntrack.receiveBufferBytes',
            ),
          ),
        onError: (err) => finish(err),
      });
      socket.listen(true);
      socket.send(buildDumpRequest(seq));
    } catch (err) {
      finish(err as Error);
    }
  });
}

export class ConntrackListener {
  readonly stats: ConntrackListenerStats = {
    new: 0,
    update: 0,
    destroy: 0,
    dumped: 0,
    dumps: 0,
    overruns: 0,
    resyncs: 0,
    decodeErrors: 0,
    batches: 0,
  };
  private socket: NetlinkSocket | undefined;
  private resyncing: Promise<void> | undefined;
  private resyncAgain: OverrunInfo | undefined;
  private closed = false;
  private readonly now: () => number;

  constructor(private readonly options: ConntrackListenerOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Opens the event socket; events flow from here on. */
  start(): void {
    const groups = [CT_GROUP_NEW, CT_GROUP_DESTROY];
    if (this.options.subscribeUpdates) groups.push(CT_GROUP_UPDATE);
    this.socket = NetlinkSocket.open({
      groups,
      rcvbufBytes: this.options.rcvbufBytes,
      tickMs: this.options.tickMs,
      onBatch: (buf) => this.onBatch(buf),
      onOverrun: (count) => this.onOverrun(count),
      onError: (err) => this.options.onError?.(err),
    });
    this.socket.listen(this.options.ref ?? true);
  }

  private readonly decodeError = (err: DecodeError): void => {
    this.stats.decodeErrors++;
    this.options.onDecodeError?.(err);
  };

  private onBatch(buf: Buffer): void {
    if (this.closed) return;
    this.stats.batches++;
    const { onEvent, onEvents } = this.options;
    const stats = this.stats;
    if (onEvent === undefined) {
      // Only the array form: decode straight into stable events.
      const events: ConntrackEvent[] = [];
      decodeConntrackBatch(buf, {
        event: (ev) => {
          events.push(ev);
          stats[ev.type]++;
        },
        error: this.decodeError,
      });
      if (events.length > 0) onEvents?.(events);
      return;
    }
    const events: ConntrackEvent[] | undefined = onEvents ? [] : undefined;
    decodeConntrackBatchView(buf, {
      event: (ev) => {
        stats[ev.type]++;
        onEvent(ev);
        events?.push(ev.copy());
      },
      error: this.decodeError,
    });
    if (events !== undefined && events.length > 0) onEvents?.(events);
  }

  private onOverrun(count: number): void {
    if (this.closed) return;
    this.stats.overruns += count;
    const info = { count, atMs: this.now() };
    this.options.onOverrun?.(info);
    if (!this.options.onResync) return;
    // One resync at a time. An overrun during a resync may have lost events
    // the running dump already walked past: run one more after it.
    if (this.resyncing) {
      this.resyncAgain = info;
      return;
    }
    this.resync(info);
  }

  private resync(info: OverrunInfo): void {
    this.resyncing = this.dump()
      .then((events) => {
        this.stats.resyncs++;
        if (!this.closed) this.options.onResync?.(events, info);
      })
      .catch((err: Error) => this.options.onError?.(err))
      .finally(() => {
        this.resyncing = undefined;
        const again = this.resyncAgain;
        this.resyncAgain = undefined;
        if (again && !this.closed) this.resync(again);
      });
  }

  async dump(): Promise<ConntrackEvent[]> {
    const events = await dumpConntrack({
      rcvbufBytes: this.options.rcvbufBytes,
      onDecodeError: (err) => {
        this.stats.decodeErrors++;
        this.options.onDecodeError?.(err);
      },
    });
    this.stats.dumps++;
    this.stats.dumped += events.length;
    return events;
  }

  /**
   * A dump streamed into `onEvent` (see dumpConntrackInto); resolves with the
   * entry count. Before each batch of entries the event socket is drained:
   * every event queued before the batch was generated reaches `onEvent`
   * first, so no entry is younger than an event still unread.
   */
  async dumpInto(onEvent: (ev: ConntrackEvent) => void): Promise<number> {
    const n = await dumpConntrackInto(onEvent, {
      beforeBatch: () => this.socket?.drain(),
      rcvbufBytes: this.options.rcvbufBytes,
      onDecodeError: (err) => {
        this.stats.decodeErrors++;
        this.options.onDecodeError?.(err);
      },
    });
    this.stats.dumps++;
    this.stats.dumped += n;
    return n;
  }

  /** The listener's counters, with the messages the kernel dropped on its socket (sk_drops). */
  readStats(): Readonly<ConntrackListenerStats> & { kernelDrops: number } {
    return { ...this.stats, kernelDrops: this.socket?.stats().kernelDrops ?? 0 };
  }

  /** The addon's own counters (recv calls, datagrams, bytes), for diagnostics. */
  nativeStats() {
    return this.socket?.stats();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.socket?.close();
    while (this.resyncing) await this.resyncing;
  }
}
