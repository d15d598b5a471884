/**
 * The spool directory made ready before anything depends on it: created if
 * missing, a directory, and writable (a probe file written, fsynced and
 * removed). A problem is one SpoolError naming `spool.dir`, the path, the
 * errno and what it means, never a bare Node stack.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { errnoOf, SpoolError } from './spool.js';

const MEANING: Record<string, string> = {
  ENOTDIR: 'a path component is a file, not a directory',
  EEXIST: 'it exists and is not a directory',
  EROFS: 'it is on a read-only filesystem',
  EACCES: 'this process may not write there',
  EPERM: 'this process may not write there',
  ENOSPC: 'its filesystem is full',
  EDQUOT: 'the disk quota is exhausted',
  ENOENT: 'a parent directory is missing',
};

function problem(dir: string, err: unknown, step: string): SpoolError {
  const errno = errnoOf(err);
  const meaning = MEANING[errno] ?? (err as Error).message;
  return new SpoolError(
    'ERR_SPOOL_DIR',
    `spool.dir ${dir}: cannot ${step} (${errno}: ${meaning}); point spool.dir at a writable directory`,
    { path: dir, errno },
    err,
  );
}

/** Creates `dir` if needed and proves it is a writable directory; throws SpoolError otherwise. */
export function prepareSpoolDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    // A recursive mkdir reports ENOENT for some failures (EROFS, EACCES)
    // when the parent exists: one plain mkdir names the real cause.
    let cause = err;
    if (errnoOf(err) === 'ENOENT') {
      try {
        mkdirSync(dir);
      } catch (again) {
        cause = again;
      }
    }
    throw problem(dir, cause, 'create it');
  }
  try {
    if (!statSync(dir).isDirectory())
      throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
  } catch (err) {
    throw problem(dir, err, 'use it');
  }
  const probe = join(dir, `.probe-${process.pid}`);
  try {
    const fd = openSync(probe, 'w');
    try {
      writeSync(fd, 'flowtrail\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    rmSync(probe, { force: true });
    throw problem(dir, err, 'write in it');
  }
  rmSync(probe, { force: true });
}
