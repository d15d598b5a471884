/**
 * FileSink: one record per line, appended once per flush and fsynced before
 * write() resolves, rotated by size (path → path.1 → … → path.N, oldest
 * removed). For existing log pipelines (Fluent Bit tailing a file) and for
 * `flowtrail report --file`.
 */
import { open, rename, rm, stat } from 'node:fs/promises';
import { FlowtrailError } from '../util/errors.js';
import type { EncodedRecord, Sink, SinkHealth } from './types.js';

export interface FileSinkOptions {
  path: string;
  /** Rotate when the current file would grow past this many bytes. */
  maxBytes: number;
  /** Rotated files kept besides the current one. */
  maxFiles: number;
}

export interface FileSinkStats {
  recordsWritten: number;
  bytesWritten: number;
  rotations: number;
  errors: number;
}

class FileSink implements Sink {
  readonly name = 'file';
  private size = 0;
  private lastError: string | undefined;
  private chain: Promise<void> = Promise.resolve();
  readonly stats: FileSinkStats = { recordsWritten: 0, bytesWritten: 0, rotations: 0, errors: 0 };

  constructor(private readonly options: FileSinkOptions) {}

  async start(): Promise<void> {
    try {
      this.size = (await stat(this.options.path)).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw this.wrap(err, 'stat');
      this.size = 0;
    }
    // Fail at start, not at the first flush, when the file cannot be written.
    const handle = await open(this.options.path, 'a').catch((err: unknown) => {
      throw this.wrap(err, 'open');
    });
    await handle.close();
  }

  write(lines: readonly EncodedRecord[]): Promise<void> {
    // Serialise writes so rotation never interleaves with an append.
    const next = this.chain.then(() => this.append(lines));
    this.chain = next.catch(() => {});
    return next;
  }

  private async append(lines: readonly EncodedRecord[]): Promise<void> {
    if (lines.length === 0) return;
    const text = `${lines.map((l) => l.line).join('\n')}\n`;
    const bytes = Buffer.byteLength(text);
    if (this.size > 0 && this.size + bytes > this.options.maxBytes) await this.rotate();
    let handle: Awaited<ReturnType<typeof open>> | undefined;
    try {
      handle = await open(this.options.path, 'a');
      await handle.write(text);
      await handle.sync();
      this.size += bytes;
      this.stats.recordsWritten += lines.length;
      this.stats.bytesWritten += bytes;
      this.lastError = undefined;
    } catch (err) {
      this.stats.errors++;
      const wrapped = this.wrap(err, 'write');
      this.lastError = wrapped.message;
      throw wrapped;
    } finally {
      await handle?.close();
    }
  }

  private async rotate(): Promise<void> {
    const { path, maxFiles } = this.options;
    await rm(`${path}.${maxFiles}`, { force: true });
    for (let i = maxFiles - 1; i >= 1; i--) {
      await rename(`${path}.${i}`, `${path}.${i + 1}`).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw this.wrap(err, 'rotate');
      });
    }
    await rename(path, `${path}.1`).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw this.wrap(err, 'rotate');
    });
    this.size = 0;
    this.stats.rotations++;
  }

  private wrap(err: unknown, operation: string): FlowtrailError {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    return new FlowtrailError(
      'ERR_FILE_SINK',
      `file sink: cannot ${operation} ${this.options.path} (${code})`,
      { path: this.options.path, operation, errno: code },
      { cause: err },
    );
  }

  async close(): Promise<void> {
    await this.chain;
  }

  health(): SinkHealth {
    return this.lastError === undefined
      ? { healthy: true }
      : { healthy: false, reason: this.lastError };
  }
}

export function createFileSink(options: FileSinkOptions): Sink & { readonly stats: FileSinkStats } {
  return new FileSink(options);
}

/**
 * StdoutSink: records on stdout, one a line, for log routers that read
 * container output. A reader that went away (EPIPE, `--stdout | head`) is
 * not a failure: nothing more is written there, and the CLI stops the agent
 * as on SIGTERM (src/cli/agent.ts), so the other sinks still get the last
 * interval.
 */
export function createStdoutSink(
  out: NodeJS.WritableStream = process.stdout,
): Sink & { readonly stats: { recordsWritten: number; readerGone: boolean } } {
  const stats = { recordsWritten: 0, readerGone: false };
  return {
    name: 'stdout',
    stats,
    async start() {},
    write(lines) {
      if (lines.length === 0 || stats.readerGone) return Promise.resolve();
      const text = `${lines.map((l) => l.line).join('\n')}\n`;
      return new Promise<void>((resolve, reject) => {
        out.write(text, (err) => {
          const code = (err as NodeJS.ErrnoException | null | undefined)?.code;
          if (code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED') {
            stats.readerGone = true;
            resolve();
          } else if (err) {
            reject(err);
          } else {
            stats.recordsWritten += lines.length;
            resolve();
          }
        });
      });
    },
    async close() {},
    health: () => ({ healthy: true }),
  };
}
