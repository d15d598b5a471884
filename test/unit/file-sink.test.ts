import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createFileSink, createStdoutSink } from '../../src/sinks/file-sink.js';
import type { EncodedRecord } from '../../src/sinks/types.js';

function lines(n: number, tag: string): EncodedRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    line: `${tag}-${i} ${'x'.repeat(20)}`,
    timestampMs: i,
  }));
}

describe('file sink', () => {
  it('appends one record per line across flushes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ft-file-'));
    const sink = createFileSink({ path: join(dir, 'flows.log'), maxBytes: 1 << 20, maxFiles: 2 });
    await sink.start();
    await sink.write(lines(3, 'a'));
    await sink.write(lines(2, 'b'));
    await sink.close();
    const text = readFileSync(join(dir, 'flows.log'), 'utf8');
    expect(
      text
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(' ')[0]),
    ).toEqual(['a-0', 'a-1', 'a-2', 'b-0', 'b-1']);
    expect(sink.stats.recordsWritten).toBe(5);
  });

  it('rotates by size and keeps maxFiles old files, losing no line of the kept files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ft-file-'));
    const path = join(dir, 'flows.log');
    const sink = createFileSink({ path, maxBytes: 100, maxFiles: 2 });
    await sink.start();
    for (const tag of ['a', 'b', 'c', 'd']) await sink.write(lines(3, tag)); // 3 × 27 bytes each
    await sink.close();
    expect(sink.stats.rotations).toBe(3);
    const first = (p: string) => readFileSync(p, 'utf8').split('\n')[0]?.split(' ')[0];
    expect(first(path)).toBe('d-0');
    expect(first(`${path}.1`)).toBe('c-0');
    expect(first(`${path}.2`)).toBe('b-0');
    expect(existsSync(`${path}.3`)).toBe(false);
  });

  it('fails at start with the path and errno name when the file cannot be opened', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ft-file-'));
    const sink = createFileSink({
      path: join(dir, 'missing-dir', 'flows.log'),
      maxBytes: 100,
      maxFiles: 1,
    });
    await expect(sink.start()).rejects.toThrow(/file sink: cannot open .*flows\.log \(ENOENT\)/);
  });

  it('reports unhealthy with the reason after a failed write, and recovers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ft-file-'));
    const path = join(dir, 'flows.log');
    const sink = createFileSink({ path, maxBytes: 1 << 20, maxFiles: 1 });
    await sink.start();
    // A directory where the file should be: open() fails even for root.
    rmSync(path);
    mkdirSync(path);
    await expect(sink.write(lines(1, 'a'))).rejects.toThrow(/cannot write .*flows\.log \(EISDIR\)/);
    expect(sink.health()).toMatchObject({
      healthy: false,
      reason: expect.stringContaining('EISDIR'),
    });
    rmSync(path, { recursive: true });
    await sink.write(lines(1, 'b'));
    expect(sink.health()).toEqual({ healthy: true });
    expect(readFileSync(path, 'utf8')).toMatch(/^b-0 /);
  });
});

describe('stdout sink', () => {
  /** A stream that takes `ok` writes, then fails every write with `code`. */
  function failingAfter(ok: number, code: string): Writable & { got: string[] } {
    const got: string[] = [];
    const w = new Writable({
      write(chunk, _enc, cb) {
        if (got.length < ok) {
          got.push(String(chunk));
          cb();
        } else cb(Object.assign(new Error(`write ${code}`), { code }));
      },
    });
    w.on('error', () => {});
    return Object.assign(w, { got });
  }

  it('a reader that went away (EPIPE) ends its writes quietly; the records written before count', async () => {
    const out = failingAfter(1, 'EPIPE');
    const sink = createStdoutSink(out);
    await sink.write(lines(2, 'a'));
    await expect(sink.write(lines(3, 'b'))).resolves.toBeUndefined();
    await expect(sink.write(lines(1, 'c'))).resolves.toBeUndefined();
    expect(out.got).toEqual(['a-0 xxxxxxxxxxxxxxxxxxxx\na-1 xxxxxxxxxxxxxxxxxxxx\n']);
    expect(sink.stats).toEqual({ recordsWritten: 2, readerGone: true });
  });

  it('any other write error still fails the write', async () => {
    const sink = createStdoutSink(failingAfter(0, 'ENOSPC'));
    await expect(sink.write(lines(1, 'a'))).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(sink.stats.readerGone).toBe(false);
  });
});
