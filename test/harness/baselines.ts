/** Baseline snapshots for unit tests: through the real file codec, and as keyed text to assert on. */
import { decodeBaselines, encodeBaselines } from '../../src/agent/baselines.js';
import {
  type BaselineSnapshot,
  R_COMPLETED,
  R_FLAGS,
  R_KSTART,
  R_UNTIL,
  RI,
  RN,
  rowKey,
} from '../../src/flows/baseline-snapshot.js';

/** What a restart reads back: the snapshot through the file's bytes. */
export function roundTrip(s: BaselineSnapshot): BaselineSnapshot {
  const d = decodeBaselines(encodeBaselines(s, 0));
  if ('error' in d) throw new Error(d.error);
  return d.snapshot;
}

/** Rows by key: counters, then (completed) the expiry, then the kernel start when known. */
export function keyed(s: BaselineSnapshot): {
  connections: Record<string, number[]>;
  completed: Record<string, number[]>;
} {
  const connections: Record<string, number[]> = {};
  const completed: Record<string, number[]> = {};
  for (let r = 0; r < s.count; r++) {
    const n = [...s.nums.subarray(r * RN, r * RN + 4)];
    const kstart = s.nums[r * RN + R_KSTART]!;
    if ((s.ints[r * RI + R_FLAGS]! & R_COMPLETED) !== 0) {
      n.push(s.nums[r * RN + R_UNTIL]!);
      completed[rowKey(s, r)] = Number.isNaN(kstart) ? n : [...n, kstart];
    } else {
      connections[rowKey(s, r)] = Number.isNaN(kstart) ? n : [...n, kstart];
    }
  }
  return { connections, completed };
}
