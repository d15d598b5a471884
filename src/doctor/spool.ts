/** The spool directory: creatable, writable (a probe file written, fsynced, removed), and with room. */
import { closeSync, fsyncSync, mkdirSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { type CheckResult, errnoOf, fail, ok } from './types.js';

const MiB = 1024 * 1024;

export function checkSpool(dir: string, maxBytes: number): CheckResult[] {
  const title = `spool directory ${dir}`;
  const probe = join(dir, `.doctor-${process.pid}`);
  try {
    mkdirSync(dir, { recursive: true });
    const fd = openSync(probe, 'w');
    try {
      writeSync(fd, 'flowtrail doctor\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    rmSync(probe, { force: true });
  } catch (err) {
    return [
      fail(
        'spool.writable',
        title,
        `cannot create or write in it (${errnoOf(err)}): records could not be spooled before delivery`,
        'point spool.dir at a writable directory (the DaemonSet mounts a hostPath at /var/lib/flowtrail)',
      ),
    ];
  }
  const out = [ok('spool.writable', title, 'created, written, fsynced and removed a probe file')];
  const fs = statfsSync(dir);
  const free = fs.bavail * fs.bsize;
  out.push(
    free >= maxBytes
      ? ok(
          'spool.space',
          'room for spool.maxBytes',
          `${(free / MiB).toFixed(0)} MiB free ≥ spool.maxBytes ${(maxBytes / MiB).toFixed(0)} MiB`,
        )
      : fail(
          'spool.space',
          'room for spool.maxBytes',
          `${(free / MiB).toFixed(0)} MiB free < spool.maxBytes ${(maxBytes / MiB).toFixed(0)} MiB: an outage could fill the disk`,
          'lower spool.maxBytes or give the spool a larger volume',
        ),
  );
  return out;
}
