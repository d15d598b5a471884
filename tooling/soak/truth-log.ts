/**
 * The kernel's account of every connection during a soak, from two sources
 * that cover each other's gaps:
 *  - `conntrack -E` (NEW and DESTROY with counters and timestamps), written
 *    straight to a file: `conntrack -E` quits or loses events when its reader
 *    is slow, and a soak keeps this process busy;
 *  - `conntrack -L` every two seconds: a closed TCP connection sits in
 *    TIME_WAIT with its final counters, so a lost DESTROY still leaves its
 *    totals; and a listing evicts expired entries, which makes the kernel
 *    emit their DESTROY (its garbage collector may otherwise take a minute).
 * Connections are keyed by conntrack id and original tuple, since a 5-tuple
 * is reused by later connections.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { SimNode } from '../../src/sim/simnode.js';
import { parseConntrackList, type TruthEntry } from '../sim/truth.js';

export interface TruthConnection {
  entry: TruthEntry;
  /** When the kernel emitted NEW, or a listing first showed it (ms). */
  newAtMs: number | undefined;
  /** When it emitted DESTROY (ms); undefined when no DESTROY was seen. */
  endAtMs: number | undefined;
}

/** The conntrack id printed by `-o id` (last `id=` on the line) and the line without it. */
function splitId(text: string): { id: string; rest: string } {
  const m = /\sid=(\d+)(?=\s|$)(?!.*\sid=\d)/.exec(text);
  if (!m) return { id: '?', rest: text };
  return { id: m[1]!, rest: text.slice(0, m.index) + text.slice(m.index + m[0].length) };
}

function keyOf(id: string, e: TruthEntry): string {
  return `${id} ${e.proto} ${e.orig.src} ${e.orig.sport} ${e.orig.dst} ${e.orig.dport}`;
}

/** Parses one `conntrack -E -o extended,timestamp,id` line. */
export function parseEventLine(line: string):
  | {
      type: 'NEW' | 'DESTROY';
      atMs: number;
      /** The same time in µs, as printed: events of one batch keep their order by it. */
      atUs: number;
      id: string;
      entry: TruthEntry;
    }
  | undefined {
  const m = /^\[(\d+)\.(\d+)\]\s+\[(NEW|DESTROY)\]\s+(.*)$/.exec(line.trim());
  if (!m) return undefined;
  const { id, rest } = splitId(m[4]!);
  const entry = parseConntrackList(rest)[0];
  if (!entry) return undefined;
  const atUs = Number(m[1]) * 1_000_000 + Math.floor(Number(`0.${m[2]}`) * 1_000_000);
  return { type: m[3] as 'NEW' | 'DESTROY', atMs: Math.floor(atUs / 1000), atUs, id, entry };
}

/**
 * Consecutive listings that showed one key: first and last time (µs, when
 * the listing had been read), the counters then. A key reopened between two
 * listings may be two connections in one run: its first and last entries
 * each go to the connection open at that time (tooling/soak below).
 */
interface ListingRun {
  firstUs: number;
  lastUs: number;
  lastListing: number;
  first: TruthEntry;
  last: TruthEntry;
}

/** What is known of one key at one moment (µs), merged in time order at the end. */
export type Mark =
  | { kind: 'NEW' | 'DESTROY'; atUs: number; entry: TruthEntry }
  | { kind: 'RUN'; atUs: number; entry: TruthEntry };

const sameCounters = (a: TruthEntry, b: TruthEntry): boolean =>
  a.orig.packets === b.orig.packets &&
  a.orig.bytes === b.orig.bytes &&
  a.reply.packets === b.reply.packets &&
  a.reply.bytes === b.reply.bytes;

/**
 * Lifetimes of one (id, tuple) key from its marks. The kernel gives a
 * reused 5-tuple the same id when the same slab slot holds it again, so one
 * key can be several connections: a NEW after a DESTROY, or a listing after
 * a DESTROY, starts the next one. Events keep the order conntrack printed
 * them in (a stable sort by time: one batch shares a timestamp); a DESTROY's
 * counters are final, a listing's the latest known.
 */
export function lifetimesOf(marks: Mark[]): TruthConnection[] {
  marks.sort((a, b) => a.atUs - b.atUs);
  const out: TruthConnection[] = [];
  let cur: (TruthConnection & { sawNew: boolean; ended: boolean }) | undefined;
  const begin = (m: Mark, sawNew: boolean) => {
    const atMs = Math.floor(m.atUs / 1000);
    cur = { entry: m.entry, newAtMs: atMs, endAtMs: undefined, sawNew, ended: false };
    out.push(cur);
    return cur;
  };
  for (const m of marks) {
    const open = cur !== undefined && !cur.ended ? cur : undefined;
    if (m.kind === 'NEW') {
      if (open && !open.sawNew) {
        // Listed before its NEW was read: the same connection.
        open.sawNew = true;
        open.newAtMs = Math.min(open.newAtMs ?? m.atUs / 1000, Math.floor(m.atUs / 1000));
      } else {
        // A NEW while one is open: that one's DESTROY was lost; it keeps its last counters.
        if (open) open.ended = true;
        begin(m, true);
      }
    } else if (m.kind === 'RUN') {
      if (open) open.entry = m.entry;
      // Listed just before its DESTROY (the listing is timed when it was read): the same one.
      else if (cur && sameCounters(cur.entry, m.entry)) continue;
      else begin(m, false);
    } else if (open) {
      // DESTROY carries the final counters.
      open.entry = m.entry;
      open.endAtMs = Math.floor(m.atUs / 1000);
      open.ended = true;
    } else {
      cur = {
        entry: m.entry,
        newAtMs: undefined,
        endAtMs: Math.floor(m.atUs / 1000),
        sawNew: false,
        ended: true,
      };
      out.push(cur);
    }
  }
  return out.map(({ entry, newAtMs, endAtMs }) => ({ entry, newAtMs, endAtMs }));
}

export class TruthLog {
  private readonly runs = new Map<string, ListingRun[]>();
  private connectionsMerged: TruthConnection[] = [];
  /** Set when conntrack -E exited early (the listings still cover it). */
  failure: string | undefined;
  /** What conntrack said on stderr (its own ENOBUFS warnings). */
  stderr = '';
  /** Listings taken. */
  listings = 0;
  private stopping = false;
  private poller: NodeJS.Timeout | undefined;

  private constructor(
    private readonly node: SimNode,
    private readonly child: ChildProcess,
    private readonly path: string,
  ) {}

  /**
   * `listEveryMs`: how often to list the table besides the last listing at
   * stop (0: never; then the events alone are the account, exact as long as
   * `conntrack -E` loses none: check `failure` and `stderr`).
   */
  static start(node: SimNode, path: string, options: { listEveryMs?: number } = {}): TruthLog {
    const child = node.spawn([
      'sh',
      '-c',
      `exec conntrack -E -e NEW,DESTROY -o extended,timestamp,id -b 33554432 > '${path}'`,
    ]);
    const log = new TruthLog(node, child, path);
    child.stderr?.on('data', (c: Buffer) => {
      log.stderr += c.toString();
    });
    child.once('exit', (code) => {
      if (!log.stopping) log.failure = `conntrack -E exited early (${code}): ${log.stderr.trim()}`;
    });
    const every = options.listEveryMs ?? 2_000;
    if (every > 0) log.poller = setInterval(() => log.list(), every);
    return log;
  }

  /**
   * One `conntrack -L`: the latest counters of everything in the table. A key
   * missing from a listing and shown again later starts a new run (it may be
   * a new connection); runs are few per key, so an hour of listings stays small.
   */
  list(): void {
    let text: string;
    try {
      text = this.node.exec(['conntrack', '-L', '-o', 'extended,id']);
    } catch {
      return;
    }
    // Read now: the kernel's snapshot is no later than this.
    const nowUs = Date.now() * 1000;
    const seq = ++this.listings;
    for (const line of text.split('\n')) {
      const { id, rest } = splitId(line);
      const entry = parseConntrackList(rest)[0];
      if (!entry) continue;
      const key = keyOf(id, entry);
      const runs = this.runs.get(key);
      const last = runs?.at(-1);
      // Counters below the last listing's: another connection on the key.
      const below =
        last !== undefined &&
        (entry.orig.packets < last.last.orig.packets ||
          entry.reply.packets < last.last.reply.packets);
      if (last && last.lastListing === seq - 1 && !below) {
        last.lastUs = nowUs;
        last.lastListing = seq;
        last.last = entry;
      } else {
        const run = { firstUs: nowUs, lastUs: nowUs, lastListing: seq, first: entry, last: entry };
        if (runs) runs.push(run);
        else this.runs.set(key, [run]);
      }
    }
  }

  /** Stops both sources (after a last listing) and merges them with what conntrack -E wrote. */
  async stop(): Promise<void> {
    if (this.poller) clearInterval(this.poller);
    this.list();
    await new Promise((r) => setTimeout(r, 1_000));
    this.stopping = true;
    this.child.kill('SIGTERM');
    if (this.child.exitCode === null) await new Promise((r) => this.child.once('exit', r));
    const marks = new Map<string, Mark[]>();
    const add = (key: string, m: Mark) => {
      const l = marks.get(key);
      if (l) l.push(m);
      else marks.set(key, [m]);
    };
    for (const line of readFileSync(this.path, 'utf8').split('\n')) {
      const ev = parseEventLine(line);
      if (ev) add(keyOf(ev.id, ev.entry), { kind: ev.type, atUs: ev.atUs, entry: ev.entry });
    }
    for (const [key, runs] of this.runs) {
      for (const r of runs) {
        add(key, { kind: 'RUN', atUs: r.firstUs, entry: r.first });
        if (r.lastUs > r.firstUs) add(key, { kind: 'RUN', atUs: r.lastUs, entry: r.last });
      }
    }
    this.connectionsMerged = [...marks.values()].flatMap(lifetimesOf);
  }

  /** Every connection of the run, with its final (or latest) counters (after stop()). */
  connections(): TruthConnection[] {
    return this.connectionsMerged;
  }
}
