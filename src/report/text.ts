/**
 * An answer's rows as a terminal table (cli-table3), for `flowtrail report`
 * and the demo: the policies column only when some row names policies
 * (27-field records). The table comes from the caller's style
 * (src/cli/output.ts), which decides whether it is coloured.
 */
import type Table from 'cli-table3';
import { namesPolicies, type PairRow } from './analyze.js';

export function pairsTable(
  rows: readonly PairRow[],
  limit: number,
  newTable: (head: readonly string[]) => Table.Table,
): string {
  const withPolicies = namesPolicies(rows);
  const head = ['source', 'destination', 'port', 'proto', 'flows', 'packets', 'bytes'];
  const t = newTable(withPolicies ? [...head, 'policies'] : head);
  for (const r of rows.slice(0, limit)) {
    const cells: (string | number)[] = [
      r.src,
      r.dst,
      r.dstPort,
      r.proto,
      r.flows,
      r.packets,
      r.bytes,
    ];
    if (withPolicies) cells.push(r.policies.join('\n'));
    t.push(cells);
  }
  return t.toString();
}
