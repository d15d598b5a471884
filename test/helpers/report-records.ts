/**
 * Flow records for report tests, made from definitions rather than a run:
 * - the stars scenario (src/demo/stars.ts) as the demo runs it: a default
 *   deny phase where every talk is denied, then the allow policies, after
 *   which only client → backend stays denied; records as the agent writes
 *   them at aggregation kind 1 (pod-to-pod flows reported by both sides);
 * - a synthetic cluster of N workloads in 16 namespaces (seeded, so every
 *   run is the same), for the layout at scale.
 */

import { INTERNET_IP, INTERNET_PORT, STARS_PODS, TALKS } from '../../src/demo/stars.js';
import type { FlowRecord } from '../../src/format/record.js';

const INTERVAL = 60;

function podOf(key: string) {
  return STARS_PODS.find((p) => p.key === key)!;
}

function base(start: number): Pick<FlowRecord, 'startTime' | 'endTime' | 'srcPort'> {
  return { startTime: start, endTime: start + INTERVAL, srcPort: '-' };
}

/**
 * The stars records over `intervals` flush intervals ending at `end`: the
 * first third under default deny, the rest with the allow policies. With
 * `policies`, the 27-field variant's policy names are set.
 */
export function starsRecords(end: number, intervals = 6, policies = true): FlowRecord[] {
  const out: FlowRecord[] = [];
  const denyPhase = Math.max(1, Math.floor(intervals / 3));
  for (let i = 0; i < intervals; i++) {
    const start = end - (intervals - i) * INTERVAL;
    TALKS.forEach((t, k) => {
      const from = podOf(t.from);
      const internet = t.to === 'internet';
      const to = internet ? undefined : podOf(t.to);
      const allowed = i >= denyPhase && t.allowedBy !== undefined;
      // One connection a second, as the demo's periodic clients make; sizes differ per talk.
      const flows = INTERVAL;
      const ends = {
        srcType: 'wep' as const,
        srcNamespace: from.namespace,
        srcName: from.name,
        srcLabels: '-',
        dstType: internet ? ('net' as const) : ('wep' as const),
        dstNamespace: to?.namespace ?? '-',
        dstName: to?.name ?? 'pub',
        dstLabels: '-',
        srcIP: from.ip,
        dstIP: to?.ip ?? INTERNET_IP,
        proto: 6,
        dstPort: internet ? INTERNET_PORT : t.port,
        srcNameAggr: `${from.generateName}*`,
        dstNameAggr: to ? `${to.generateName}*` : 'pub',
      };
      if (!allowed) {
        // A SYN and its two retransmissions per connection, dropped at the destination's ingress.
        out.push({
          ...base(start),
          ...ends,
          numFlows: flows,
          numFlowsStarted: flows,
          numFlowsCompleted: 0,
          reporter: internet ? 'src' : 'dst',
          packetsIn: internet ? 0 : 3 * flows,
          packetsOut: internet ? 3 * flows : 0,
          bytesIn: internet ? 0 : 180 * flows,
          bytesOut: internet ? 180 * flows : 0,
          action: 'deny',
          ...(policies ? { policies: 'default.default-deny' } : {}),
        });
        return;
      }
      const sent = (6 + k) * flows;
      const got = (5 + k) * flows;
      const sentBytes = (412 + 100 * k) * flows;
      const gotBytes = (380 + 1000 * k) * flows;
      const reporters: ('src' | 'dst')[] = internet ? ['src'] : ['src', 'dst'];
      for (const reporter of reporters) {
        const isSrc = reporter === 'src';
        out.push({
          ...base(start),
          ...ends,
          numFlows: flows,
          numFlowsStarted: flows,
          numFlowsCompleted: flows,
          reporter,
          packetsIn: isSrc ? got : sent,
          packetsOut: isSrc ? sent : got,
          bytesIn: isSrc ? gotBytes : sentBytes,
          bytesOut: isSrc ? sentBytes : gotBytes,
          action: 'allow',
          ...(policies ? { policies: t.allowedBy! } : {}),
        });
      }
    });
  }
  return out;
}

/** mulberry32: a small seeded generator, so the synthetic cluster is the same every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const GEN = 'bcdfghjklmnpqrstvwxz2456789';
const WORDS = [
  'api',
  'web',
  'worker',
  'cache',
  'db',
  'queue',
  'auth',
  'billing',
  'search',
  'ingest',
  'report',
  'notify',
  'gateway',
  'scheduler',
];

export interface SyntheticCluster {
  records: FlowRecord[];
  /** `namespace/workload` of every workload made. */
  workloads: string[];
}

/**
 * `n` workloads in 16 namespaces (a few with long names), each talking to
 * two or three others, mostly within its namespace; one in nine talks
 * denied, some traffic to the internet and from a node.
 */
export function syntheticCluster(n: number, seed = 21): SyntheticCluster {
  const rnd = seeded(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const gen = (len: number) => Array.from({ length: len }, () => pick([...GEN])).join('');
  const namespaces = Array.from({ length: 16 }, (_, i) =>
    i === 3 ? 'payments-processing-production-eu-west-1' : `team-${WORDS[i % WORDS.length]}-${i}`,
  );
  const pods = Array.from({ length: n }, (_, i) => {
    const ns = namespaces[i % namespaces.length]!;
    const long = i % 37 === 5;
    const workload = long
      ? `${pick(WORDS)}-${pick(WORDS)}-${pick(WORDS)}-reconciliation-controller-${i}`
      : `${pick(WORDS)}-${pick(WORDS)}-${i}`;
    return {
      ns,
      workload,
      name: `${workload}-${gen(9)}-${gen(5)}`,
      ip: `10.${i >> 8}.${i & 255}.7`,
    };
  });
  const end = 1_767_225_600;
  const records: FlowRecord[] = [];
  const talk = (
    src: (typeof pods)[number],
    dst: (typeof pods)[number] | 'internet',
    action: 'allow' | 'deny',
  ) => {
    const flows = 1 + Math.floor(rnd() * 200);
    const bytes = flows * (100 + Math.floor(rnd() * 50_000));
    records.push({
      startTime: end - 300,
      endTime: end,
      srcType: 'wep',
      srcNamespace: src.ns,
      srcName: src.name,
      srcLabels: '-',
      dstType: dst === 'internet' ? 'net' : 'wep',
      dstNamespace: dst === 'internet' ? '-' : dst.ns,
      dstName: dst === 'internet' ? 'pub' : dst.name,
      dstLabels: '-',
      srcIP: src.ip,
      dstIP: dst === 'internet' ? '198.51.100.20' : dst.ip,
      proto: rnd() < 0.9 ? 6 : 17,
      srcPort: '-',
      dstPort: pick([80, 443, 5432, 6379, 8080, 9090]),
      numFlows: flows,
      numFlowsStarted: flows,
      numFlowsCompleted: flows,
      reporter: action === 'deny' ? 'dst' : 'src',
      packetsIn: flows * 5,
      packetsOut: flows * 6,
      bytesIn: Math.floor(bytes / 3),
      bytesOut: bytes - Math.floor(bytes / 3),
      action,
    });
  };
  pods.forEach((p, i) => {
    const peers = 2 + (i % 2);
    for (let k = 0; k < peers; k++) {
      const local = pods.filter((q) => q.ns === p.ns && q !== p);
      const dst = rnd() < 0.7 && local.length > 0 ? pick(local) : pick(pods);
      talk(p, dst, rnd() < 1 / 9 ? 'deny' : 'allow');
    }
    if (i % 10 === 0) talk(p, 'internet', 'allow');
  });
  // A node's health checks into a few workloads.
  for (const p of pods.slice(0, 5)) {
    records.push({
      ...records[0]!,
      srcType: 'hep',
      srcNamespace: '-',
      srcName: 'ip-10-0-3-17.eu-west-1.compute.internal',
      srcIP: '10.0.3.17',
      dstType: 'wep',
      dstNamespace: p.ns,
      dstName: p.name,
      dstIP: p.ip,
      dstPort: 8080,
      reporter: 'dst',
      action: 'allow',
    });
  }
  return { records, workloads: pods.map((p) => `${p.ns}/${p.workload}`) };
}
