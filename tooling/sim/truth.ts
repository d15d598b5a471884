/**
 * Ground truth from the kernel: the node namespace's conntrack table as
 * `conntrack -L` prints it, parsed into typed entries with their counters.
 * Tests compare flowtrail's records with these numbers, exactly.
 */
import type { SimNode } from '../../src/sim/simnode.js';

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

export interface FlowCounts {
  /** Packets and bytes the source sent (original direction) and received (reply). */
  orig: { packets: number; bytes: number };
  reply: { packets: number; bytes: number };
  /** Packets of the flow conntrack found INVALID (not accounted to any connection). */
  invalid: number;
}

let watchSeq = 0;

/**
 * The kernel's own packet and byte counters for every connection from `src`
 * to `dst`:`dport` (TCP), from iptables rules at the top of the node's
 * FORWARD chain that only count: exact however fast connections come and go,
 * where `conntrack -E` can miss events on a busy machine. Conntrack accounts
 * the same packets to its connections, all but the INVALID ones (counted
 * apart: a test asserts there were none).
 */
export function watchTcpFlow(
  node: SimNode,
  flow: { src: string; dst: string; dport: number },
): { read(): FlowCounts } {
  const tag = `ft-count-${++watchSeq}`;
  const rule = (name: string, match: string[]) =>
    node.exec([
      'iptables',
      '-w',
      '-I',
      'FORWARD',
      '1',
      ...match,
      '-m',
      'comment',
      '--comment',
      `${tag}-${name}`,
    ]);
  const orig = [
    '-s',
    `${flow.src}/32`,
    '-d',
    `${flow.dst}/32`,
    '-p',
    'tcp',
    '--dport',
    String(flow.dport),
  ];
  const reply = [
    '-s',
    `${flow.dst}/32`,
    '-d',
    `${flow.src}/32`,
    '-p',
    'tcp',
    '--sport',
    String(flow.dport),
  ];
  rule('orig', orig);
  rule('reply', reply);
  rule('invalid-orig', [...orig, '-m', 'conntrack', '--ctstate', 'INVALID']);
  rule('invalid-reply', [...reply, '-m', 'conntrack', '--ctstate', 'INVALID']);
  return {
    read() {
      const rows = new Map<string, { packets: number; bytes: number }>();
      for (const line of node
        .exec(['iptables', '-w', '-L', 'FORWARD', '-n', '-v', '-x'])
        .split('\n')) {
        const m = /^\s*(\d+)\s+(\d+)\s.*\/\* (\S+) \*\//.exec(line);
        if (m?.[3]?.startsWith(`${tag}-`)) {
          rows.set(m[3].slice(tag.length + 1), { packets: Number(m[1]), bytes: Number(m[2]) });
        }
      }
      const get = (name: string) => {
        const r = rows.get(name);
        if (!r) throw new Error(`flow counters: no iptables rule ${tag}-${name} in FORWARD`);
        return r;
      };
      return {
        orig: get('orig'),
        reply: get('reply'),
        invalid: get('invalid-orig').packets + get('invalid-reply').packets,
      };
    },
  };
}
