/**
 * Ground truth from the kernel: the node namespace's conntrack table as
 * `conntrack -L` prints it, parsed into typed entries with their counters.
 * Tests compare flowtrail's records with these numbers, exactly.
 */
import type { SimNode } from './simnode.js';

export interface TruthTuple {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  packets: number;
  bytes: number;
}

export interface TruthEntry {
  family: 'ipv4' | 'ipv6';
  proto: number;
  protoName: string;
  state: string | undefined;
  orig: TruthTuple;
  reply: TruthTuple;
}

export function parseConntrackList(text: string): TruthEntry[] {
  const entries: TruthEntry[] = [];
  for (const line of text.split('\n')) {
    const tokens = line.trim().split(/\s+/);
    if (tokens.length < 6 || (tokens[0] !== 'ipv4' && tokens[0] !== 'ipv6')) continue;
    const protoName = tokens[2]!;
    const proto = Number(tokens[3]);
    const state = /^[A-Z_]+$/.test(tokens[5] ?? '') ? tokens[5] : undefined;
    const tuples: TruthTuple[] = [];
    let cur: Partial<TruthTuple> | undefined;
    for (const tok of tokens) {
      const eq = tok.indexOf('=');
      if (eq < 0) continue;
      const key = tok.slice(0, eq);
      const value = tok.slice(eq + 1);
      if (key === 'src') {
        cur = { src: value, sport: 0, dport: 0, packets: 0, bytes: 0 };
        tuples.push(cur as TruthTuple);
      } else if (cur && key === 'dst') cur.dst = value;
      else if (cur && (key === 'sport' || key === 'id')) cur.sport = Number(value);
      else if (cur && key === 'dport') cur.dport = Number(value);
      else if (cur && key === 'packets') cur.packets = Number(value);
      else if (cur && key === 'bytes') cur.bytes = Number(value);
    }
    if (tuples.length < 2) continue;
    // ICMP: conntrack keys on the id for both "ports".
    if (proto === 1 || proto === 58) {
      for (const t of tuples) t.dport = 0;
    }
    entries.push({
      family: tokens[0] as 'ipv4' | 'ipv6',
      proto,
      protoName,
      state,
      orig: tuples[0]!,
      reply: tuples[1]!,
    });
  }
  return entries;
}

export function conntrackEntries(node: SimNode): TruthEntry[] {
  return parseConntrackList(node.exec(['conntrack', '-L', '-o', 'extended']));
}

/** The entry whose original tuple matches, or undefined. */
export function findEntry(
  entries: readonly TruthEntry[],
  m: { src?: string; dst?: string; sport?: number; dport?: number; proto?: number },
): TruthEntry | undefined {
  return entries.find(
    (e) =>
      (m.src === undefined || e.orig.src === m.src) &&
      (m.dst === undefined || e.orig.dst === m.dst) &&
      (m.sport === undefined || e.orig.sport === m.sport) &&
      (m.dport === undefined || e.orig.dport === m.dport) &&
      (m.proto === undefined || e.proto === m.proto),
  );
}
