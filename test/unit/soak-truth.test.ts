import { describe, expect, it } from 'vitest';
import { parseConntrackList } from '../../tooling/sim/truth.js';
import { lifetimesOf, parseEventLine } from '../../tooling/soak/truth-log.js';

// Lines as `conntrack -E -o extended,timestamp,id` and `conntrack -L -o extended,id` print them.
const tuple = 'src=10.244.8.2 dst=10.244.8.4 sport=38130 dport=8080';
const reply = 'src=10.244.8.4 dst=10.244.8.2 sport=8080 dport=38130';
const counted = (p: number, b: number) =>
  `ipv4     2 tcp      6 ${tuple} packets=${p} bytes=${b} ${reply} packets=${p - 2} bytes=${b - 106}`;
const entry = (p: number, b: number) => parseConntrackList(counted(p, b))[0]!;
const event = (kind: 'NEW' | 'DESTROY', atMs: number, p = 5, b = 270) => {
  const line = `[${Math.floor(atMs / 1000)}.${String(atMs % 1000).padStart(3, '0')}000] [${kind}] ${
    kind === 'NEW'
      ? `ipv4     2 tcp      6 120 SYN_SENT ${tuple} [UNREPLIED] ${reply}`
      : counted(p, b)
  } id=3071122330`;
  const ev = parseEventLine(line);
  if (!ev) throw new Error(`unparsed: ${line}`);
  return { kind: ev.type, atUs: ev.atUs, entry: ev.entry };
};
const run = (atMs: number, p: number, b: number) => ({
  kind: 'RUN' as const,
  atUs: atMs * 1000,
  entry: entry(p, b),
});
const summary = (ls: ReturnType<typeof lifetimesOf>) =>
  ls.map((l) => [l.newAtMs, l.endAtMs, l.entry.orig.packets, l.entry.orig.bytes]);

describe('the soak truth: lifetimes of one (conntrack id, tuple) key', () => {
  it('parses an event line with its time and id', () => {
    const ev = parseEventLine(`[1795592157.123456] [DESTROY] ${counted(5, 270)} id=3071122330`);
    expect(ev).toMatchObject({ type: 'DESTROY', atMs: 1795592157123, id: '3071122330' });
    expect(ev?.entry.orig).toMatchObject({ sport: 38130, packets: 5, bytes: 270 });
  });

  it('a key reused by a later connection (same slab slot, same id) is two connections', () => {
    const marks = [
      event('NEW', 353_000),
      run(354_000, 5, 270),
      event('DESTROY', 370_000),
      run(485_000, 7, 400),
      event('NEW', 484_000),
      event('DESTROY', 499_000, 7, 400),
    ];
    expect(summary(lifetimesOf(marks))).toEqual([
      [353_000, 370_000, 5, 270],
      [484_000, 499_000, 7, 400],
    ]);
  });

  it('a NEW while one is open ends it with its last listed counters (its DESTROY was lost)', () => {
    const marks = [
      event('NEW', 1_000),
      run(1_500, 5, 270),
      event('NEW', 60_000),
      run(61_000, 3, 90),
    ];
    expect(summary(lifetimesOf(marks))).toEqual([
      [1_000, undefined, 5, 270],
      [60_000, undefined, 3, 90],
    ]);
  });

  it('a listing read before the NEW of the same connection is that connection', () => {
    const marks = [run(1_000, 5, 270), event('NEW', 1_010), event('DESTROY', 9_000)];
    expect(summary(lifetimesOf(marks))).toEqual([[1_000, 9_000, 5, 270]]);
  });

  it('a DESTROY without a NEW or a listing is a connection of its own', () => {
    const marks = [event('NEW', 1_000), event('DESTROY', 2_000), event('DESTROY', 5_000, 9, 500)];
    expect(summary(lifetimesOf(marks))).toEqual([
      [1_000, 2_000, 5, 270],
      [undefined, 5_000, 9, 500],
    ]);
  });

  it('events printed with one timestamp keep their order: a key reopened within a batch', () => {
    const marks = [
      event('NEW', 2_000),
      event('DESTROY', 2_000, 5, 270),
      event('NEW', 2_000),
      event('DESTROY', 2_000, 7, 400),
      event('NEW', 2_000),
      run(3_000, 6, 300),
    ];
    expect(summary(lifetimesOf(marks))).toEqual([
      [2_000, 2_000, 5, 270],
      [2_000, 2_000, 7, 400],
      [2_000, undefined, 6, 300],
    ]);
  });

  it('a listing taken just before a DESTROY but timed after it is not another connection', () => {
    const marks = [event('NEW', 1_000), event('DESTROY', 2_000, 5, 270), run(2_001, 5, 270)];
    expect(summary(lifetimesOf(marks))).toEqual([[1_000, 2_000, 5, 270]]);
  });
});
