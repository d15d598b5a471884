// npm run bench:volume — bytes of flow records per aggregation kind on a
// realistic mix, through the real flow table (dist/flows) and encoder.
// Writes bench-results/volume.json and prints a table for docs/benchmarks.md.
//
// The mix, per 5-minute interval on one node (an hour, 12 intervals):
//   - 5 client deployments × 6 replicas on this node, each replica opening
//     40 short TCP connections (new source port each) to random replicas of
//     4 server deployments × 4 replicas (half on this node, half remote);
//   - 12 long-lived connections (a database pool) reported every interval;
//   - UDP DNS lookups from every client replica to 2 kube-dns replicas;
//   - denied attempts: a scanner on the internet probing 20 ports of 3 pods,
//     and a client replica denied egress to a remote pod.
// The same events feed three flow tables, at kinds 0, 1 and 2 (allowed and
// denied alike), and every record is encoded as the agent would write it.
// `estimate` re-aggregates the kind-0 records too: its bytes must agree.
import { mkdirSync, writeFileSync } from 'node:fs';
import { EndpointCache } from '../dist/endpoints/cache.js';
import { estimate } from '../dist/estimate/estimate.js';
import { FlowTable } from '../dist/flows/flow-table.js';
import { encodeRecord } from '../dist/format/codec.js';
import { parseRulePrefix } from '../dist/nflog/prefix.js';

const INTERVAL_S = 300;
const INTERVALS = 12;
const T0 = 1_764_000_000_000;

let seed = 42;
const rand = (n) => {
  seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
  return seed % n;
};
const hash = (i) => ((i * 2_654_435_761) >>> 0).toString(36).slice(-5).padStart(5, 'z');

const cache = new EndpointCache({ nodeName: 'node-1' });
const pods = { clients: [], servers: [], dns: [], db: [] };
let ipSeq = 2;
function pod(ns, deploy, rs, i, local) {
  const ip = `10.244.${local ? 1 : 2}.${ipSeq++}`;
  const name = rs ? `${deploy}-${rs}-${hash(ipSeq)}` : `${deploy}-${i}`;
  cache.upsertPod(
    {
      namespace: ns,
      name,
      ...(rs ? { generateName: `${deploy}-${rs}-` } : {}),
      ips: [ip],
      nodeName: local ? 'node-1' : 'node-2',
      labels: { app: deploy },
    },
    0,
  );
  return ip;
}
for (let d = 0; d < 5; d++) {
  const list = [];
  for (let r = 0; r < 6; r++) list.push(pod('shop', `client${d}`, '7d98456675', r, true));
  pods.clients.push(list);
}
for (let d = 0; d < 4; d++) {
  const list = [];
  for (let r = 0; r < 4; r++) list.push(pod('backend', `svc${d}`, '5f6d7c8b9a', r, r % 2 === 0));
  pods.servers.push(list);
}
for (let r = 0; r < 2; r++) pods.dns.push(pod('kube-system', 'coredns', '66c5d4b7f8', r, r === 0));
for (let r = 0; r < 3; r++) pods.db.push(pod('data', 'postgres', undefined, r, true));
cache.markSynced();

const tables = [0, 1, 2].map(
  (kind) =>
    new FlowTable({
      endpoints: cache,
      aggregationKindForAllowed: kind,
      aggregationKindForDenied: kind,
      includeLabels: false,
      ingressGroup: 1,
      egressGroup: 2,
      maxFlows: 1_000_000,
    }),
);

let connId = 1;
let sport = 20_000;
function conn(type, src, dst, proto, dport, counters, id = connId++, port = sport++) {
  const orig = { family: 4, proto, src, dst, sport: port, dport };
  const reply = { family: 4, proto, src: dst, dst: src, sport: dport, dport: port };
  return {
    type,
    fromDump: false,
    orig,
    reply,
    id,
    zone: 0,
    mark: 0,
    status: 0x18e,
    tcpState: proto === 6 ? (type === 'destroy' ? 7 : 3) : undefined,
    countersOrig: counters ? { packets: counters[0], bytes: counters[1] } : undefined,
    countersReply: counters ? { packets: counters[2], bytes: counters[3] } : undefined,
    startNs: undefined,
    stopNs: undefined,
  };
}
function denied(group, src, dst, dport, prefix) {
  return {
    group,
    prefix,
    verdict: parseRulePrefix(prefix),
    family: 4,
    proto: 6,
    src,
    dst,
    sport: 40_000 + rand(20_000),
    dport,
    bytes: 60,
    timestampMs: undefined,
    indev: undefined,
    outdev: undefined,
    hwaddr: undefined,
  };
}

const feed = (fn) => {
  for (const t of tables) fn(t);
};
// The table's input as the agent streams it: events one at a time, a dump entry by entry.
const feedEvents = (t, events, nowMs) => {
  for (const e of events) t.onConntrackEvent(e, nowMs);
};
const feedDump = (t, entries, nowMs) => {
  t.beginDump();
  for (const e of entries) t.onDumpEvent(e, nowMs);
  t.endDump(nowMs);
};
const pool = Array.from({ length: 12 }, (_, i) => ({
  src: pods.clients[i % 5][i % 6],
  dst: pods.db[i % 3],
  id: connId++,
  port: 50_000 + i,
}));
let nowMs = T0;
feed((t) => feedDump(t, [], nowMs));
feed((t) =>
  feedEvents(
    t,
    pool.map((p) => conn('new', p.src, p.dst, 6, 5432, undefined, p.id, p.port)),
    nowMs,
  ),
);

const out = { bytes: [0, 0, 0], records: [0, 0, 0], allowedRecords: [0, 0, 0] };
const kind0 = [];
let connections = 0;
let deniedPackets = 0;
for (let i = 0; i < INTERVALS; i++) {
  const start = nowMs;
  const events = [];
  for (const list of pods.clients) {
    for (const client of list) {
      for (let k = 0; k < 40; k++) {
        const server = pods.servers[rand(4)][rand(4)];
        const c = [8 + rand(6), 900 + rand(400), 6 + rand(6), 2_000 + rand(30_000)];
        const id = connId++;
        const port = sport++;
        events.push(conn('new', client, server, 6, 8080, undefined, id, port));
        events.push(conn('destroy', client, server, 6, 8080, c, id, port));
        connections++;
      }
      const dns = pods.dns[rand(2)];
      const id = connId++;
      const port = sport++;
      events.push(conn('new', client, dns, 17, 53, undefined, id, port));
      events.push(conn('destroy', client, dns, 17, 53, [1, 70, 1, 130], id, port));
      connections++;
    }
    if (sport > 60_000) sport = 20_000;
  }
  nowMs = start + 1_000;
  feed((t) => feedEvents(t, events, nowMs));
  const packets = [];
  for (let p = 0; p < 20; p++) {
    for (const target of [pods.servers[0][0], pods.servers[1][0], pods.db[0]]) {
      packets.push(denied(1, '198.51.100.23', target, 1_000 + p, 'DPI|default.deny'));
    }
  }
  for (let k = 0; k < 10; k++) {
    packets.push(
      denied(2, pods.clients[0][0], pods.servers[3][1], 9_090, 'DPE|default.egress-deny'),
    );
  }
  deniedPackets += packets.length;
  feed((t) => t.onNflog(packets, nowMs));
  // The flush dump: the pool's counters grew.
  nowMs = start + INTERVAL_S * 1_000;
  const dump = pool.map((p, j) => ({
    ...conn(
      'update',
      p.src,
      p.dst,
      6,
      5432,
      [(i + 1) * 50, (i + 1) * 9_000 + j, (i + 1) * 60, (i + 1) * 120_000],
      p.id,
      p.port,
    ),
    fromDump: true,
  }));
  tables.forEach((t, kind) => {
    feedDump(t, dump, nowMs);
    const records = t.flush(start, nowMs);
    for (const r of records) {
      out.bytes[kind] += Buffer.byteLength(encodeRecord(r));
      out.records[kind]++;
      if (r.action === 'allow') out.allowedRecords[kind]++;
      if (kind === 0) kind0.push(r);
    }
  });
}

const e = estimate(kind0, {
  prices: { standardPerGb: 0.5, infrequentAccessPerGb: 0.25 },
  aggregationKindForAllowed: 2,
  aggregationKindForDenied: 1,
  enabledForAllowed: true,
  enabledForDenied: true,
  volume: { includeNamespaces: [], excludeNamespaces: [], maxRecordsPerFlush: 0 },
});
const spanSeconds = INTERVALS * INTERVAL_S;
const perDay = 86_400 / spanSeconds;
const result = {
  date: new Date().toISOString(),
  node: process.version,
  scenario: {
    intervals: INTERVALS,
    intervalSeconds: INTERVAL_S,
    connections,
    longLived: pool.length,
    deniedPackets,
    localPods: 5 * 6 + 8 + 1 + 3,
  },
  bytesPerKind: { 0: out.bytes[0], 1: out.bytes[1], 2: out.bytes[2] },
  recordsPerKind: { 0: out.records[0], 1: out.records[1], 2: out.records[2] },
  bytesPerDayPerKind: {
    0: Math.round(out.bytes[0] * perDay),
    1: Math.round(out.bytes[1] * perDay),
    2: Math.round(out.bytes[2] * perDay),
  },
  kind2ToKind0: out.bytes[2] / out.bytes[0],
  kind1ToKind0: out.bytes[1] / out.bytes[0],
  target: { kind2ToKind0AtMost: 0.1 },
  estimateFromKind0: Object.fromEntries(
    e.rows.filter((r) => r.kind !== 'configured').map((r) => [r.kind, r.bytes]),
  ),
};
result.estimateAgrees = [0, 1, 2].every((k) => result.estimateFromKind0[k] === out.bytes[k]);
mkdirSync('bench-results', { recursive: true });
writeFileSync('bench-results/volume.json', `${JSON.stringify(result, null, 2)}\n`);
console.log('| kind | records | bytes | bytes/day | vs kind 0 |');
console.log('|---|---|---|---|---|');
for (const k of [0, 1, 2]) {
  console.log(
    `| ${k} | ${out.records[k]} | ${out.bytes[k]} | ${result.bytesPerDayPerKind[k]} | ${(out.bytes[k] / out.bytes[0]).toFixed(3)} |`,
  );
}
console.log(`estimate from the kind-0 records agrees: ${result.estimateAgrees}`);
