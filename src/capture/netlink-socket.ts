/**
 * Typed wrapper over the native addon (native/src/netlink.c): one
 * NETLINK_NETFILTER socket that delivers drained batches, reports overruns
 * (ENOBUFS) with a count, and turns errors into NetlinkError with the errno
 * name and the operation.
 */
import { createRequire } from 'node:module';
import { FlowtrailError } from '../util/errors.js';
import { NEEDS_NET_ADMIN } from './privilege.js';

interface NativeHandle {
  readonly portid: number;
}
interface NativeStats {
  overruns: number;
  batches: number;
  datagrams: number;
  bytes: number;
  recvCalls: number;
  /** Messages the kernel dropped for want of buffer space (sk_drops). */
  kernelDrops: number;
}
interface NativeAddon {
  open(
    options: { groups?: number[]; rcvbufBytes?: number; tickMs?: number; batchBytes?: number },
    onBatch: (buf: Buffer) => void,
    onOverrun: (count: number) => void,
    onError: (err: Error & { code?: string; syscall?: string }) => void,
  ): NativeHandle;
  listen(handle: NativeHandle, ref: boolean): void;
  send(handle: NativeHandle, buf: Buffer): void;
  drain(handle: NativeHandle): void;
  close(handle: NativeHandle): void;
  stats(handle: NativeHandle): NativeStats;
}

export class NetlinkError extends FlowtrailError {
  readonly errno: string;
  readonly operation: string;
  constructor(errno: string, operation: string, message: string, cause?: unknown) {
    super(`ERR_NETLINK_${errno}`, message, { errno, operation }, { cause });
    this.errno = errno;
    this.operation = operation;
  }
}

let addon: NativeAddon | undefined;

/** Loads the addon built by node-gyp (path relative to the package root, from src/ or dist/). */
export function loadAddon(): NativeAddon {
  if (addon) return addon;
  const require = createRequire(import.meta.url);
  const path = new URL('../../native/build/Release/flowtrail_netlink.node', import.meta.url)
    .pathname;
  try {
    addon = require(path) as NativeAddon;
  } catch (err) {
    throw new FlowtrailError(
      'ERR_ADDON_MISSING',
      `the netlink addon is not built (${path}); run \`npm run build:native\` (needs python3, make, g++)`,
      { path },
      { cause: err },
    );
  }
  return addon;
}

function wrapError(err: unknown, operation: string): NetlinkError {
  const e = err as Error & { code?: string; syscall?: string };
  const errno = e.code && /^E[A-Z0-9]+$/.test(e.code) ? e.code : 'EUNKNOWN';
  const hint = errno === 'EPERM' ? `; this process ${NEEDS_NET_ADMIN}` : '';
  return new NetlinkError(errno, e.syscall ?? operation, `${operation}: ${e.message}${hint}`, err);
}

export interface NetlinkSocketOptions {
  /** Multicast groups to join (ctnetlink NEW=1, UPDATE=2, DESTROY=3). */
  groups?: number[];
  /** SO_RCVBUFFORCE size; default 32 MiB. */
  rcvbufBytes?: number;
  /** Coalescing tick after a wakeup before draining; default 10 ms. */
  tickMs?: number;
  onBatch(buf: Buffer): void;
  onOverrun?(count: number): void;
  onError?(err: NetlinkError): void;
}

export class NetlinkSocket {
  private closed = false;
  /** The counters as read at close: the addon's handle is gone after it. */
  private final: NativeStats | undefined;

  private constructor(
    private readonly native: NativeAddon,
    private readonly handle: NativeHandle,
  ) {}

  static open(options: NetlinkSocketOptions): NetlinkSocket {
    const native = loadAddon();
    let handle: NativeHandle;
    try {
      handle = native.open(
        {
          groups: options.groups ?? [],
          rcvbufBytes: options.rcvbufBytes ?? 32 * 1024 * 1024,
          tickMs: options.tickMs ?? 10,
        },
        (buf) => options.onBatch(buf),
        (count) => options.onOverrun?.(count),
        (err) => options.onError?.(wrapError(err, 'recv')),
      );
    } catch (err) {
      throw wrapError(err, 'open');
    }
    return new NetlinkSocket(native, handle);
  }

  get portid(): number {
    return this.handle.portid;
  }

  /** Starts delivering batches. `ref: false` lets the process exit while idle. */
  listen(ref = true): void {
    try {
      this.native.listen(this.handle, ref);
    } catch (err) {
      throw wrapError(err, 'listen');
    }
  }

  send(buf: Buffer): void {
    try {
      this.native.send(this.handle, buf);
    } catch (err) {
      throw wrapError(err, 'send');
    }
  }

  /**
   * Drains the socket now: what is queued reaches onBatch before this
   * returns. For reading one socket's events before another's (a dump).
   */
  drain(): void {
    if (this.closed) return;
    try {
      this.native.drain(this.handle);
    } catch (err) {
      throw wrapError(err, 'drain');
    }
  }

  /** The addon's counters; after close, as they were when it closed. */
  stats(): NativeStats {
    return this.final ?? this.native.stats(this.handle);
  }

  /** Idempotent; no callback runs after it returns. */
  close(): void {
    if (this.closed) return;
    this.final = this.native.stats(this.handle);
    this.closed = true;
    this.native.close(this.handle);
  }
}
