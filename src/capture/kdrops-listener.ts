/**
 * The kernel drop source at the edge: loads the addon
 * (native/src/kdrops.c), attaches the kfree_skb program filtered to this
 * process's network namespace, decodes each drained batch and hands the drops
 * on, one call per batch.
 */
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { decodeKdropBatch } from '../kdrops/decode.js';
import { ReasonTable } from '../kdrops/reasons.js';
import type { KernelDrop } from '../kdrops/types.js';
import type { DecodeError } from '../util/errors.js';
import { FlowtrailError } from '../util/errors.js';
import type { Logger } from '../util/log.js';

/** What the kernel's BTF says: its drop reasons, and whether the kfree_skb tracepoint is there. */
export interface KernelBtf {
  values: number[];
  names: string[];
  tracepoint: boolean;
}

interface NativeHandle {
  readonly __kdrops?: never;
}
export interface KdropsNativeStats {
  events: number;
  batches: number;
  wakeups: number;
  /** Drops the ring buffer had no room for (lost, counted in the kernel). */
  lost: number;
}
interface KdropsAddon {
  open(
    options: { netns: number; tickMs?: number; ringBytes?: number },
    onBatch: (buf: Buffer) => void,
    onError: (err: Error & { code?: string }) => void,
  ): NativeHandle;
  listen(handle: NativeHandle, ref: boolean): void;
  drain(handle: NativeHandle): void;
  close(handle: NativeHandle): void;
  stats(handle: NativeHandle): KdropsNativeStats;
  reasons(): KernelBtf;
}

export const KDROPS_ADDON_PATH = new URL(
  '../../native/build/Release/flowtrail_kdrops.node',
  import.meta.url,
).pathname;

/** The kernel drop source cannot run here; `fix` says what would make it run. */
export class KernelDropsUnavailable extends FlowtrailError {
  constructor(
    code: string,
    message: string,
    readonly fix: string,
    cause?: unknown,
  ) {
    super(code, message, { fix }, { cause });
  }
}

let addon: KdropsAddon | undefined;

/** The addon, or KernelDropsUnavailable (ERR_KDROPS_NOT_BUILT) when it was not built here. */
export function loadKdropsAddon(): KdropsAddon {
  if (addon) return addon;
  const require = createRequire(import.meta.url);
  try {
    addon = require(KDROPS_ADDON_PATH) as KdropsAddon;
  } catch (err) {
    throw new KernelDropsUnavailable(
      'ERR_KDROPS_NOT_BUILT',
      `the kernel drop addon is not built (${KDROPS_ADDON_PATH})`,
      'install clang, bpftool and libbpf-dev (Debian names) and run `npm run build:native`; the image has it built',
      err,
    );
  }
  return addon;
}

/** This process's network namespace inode (what the program filters on). */
export function ownNetnsInode(): number {
  return statSync('/proc/self/ns/net').ino;
}

/** The running kernel's drop reasons from its BTF (KernelDropsUnavailable without BTF or the enum). */
export function kernelReasons(): ReasonTable {
  return new ReasonTable(kernelBtf());
}

/** The kernel's BTF facts (KernelDropsUnavailable without BTF or the drop reason enum). */
export function kernelBtf(): KernelBtf {
  const a = loadKdropsAddon();
  try {
    return a.reasons();
  } catch (err) {
    throw new KernelDropsUnavailable(
      'ERR_KDROPS_NO_BTF',
      `the kernel's drop reasons are not readable: ${(err as Error).message}`,
      'kernel drop events need a kernel >= 5.17 built with CONFIG_DEBUG_INFO_BTF (/sys/kernel/btf/vmlinux); use denies.source: nflog on this node',
      err,
    );
  }
}

export interface KernelDropListenerOptions {
  /** Network namespace inode to keep (default: this process's). */
  netns?: number;
  tickMs?: number;
  ringBytes?: number;
  ref?: boolean;
  logger?: Logger;
  onDrops(drops: KernelDrop[]): void;
  onDecodeError?(err: DecodeError): void;
  onError?(err: Error): void;
}

export interface KernelDropListenerStats {
  drops: number;
  decodeErrors: number;
  batches: number;
}

export class KernelDropListener {
  readonly stats: KernelDropListenerStats = { drops: 0, decodeErrors: 0, batches: 0 };
  private handle: NativeHandle | undefined;
  private native: KdropsAddon | undefined;
  private reasons: ReasonTable | undefined;
  private closed = false;
  /** Ring buffer losses as last read from the program (kept after close). */
  private lost = 0;

  constructor(private readonly o: KernelDropListenerOptions) {}

  /** Loads and attaches the program; throws KernelDropsUnavailable with the fix when it cannot. */
  start(): void {
    const native = loadKdropsAddon();
    this.reasons = kernelReasons();
    try {
      this.handle = native.open(
        {
          netns: this.o.netns ?? ownNetnsInode(),
          tickMs: this.o.tickMs,
          ringBytes: this.o.ringBytes,
        },
        (buf) => this.onBatch(buf),
        (err) => this.o.onError?.(err),
      );
    } catch (err) {
      const e = err as Error & { code?: string };
      const perm = e.code === 'EPERM' || e.code === 'EACCES';
      throw new KernelDropsUnavailable(
        perm ? 'ERR_KDROPS_PERMISSION' : 'ERR_KDROPS_LOAD',
        e.message,
        perm
          ? 'loading BPF tracing programs needs CAP_BPF and CAP_PERFMON (deploy/kubernetes/components/kernel-drops adds them), or CAP_SYS_ADMIN on kernels before 5.8'
          : 'run `flowtrail doctor` for the kernel checks; denies.source: nflog works without the kernel source',
        err,
      );
    }
    this.native = native;
    native.listen(this.handle, this.o.ref ?? true);
  }

  /** Delivers what the ring buffer holds now (before a flush, at stop). */
  drain(): void {
    if (this.handle && this.native && !this.closed) this.native.drain(this.handle);
  }

  private onBatch(buf: Buffer): void {
    if (this.closed || !this.reasons) return;
    this.stats.batches++;
    const drops: KernelDrop[] = [];
    decodeKdropBatch(buf, this.reasons, {
      drop: (d) => drops.push(d),
      error: (err) => {
        this.stats.decodeErrors++;
        this.o.onDecodeError?.(err);
      },
    });
    this.stats.drops += drops.length;
    if (drops.length > 0) this.o.onDrops(drops);
  }

  /** The listener's counters, with the drops the ring buffer had no room for (still read after close). */
  readStats(): Readonly<KernelDropListenerStats> & { lost: number } {
    if (this.handle && this.native && !this.closed) this.lost = this.native.stats(this.handle).lost;
    return { ...this.stats, lost: this.lost };
  }

  /** Detaches the program. Idempotent. */
  close(): void {
    if (this.closed) return;
    if (this.handle && this.native) {
      this.lost = this.native.stats(this.handle).lost;
      this.native.close(this.handle);
    }
    this.closed = true;
  }
}
