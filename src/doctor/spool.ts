/** The spool directory: creatable, writable (a probe file written, fsynced, removed), and with room. */
import { statfsSync } from 'node:fs';
import { prepareSpoolDir } from '../sinks/spool/spool-dir.js';
import { type CheckResult, fail, ok } from './types.js';

const MiB = 1024 * 1024;

export function checkSpool(dir: string, maxBytes: number): CheckResult[] {
  const title = `spool directory ${dir}`;
  try {
    prepareSpoolDir(dir);
  } catch (err) {
    return [
      fail(
        'spool.writable',
        title,
        `${(err as Error).message}: records could not be spooled before delivery`,
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
