/**
 * Real kernel bytes, recorded from a simulated node by
 * scripts/capture-fixtures.mjs (conntrack events, a dump, NFLOG packets),
 * decoded without root and checked against what `conntrack -L` and the
 * traffic generator said at the time (truth.json).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeConntrackBatch } from '../../src/conntrack/decode.js';
import type { ConntrackEvent } from '../../src/conntrack/types.js';
import { decodeNflogBatch } from '../../src/nflog/decode.js';
import type { NflogPacket } from '../../src/nflog/types.js';
import type { TruthEntry } from '../../tooling/sim/truth.js';

const dir = new URL('../fixtures/netlink/', import.meta.url);
const bytes = (name: string) => readFileSync(new URL(name, dir));
const truth = JSON.parse(readFileSync(new URL('truth.json', dir), 'utf8')) as Record<
  string,
  TruthEntry
> & {
  denied: { sent: number };
};

function ct(name: string, fromDump: boolean) {
  const events: ConntrackEvent[] = [];
  const errors: string[] = [];
  const done: number[] = [];
  decodeConntrackBatch(
    bytes(name),
    { event: (e) => events.push(e), error: (e) => errors.push(e.code), done: (s) => done.push(s) },
    { fromDump },
  );
  return { events, errors, done };
}

describe('recorded kernel messages', () => {
  it('events: NEW for TCP, UDP and ICMP, and the TCP DESTROY with the counters conntrack -L showed', () => {
    const { events, errors } = ct('events.bin', false);
    expect(errors).toEqual([]);
    expect(
      events
        .filter((e) => e.type === 'new')
        .map((e) => e.orig.proto)
        .sort(),
    ).toEqual([1, 17, 6].sort());
    const destroy = events.find(
      (e) => e.type === 'destroy' && e.orig.sport === truth.tcp!.orig.sport,
    )!;
    expect(destroy.countersOrig).toEqual({
      packets: truth.tcp!.orig.packets,
      bytes: truth.tcp!.orig.bytes,
    });
    expect(destroy.countersReply).toEqual({
      packets: truth.tcp!.reply.packets,
      bytes: truth.tcp!.reply.bytes,
    });
    expect(destroy.startNs! < destroy.stopNs!).toBe(true);
    expect(destroy.id).not.toBe(0);
  });

  it('dump: every entry with counters and fromDump, ended by NLMSG_DONE with our sequence number', () => {
    const { events, errors, done } = ct('dump.bin', true);
    expect(errors).toEqual([]);
    expect(done).toEqual([4242]);
    expect(events.every((e) => e.fromDump && e.countersOrig !== undefined)).toBe(true);
    const held = events.find((e) => e.orig.sport === truth.held!.orig.sport);
    expect(held?.tcpState).toBe(3); // ESTABLISHED at dump time
    const icmp = events.find((e) => e.orig.proto === 1)!;
    expect([icmp.orig.icmpType, icmp.countersOrig?.bytes]).toEqual([8, 84]);
  });

  it('NFLOG: allow and deny prefixes, 5-tuples and IP lengths for TCP, UDP, ICMP and ICMPv6', () => {
    const packets: NflogPacket[] = [];
    const acks: number[] = [];
    decodeNflogBatch(bytes('nflog.bin'), {
      packet: (p) => packets.push(p),
      error: (e) => {
        throw e;
      },
      nlError: (_s, e) => acks.push(e),
    });
    expect(acks.every((e) => e === 0)).toBe(true); // every bind/config request acknowledged
    const denied = packets.filter((p) => p.verdict?.action === 'deny');
    expect(denied).toHaveLength(truth.denied.sent);
    expect(denied[0]).toMatchObject({
      group: 1,
      proto: 17,
      dport: 9999,
      bytes: 38,
      prefix: 'DPI|default.default-deny',
    });
    const syn = packets.find((p) => p.proto === 6)!;
    expect(syn).toMatchObject({
      sport: truth.tcp!.orig.sport,
      dport: 80,
      bytes: 60,
      verdict: { action: 'allow', policyName: 'default.allow-web' },
    });
    const v6 = packets.find((p) => p.family === 6)!;
    expect(v6).toMatchObject({
      group: 2,
      proto: 58,
      src: '::1',
      dst: '::1',
      icmpType: 128,
      verdict: { direction: 'egress' },
    });
  });
});
