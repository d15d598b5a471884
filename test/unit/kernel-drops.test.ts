import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Endpoint, EndpointLookup } from '../../src/endpoints/types.js';
import { AggregationKind } from '../../src/flows/aggregation.js';
import { FlowTable } from '../../src/flows/flow-table.js';
import { chooseReporter, type DenyPolicyNamer } from '../../src/flows/kernel-denies.js';
import { decodeKdropBatch, KDROP_EVENT_BYTES } from '../../src/kdrops/decode.js';
import { DenyJoin } from '../../src/kdrops/join.js';
import { ReasonTable } from '../../src/kdrops/reasons.js';
import { DenyRouter } from '../../src/kdrops/router.js';
import type { KernelDrop } from '../../src/kdrops/types.js';
import type { NflogPacket } from '../../src/nflog/types.js';
import type { DecodeError } from '../../src/util/errors.js';
import { conntrackEvent } from '../harness/conntrack-events.js';

// The 6.18 kernel's numbers for the reasons used here (read from its BTF).
const reasons = new ReasonTable({
  values: [2, 3, 12, 62, 73, 86],
  names: ['NOT_SPECIFIED', 'NO_SOCKET', 'NETFILTER_DROP', 'TC_EGRESS', 'TC_INGRESS', 'IP_NOPROTO'],
});

function decode(buf: Uint8Array) {
  const drops: KernelDrop[] = [];
  const errors: DecodeError[] = [];
  decodeKdropBatch(buf, reasons, { drop: (d) => drops.push(d), error: (e) => errors.push(e) });
  return { drops, errors };
}

interface Fields {
  reason: number;
  netns: number;
  ifindex: number;
  ipLen: number;
  version: number;
  proto: number;
  ipId: number;
  src: [number, number, number, number];
  dst: [number, number, number, number];
  sport: number;
  dport: number;
  l3proto: number;
  frag: number;
  skbLen: number;
  location: bigint;
}

/** One record laid out as struct kdrop_event (native/bpf/kfree_skb.bpf.c). */
function record(f: Fields): Uint8Array {
  const b = new Uint8Array(KDROP_EVENT_BYTES);
  const v = new DataView(b.buffer);
  v.setUint32(0, f.reason, true);
  v.setUint32(4, f.netns, true);
  v.setUint32(8, f.ifindex, true);
  v.setUint32(12, f.ipLen, true);
  b[16] = f.version;
  b[17] = f.proto;
  v.setUint16(18, f.ipId, true);
  b.set(f.src, 20);
  b.set(f.dst, 24);
  v.setUint16(28, f.sport, true);
  v.setUint16(30, f.dport, true);
  v.setUint16(32, f.l3proto, true);
  v.setUint16(34, f.frag, true);
  v.setUint32(36, f.skbLen, true);
  v.setBigUint64(40, f.location, true);
  return b;
}

describe('kernel drop records', () => {
  it('decodes an iptables DROP of a UDP datagram on loopback (as the program reported one here)', () => {
    // reason 12 NETFILTER_DROP | netns 4026532173 | ifindex 0 (OUTPUT, no device yet) | IP length 128
    // IPv4, UDP, id 52691 | 127.0.0.1 → 127.0.0.1 | 49597 → 9 | ETH_P_IP | skb len 128 | location
    // biome-ignore format: one row per group of fields
    const bytes = Uint8Array.from([
      0x0c, 0, 0, 0,  0x4d, 0x01, 0x00, 0xf0,  0, 0, 0, 0,  0x80, 0, 0, 0, // reason netns ifindex ip_len
      4, 17, 0xd3, 0xcd,                                                   // version proto ip_id
      127, 0, 0, 1,  127, 0, 0, 1,  0xbd, 0xc1,  0x09, 0x00,               // saddr daddr sport dport
      0x00, 0x08,  0, 0,  0x80, 0, 0, 0,                                   // l3proto frag skb_len
      0x10, 0x32, 0x54, 0x76, 0xff, 0xff, 0xff, 0xff,                      // location
    ]);
    const { drops, errors } = decode(bytes);
    expect(errors).toEqual([]);
    expect(drops).toEqual([
      {
        reason: 12,
        reasonName: 'NETFILTER_DROP',
        netns: 4026532173,
        ifindex: 0,
        ipVersion: 4,
        proto: 17,
        src: '127.0.0.1',
        dst: '127.0.0.1',
        sport: 49597,
        dport: 9,
        bytes: 128,
        ipId: 52691,
        l3proto: 0x0800,
        skbLen: 128,
        location: 0xffffffff76543210n,
      },
    ]);
  });

  it('names reasons this kernel has, and REASON_<n> for others', () => {
    expect(reasons.name(73)).toBe('TC_INGRESS');
    expect(reasons.name(999)).toBe('REASON_999');
    expect(reasons.value('TC_EGRESS')).toBe(62);
    expect(reasons.value('NOPE')).toBeUndefined();
  });

  const fields = fc.record({
    reason: fc.integer({ min: 0, max: 200 }),
    netns: fc.nat(),
    ifindex: fc.nat(),
    ipLen: fc.integer({ min: 0, max: 65_535 }),
    version: fc.constantFrom(0, 4, 6),
    proto: fc.integer({ min: 0, max: 255 }),
    ipId: fc.integer({ min: 0, max: 65_535 }),
    src: fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)),
    dst: fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)),
    sport: fc.integer({ min: 0, max: 65_535 }),
    dport: fc.integer({ min: 0, max: 65_535 }),
    l3proto: fc.integer({ min: 0, max: 65_535 }),
    frag: fc.constantFrom(0, 1),
    skbLen: fc.nat(),
    location: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  });

  it('gives back every field it was given (property)', () => {
    fc.assert(
      fc.property(fc.array(fields, { maxLength: 8 }), (all) => {
        const buf = new Uint8Array(all.length * KDROP_EVENT_BYTES);
        all.forEach((f, i) => {
          buf.set(record(f), i * KDROP_EVENT_BYTES);
        });
        const { drops, errors } = decode(buf);
        expect(errors).toEqual([]);
        expect(
          drops.map((d) => [
            d.reason,
            d.netns,
            d.ifindex,
            d.bytes,
            d.ipVersion,
            d.proto,
            d.ipId,
            d.sport,
            d.dport,
            d.location,
          ]),
        ).toEqual(
          all.map((f) => [
            f.reason,
            f.netns,
            f.ifindex,
            f.ipLen,
            f.version,
            f.proto,
            f.ipId,
            f.sport,
            f.dport,
            f.location,
          ]),
        );
        all.forEach((f, i) => {
          expect(drops[i]!.src).toBe(f.version === 4 ? f.src.join('.') : '');
        });
      }),
      { numRuns: 300 },
    );
  });

  it('never throws on arbitrary bytes: each whole record is a drop or an error naming the field, a partial tail one error (fuzz)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (buf) => {
        const { drops, errors } = decode(buf);
        const whole = Math.floor(buf.length / KDROP_EVENT_BYTES);
        const tail = buf.length % KDROP_EVENT_BYTES === 0 ? 0 : 1;
        expect(drops.length + errors.length).toBe(whole + tail);
        for (const e of errors) {
          expect(['ERR_KDROP_BAD_VERSION', 'ERR_KDROP_SHORT']).toContain(e.code);
          expect(e.context).toHaveProperty('field');
        }
      }),
      { numRuns: 500 },
    );
  });
});

function drop(over: Partial<KernelDrop> = {}): KernelDrop {
  return {
    reason: 12,
    reasonName: 'NETFILTER_DROP',
    netns: 1,
    ifindex: 3,
    ipVersion: 4,
    proto: 17,
    src: '10.244.1.2',
    dst: '10.244.1.3',
    sport: 40000,
    dport: 53,
    bytes: 60,
    ipId: 7,
    skbLen: 60,
    l3proto: 0x0800,
    location: 0n,
    ...over,
  };
}

function nflogDeny(over: Partial<NflogPacket> = {}): NflogPacket {
  return {
    group: 1,
    prefix: 'DPI|default.default-deny',
    verdict: {
      action: 'deny',
      owner: 'policy',
      direction: 'ingress',
      ruleIndex: undefined,
      policyName: 'default.default-deny',
      prefix: 'DPI|default.default-deny',
    },
    family: 4,
    proto: 17,
    src: '10.244.1.2',
    dst: '10.244.1.3',
    sport: 40000,
    dport: 53,
    bytes: 60,
    ipId: 7,
    timestampMs: undefined,
    indev: undefined,
    outdev: undefined,
    hwaddr: undefined,
    ...over,
  };
}

describe('DenyJoin: an NFLOG-logged iptables drop counts once', () => {
  it('an NFLOG copy before or after the drop event (within the window) consumes it', () => {
    const j = new DenyJoin(1_000);
    j.noteNflogDenies([nflogDeny()], 0);
    j.offerKernel([drop()], 10);
    j.offerKernel([drop({ ipId: 8 })], 20);
    j.noteNflogDenies([nflogDeny({ ipId: 8 })], 900);
    expect(j.release(10_000)).toEqual([]);
    expect(j.stats).toEqual({ matched: 2, unmatched: 0, maxLagMs: 880 });
  });

  it('a drop with no NFLOG copy is counted once its window has passed, not before', () => {
    const j = new DenyJoin(1_000);
    j.offerKernel([drop()], 100);
    expect(j.release(1_099)).toEqual([]);
    expect(j.release(1_100)).toEqual([drop()]);
    expect(j.release(5_000)).toEqual([]);
  });

  it('identities are a multiset: two identical datagrams and one NFLOG copy leave one drop', () => {
    const j = new DenyJoin(1_000);
    j.offerKernel([drop({ ipId: 0 }), drop({ ipId: 0 })], 0);
    j.noteNflogDenies([nflogDeny({ ipId: 0 })], 5);
    expect(j.release(2_000)).toHaveLength(1);
  });

  it('another packet (other id or length) is not a match; an expired NFLOG copy matches nothing', () => {
    const j = new DenyJoin(1_000);
    j.noteNflogDenies([nflogDeny({ ipId: 9 })], 0);
    j.offerKernel([drop({ ipId: 9, bytes: 61 })], 0);
    j.release(1_500);
    j.offerKernel([drop({ ipId: 9 })], 1_600);
    expect(j.release(3_000, true)).toHaveLength(1);
    expect(j.stats).toEqual({ matched: 0, unmatched: 2, maxLagMs: 0 });
  });

  it('release(all) counts every held drop at once (at stop)', () => {
    const j = new DenyJoin(60_000);
    j.offerKernel([drop({ ipId: 1 }), drop({ ipId: 2 })], 0);
    expect(j.release(1, true)).toHaveLength(2);
    expect(j.holding).toBe(0);
  });

  it('any interleaving within the window: released = drops without NFLOG, matched = pairs (property)', () => {
    const kind = fc.constantFrom('both', 'kernel', 'nflog');
    fc.assert(
      fc.property(
        fc.array(fc.tuple(kind, fc.integer({ min: 0, max: 3 }), fc.boolean()), { maxLength: 60 }),
        (packets) => {
          const j = new DenyJoin(1_000);
          // Each packet gets its own identity except deliberate repeats (same small id).
          const events: { at: number; apply: () => void }[] = [];
          packets.forEach(([k, id, nflogFirst], i) => {
            const at = i * 5;
            const p = { ipId: id, sport: 1000 + (i % 3) };
            const kernelAt = at + (nflogFirst ? 3 : 0);
            const nflogAt = at + (nflogFirst ? 0 : 3);
            if (k !== 'nflog')
              events.push({ at: kernelAt, apply: () => j.offerKernel([drop(p)], kernelAt) });
            if (k !== 'kernel')
              events.push({ at: nflogAt, apply: () => j.noteNflogDenies([nflogDeny(p)], nflogAt) });
          });
          events.sort((a, b) => a.at - b.at);
          for (const e of events) e.apply();
          const released = j.release(Number.MAX_SAFE_INTEGER, true).length;
          const kernelOnly = packets.filter(([k]) => k === 'kernel').length;
          const both = packets.filter(([k]) => k === 'both').length;
          // Identical identities may pair across packets, but the counts still add up.
          expect(released + j.stats.matched).toBe(kernelOnly + both);
          expect(released).toBeGreaterThanOrEqual(
            kernelOnly - packets.filter(([k]) => k === 'nflog').length,
          );
          if (packets.every(([k]) => k !== 'nflog')) expect(released).toBe(kernelOnly);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('DenyRouter: denies.source', () => {
  function port() {
    const nflog: NflogPacket[] = [];
    const kernel: KernelDrop[] = [];
    return {
      nflog,
      kernel,
      onNflog: (p: readonly NflogPacket[]) => nflog.push(...p),
      onKernelDenies: (d: readonly KernelDrop[]) => kernel.push(...d),
    };
  }
  const allow = nflogDeny({
    verdict: {
      action: 'allow',
      owner: 'policy',
      direction: 'ingress',
      ruleIndex: 0,
      policyName: 'default.a',
      prefix: 'API0|default.a',
    },
  });

  it('nflog: kernel drops are ignored', () => {
    const t = port();
    const r = new DenyRouter('nflog', t, 1_000);
    r.kernel([drop({ reasonName: 'TC_EGRESS' })], 0);
    r.nflog([nflogDeny()], 0);
    expect([t.kernel.length, t.nflog.length, r.counts.all().size]).toEqual([0, 1, 0]);
  });

  it('kernel: NFLOG denies are not counted (allow packets still bring policy names); iptables drops count at once', () => {
    const t = port();
    const r = new DenyRouter('kernel', t, 1_000);
    r.nflog([nflogDeny(), allow], 0);
    r.kernel([drop()], 0);
    expect(t.nflog).toEqual([allow]);
    expect(t.kernel).toEqual([drop()]);
  });

  it('both: TC drops count at once, iptables drops after their NFLOG copy had its chance', () => {
    const t = port();
    const r = new DenyRouter('both', t, 1_000);
    r.kernel([drop({ reasonName: 'TC_EGRESS', reason: 62 }), drop(), drop({ ipId: 99 })], 0);
    expect(t.kernel.map((d) => d.reasonName)).toEqual(['TC_EGRESS']);
    r.nflog([nflogDeny()], 10);
    r.release(1_000);
    expect(t.kernel.map((d) => d.ipId)).toEqual([7, 99]);
    expect(r.join.stats.matched).toBe(1);
  });

  it('reasons that are not policy are counted per reason only; IPv6 policy drops are counted, not recorded', () => {
    const t = port();
    const r = new DenyRouter('both', t, 1_000);
    r.kernel(
      [
        drop({ reasonName: 'NO_SOCKET', reason: 3 }),
        drop({ reasonName: 'NO_SOCKET', reason: 3 }),
        drop({ reasonName: 'TC_INGRESS', reason: 73, ipVersion: 6, src: '', dst: '' }),
      ],
      0,
    );
    expect(t.kernel).toEqual([]);
    expect(r.takeDropped()).toEqual(new Map([['NO_SOCKET', 2]]));
    expect(r.takeDropped()).toEqual(new Map());
    expect(r.counts.all()).toEqual(
      new Map([
        ['NO_SOCKET', 2],
        ['TC_INGRESS', 1],
      ]),
    );
    expect(r.stats.policyDropsNotIpv4).toBe(1);
  });
});

describe('kernel denies in the flow table', () => {
  const ep = (name: string, local: boolean): Endpoint => ({
    type: local ? 'wep' : 'net',
    namespace: local ? 'stars' : '-',
    name,
    aggregatedName: name,
    labels: {},
    local,
  });
  const endpoints: EndpointLookup = {
    lookup: (ip) =>
      ip === '10.244.1.2'
        ? ep('client-1', true)
        : ip === '10.244.1.3'
          ? ep('backend-1', true)
          : ep('pub', false),
  };
  const table = (namer?: DenyPolicyNamer) =>
    new FlowTable({
      endpoints,
      aggregationKindForAllowed: AggregationKind.Full,
      aggregationKindForDenied: AggregationKind.Full,
      includeLabels: false,
      includePolicies: true,
      ingressGroup: 1,
      egressGroup: 2,
      ...(namer ? { denyPolicyNamer: namer } : {}),
    });

  it('the reporter is the end whose policy the hook enforces, or the local end', () => {
    expect(chooseReporter('dst', true, true)).toBe('dst');
    expect(chooseReporter('src', true, true)).toBe('src');
    expect(chooseReporter('dst', true, false)).toBe('src');
    expect(chooseReporter('src', false, true)).toBe('dst');
    expect(chooseReporter('dst', false, false)).toBe('dst');
  });

  it('TC_EGRESS into a pod reports dst, TC_INGRESS out of one src, packets and bytes exact; DeniedPackets counts them', () => {
    const t = table();
    t.onKernelDenies(
      [
        drop({ reasonName: 'TC_EGRESS' }),
        drop({ reasonName: 'TC_EGRESS', bytes: 40 }),
        drop({ reasonName: 'TC_INGRESS', dst: '203.0.113.9' }),
      ],
      1_000,
    );
    const rs = t.flush(0, 2_000);
    expect(
      rs.map((r) => [
        r.reporter,
        r.srcName,
        r.dstName,
        r.packetsIn,
        r.bytesIn,
        r.packetsOut,
        r.bytesOut,
        r.action,
        r.policies,
      ]),
    ).toEqual([
      ['dst', 'client-1', 'backend-1', 2, 100, 0, 0, 'deny', '-'],
      ['src', 'client-1', 'pub', 0, 0, 1, 60, 'deny', '-'],
    ]);
    expect(t.takeDeniedPackets()).toBe(3);
  });

  it('a DenyPolicyNamer names the policy and may settle the reporter', () => {
    const asked: string[] = [];
    const t = table({
      name: (q) => {
        asked.push(`${q.reasonName} ${q.reporter} ${q.src.name}->${q.dst.name}:${q.dport}`);
        return { policy: 'knp.stars.backend-policy', reporter: 'dst' };
      },
    });
    t.onKernelDenies([drop({ reasonName: 'NETFILTER_DROP' })], 1_000);
    const [r] = t.flush(0, 2_000);
    expect(asked).toEqual(['NETFILTER_DROP dst client-1->backend-1:53']);
    expect(r).toMatchObject({
      reporter: 'dst',
      policies: 'knp.stars.backend-policy',
      packetsIn: 1,
    });
  });

  it('an unanswered connection whose packets the kernel dropped after conntrack counted them is not allowed traffic', () => {
    const t = table();
    // A TC drop on the way to the pod: the SYN passed netfilter (conntrack counted it), then TC dropped it.
    const tuple = { proto: 17, src: '10.244.1.2', dst: '10.244.1.3', sport: 40000, dport: 53 };
    t.onConntrackEvent(conntrackEvent('new', tuple), 500);
    t.onConntrackEvent(conntrackEvent('destroy', tuple, [2, 120, 0, 0]), 900);
    t.onKernelDenies([drop({ reasonName: 'TC_EGRESS' }), drop({ reasonName: 'TC_EGRESS' })], 1_000);
    // An answered one with the same ports elsewhere stays allowed.
    const other = { ...tuple, dst: '203.0.113.9', id: 2 };
    t.onConntrackEvent(conntrackEvent('new', other), 500);
    t.onConntrackEvent(conntrackEvent('destroy', other, [1, 60, 1, 60]), 900);
    const rs = t.flush(0, 2_000);
    expect(rs.map((r) => [r.action, r.dstName, r.packetsIn + r.packetsOut])).toEqual([
      ['allow', 'pub', 2],
      ['deny', 'backend-1', 2],
    ]);
    expect(t.stats.kernelDeniedConnections).toBe(1);
  });

  it('a retransmitted SYN counted after the dump of a flush but dropped (and drained) before that flush stays denied in the next interval', () => {
    const t = table();
    const tuple = { proto: 6, src: '10.244.1.2', dst: '10.244.1.3', sport: 40000, dport: 53 };
    t.onConntrackEvent(conntrackEvent('new', tuple), 500);
    // Flush 1: the dump read one SYN; both SYNs' drops were drained before the flush.
    t.beginDump();
    t.onDumpEvent(conntrackEvent('new', tuple, [1, 60, 0, 0], { fromDump: true }), 1_900);
    t.endDump(1_900);
    const tcp = { reasonName: 'TC_EGRESS', proto: 6 } as const;
    t.onKernelDenies([drop(tcp), drop(tcp)], 1_950);
    const first = t.flush(0, 2_000);
    expect(first.map((r) => r.action)).toEqual(['deny']);
    expect(t.stats.kernelDeniedConnections).toBe(1);
    // Flush 2: the second SYN's count arrives by DESTROY, its drop was in interval 1.
    t.onConntrackEvent(conntrackEvent('destroy', tuple, [2, 120, 0, 0]), 2_500);
    expect(t.flush(2_000, 4_000)).toEqual([]);
    expect(t.stats.kernelDeniedConnections).toBe(2);
    // Two intervals on, a new unanswered connection on the tuple is no longer taken as denied.
    t.flush(4_000, 6_000);
    t.onConntrackEvent(conntrackEvent('new', { ...tuple, id: 9 }), 6_500);
    t.onConntrackEvent(conntrackEvent('destroy', { ...tuple, id: 9 }, [1, 60, 0, 0]), 6_600);
    const later = t.flush(6_000, 8_000);
    expect(later.length).toBeGreaterThan(0);
    expect(later.every((r) => r.action === 'allow')).toBe(true);
  });
});
