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
import type { SimNode } from '../sim/simnode.js';
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
export function parseEventLine(
  line: string,
): { type: 'NEW' | 'DESTROY'; atMs: number; id: string; entry: TruthEntry } | undefined {
  const m = /^\[(\d+)\.(\d+)\]\s+\[(NEW|DESTROY)\]\s+(.*)$/.exec(line.trim());
  if (!m) return undefined;
  const { id, rest } = splitId(m[4]!);
  const entry = parseConntrackList(rest)[0];
  if (!entry) return undefined;
  const atMs = Number(m[1]) * 1000 + Math.floor(Number(`0.${m[2]}`) * 1000);
  return { type: m[3] as 'NEW' | 'DESTROY', atMs, id, entry };
}

export class TruthLog {
  private readonly conns = new Map<string, TruthConnection>();
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

  static start(node: SimNode, path: string): TruthLog {
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
    log.poller = setInterval(() => log.list(), 2_000);
    return log;
  }

  /** One `conntrack -L`: the latest counters of everything in the table. */
  list(): void {
    const now = Date.now();
    let text: string;
    try {
      text = this.node.exec(['conntrack', '-L', '-o', 'extended,id']);
    } catch {
      return;
    }
    this.listings++;
    for (const line of text.split('\n')) {
      const { id, rest } = splitId(line);
      const entry = parseConntrackList(rest)[0];
      if (!entry) continue;
      const key = keyOf(id, entry);
      const c = this.conns.get(key);
      if (!c) this.conns.set(key, { entry, newAtMs: now, endAtMs: undefined });
      else if (c.endAtMs === undefined) c.entry = entry;
    }
  }

  private onLine(line: string): void {
    const ev = parseEventLine(line);
    if (!ev) return;
    const key = keyOf(ev.id, ev.entry);
    const c = this.conns.get(key);
    if (ev.type === 'NEW') {
      if (c) c.newAtMs = ev.atMs;
      else this.conns.set(key, { entry: ev.entry, newAtMs: ev.atMs, endAtMs: undefined });
      return;
    }
    // DESTROY carries the final counters.
    if (c) {
      c.entry = ev.entry;
      c.endAtMs = ev.atMs;
    } else this.conns.set(key, { entry: ev.entry, newAtMs: undefined, endAtMs: ev.atMs });
  }

  /** Stops both sources (after a last listing) and merges what conntrack -E wrote. */
  async stop(): Promise<void> {
    if (this.poller) clearInterval(this.poller);
    this.list();
    await new Promise((r) => setTimeout(r, 1_000));
    this.stopping = true;
    this.child.kill('SIGTERM');
    if (this.child.exitCode === null) await new Promise((r) => this.child.once('exit', r));
    for (const line of readFileSync(this.path, 'utf8').split('\n')) this.onLine(line);
  }

  /** Every connection of the run, with its final (or latest) counters. */
  connections(): TruthConnection[] {
    return [...this.conns.values()];
  }
}
