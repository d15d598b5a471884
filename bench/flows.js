// npm run bench:flows — events/s through conntrack decode + flow table +
// aggregation + record encoding on one core, with 100,000 concurrent
// connections among 10,000 pods, and the process RSS at that size.
// Writes bench-results/flows.json.
//
// Scenario (all timings exclude building the netlink bytes):
//   NEW for every connection (batches of 1,024 messages, as a drained socket
//   would hand them over), then INTERVALS dump+flush rounds (each dump lists
//   every connection with grown counters; the flush aggregates at the default
//   kinds and every record is encoded), then DESTROY for every connection
//   with its final counters and a last flush.
import { mkdirSync, writeFileSync } from 'node:fs';
import { decodeConntrackBatchView } from '../dist/conntrack/decode.js';
import { EndpointCache } from '../dist/endpoints/cache.js';
import { FlowTable } from '../dist/flows/flow-table.js';
import { encodeRecord } from '../dist/format/codec.js';

const FLOWS = 100_000;
const PODS = 10_000;
const LOCAL_PODS = 2_000; // pods on this node; every connection starts at one
const REPLICAS = 10; // pods per deployment (aggregation kind 2 merges them)
const INTERVALS = 3;
const BATCH = 1024;

// --- ctnetlink message building (not timed) ---------------------------------
// Bytes are built as plain arrays (GC heap) and copied into one Buffer per
// batch, so that building them leaves no malloc'd garbage in the RSS.
const NESTED = 0x8000;
function attr(type, payload) {
  const len = 4 + payload.length;
  const out = [len & 255, len >> 8, type & 255, type >> 8, ...payload];
  while (out.length % 4 !== 0) out.push(0);
  return out;
}
const nest = (type, parts) => attr(type | NESTED, parts.flat());
const u8 = (v) => [v];
const be16 = (v) => [(v >> 8) & 255, v & 255];
const be32 = (v) => [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
const be64 = (v) => [0, 0, 0, 0, ...be32(v)];
const ip4 = (n) => be32(n);
function tuple(type, src, dst, sport, dport) {
  return nest(type, [
    nest(1, [attr(1, ip4(src)), attr(2, ip4(dst))]), // CTA_TUPLE_IP: V4_SRC, V4_DST
    nest(2, [attr(1, u8(6)), attr(2, be16(sport)), attr(3, be16(dport))]), // CTA_TUPLE_PROTO
  ]);
}
function message(msgType, flags, f, counters, tcpState) {
  const parts = [
    tuple(1, f.src, f.dst, f.sport, 80),
    tuple(2, f.dst, f.src, 80, f.sport),
    attr(3, be32(0x18e)), // CTA_STATUS
    nest(4, [nest(1, [attr(1, u8(tcpState))])]), // CTA_PROTOINFO_TCP_STATE
  ];
  if (counters) {
    parts.push(nest(9, [attr(1, be64(counters[0])), attr(2, be64(counters[1]))]));
    parts.push(nest(10, [attr(1, be64(counters[2])), attr(2, be64(counters[3]))]));
  }
  parts.push(attr(12, be32(f.id))); // CTA_ID
  const body = [2, 0, 0, 0, ...parts.flat()]; // nfgenmsg AF_INET
  const len = 16 + body.length;
  // nlmsghdr: length, type, flags (little-endian), seq, pid.
  return [
    ...[len & 255, (len >> 8) & 255, 0, 0],
    ...[msgType & 255, msgType >> 8, flags & 255, flags >> 8],
    ...[0, 0, 0, 0, 0, 0, 0, 0],
    ...body,
  ];
}
const NEW = 0x100;
const DESTROY = 0x102;
const F_CREATE_EXCL = 0x400 | 0x200;
const F_MULTI = 0x2;
const ESTABLISHED = 3;

const podIp = (i) => (((10 << 24) | (244 << 16) | ((i >> 8) << 8) | (i & 0xff)) >>> 0) + 256; // 10.244.1.0+
const ipText = (n) => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;

const flows = [];
for (let i = 0; i < FLOWS; i++) {
  const srcPod = i % LOCAL_PODS;
  const dstPod = (i * 7919 + 1) % PODS;
  flows.push({
    src: podIp(srcPod),
    dst: podIp(dstPod),
    sport: 10_000 + Math.floor(i / LOCAL_PODS),
    id: i * 2654435761,
  });
}
const countersAt = (i, round) => [round * 10 + (i % 5), round * 4000 + i, round * 8, round * 9000];

function batches(build) {
  const out = [];
  for (let s = 0; s < FLOWS; s += BATCH) {
    const msgs = [];
    for (let i = s; i < Math.min(FLOWS, s + BATCH); i++) msgs.push(build(i));
    out.push(Buffer.from(msgs.flat()));
  }
  // Building the bytes is the bench's garbage, not the agent's: collect it before timing.
  globalThis.gc?.();
  return out;
}

// --- the world ----------------------------------------------------------------
const cache = new EndpointCache({ nodeName: 'node-1' });
for (let p = 0; p < PODS; p++) {
  const deploy = Math.floor(p / REPLICAS);
  cache.upsertPod(
    {
      namespace: `ns-${deploy % 50}`,
      name: `app-${deploy}-5d9f8c7b6-${p.toString(36).padStart(5, 'x')}`,
      generateName: `app-${deploy}-5d9f8c7b6-`,
      ips: [ipText(podIp(p))],
      nodeName: p < LOCAL_PODS ? 'node-1' : `node-${2 + (p % 40)}`,
      labels: { app: `app-${deploy}`, tier: p % 2 ? 'web' : 'api' },
    },
    0,
  );
}
cache.markSynced();

const table = new FlowTable({
  endpoints: cache,
  aggregationKindForAllowed: 2,
  aggregationKindForDenied: 1,
  includeLabels: false,
  ingressGroup: 1,
  egressGroup: 2,
  maxFlows: 250_000,
});

let events = 0;
let records = 0;
let encodedBytes = 0;
let elapsedNs = 0n;
let rssPeak = 0;
const errors = [];
let atPeak;
const sampleRss = () => {
  globalThis.gc?.();
  const m = process.memoryUsage();
  if (m.rss > rssPeak) {
    rssPeak = m.rss;
    atPeak = m;
  }
};

const phases = {};
function timed(fn, phase = 'other') {
  // The garbage of building the messages is the bench's, not the agent's: collect it untimed.
  globalThis.gc?.();
  const t0 = process.hrtime.bigint();
  fn();
  const dt = process.hrtime.bigint() - t0;
  elapsedNs += dt;
  phases[phase] = (phases[phase] ?? 0) + Number(dt) / 1e9;
}

function flushAndEncode(startMs, endMs) {
  const rs = table.flush(startMs, endMs);
  for (const r of rs) encodedBytes += encodeRecord(r).length + 1;
  records += rs.length;
}

let now = 1_700_000_000_000;
const intervalMs = 300_000;

// NEW events: one decode + one table call per drained batch.
{
  const bufs = batches((i) => message(NEW, F_CREATE_EXCL, flows[i], undefined, ESTABLISHED));
  timed(() => {
    // As the agent's listener: one reused event view per batch, one table call per event.
    const handler = {
      event: (e) => {
        table.onConntrackEvent(e, now);
        events++;
      },
      error: (e) => errors.push(e),
    };
    for (const b of bufs) decodeConntrackBatchView(b, handler);
  }, 'new');
}
let intervalStart = now;
for (let round = 1; round <= INTERVALS; round++) {
  now += intervalMs;
  const bufs = batches((i) => message(NEW, F_MULTI, flows[i], countersAt(i, round), ESTABLISHED));
  // The dump arrives in batches, each decoded and applied at once.
  timed(() => {
    table.beginDump();
    const handler = {
      event: (e) => {
        table.onDumpEvent(e, now);
        events++;
      },
      error: (e) => errors.push(e),
    };
    for (const b of bufs) decodeConntrackBatchView(b, handler, { fromDump: true });
    table.endDump(now);
  }, 'dump');
  sampleRss();
  timed(() => flushAndEncode(intervalStart, now), 'flushEncode');
  intervalStart = now;
}
const trackedAtPeak = table.stats.tracked;
{
  now += intervalMs;
  const bufs = batches((i) => message(DESTROY, 0, flows[i], countersAt(i, INTERVALS + 1), 7));
  timed(() => {
    const handler = {
      event: (e) => {
        table.onConntrackEvent(e, now);
        events++;
      },
      error: (e) => errors.push(e),
    };
    for (const b of bufs) decodeConntrackBatchView(b, handler);
    table.applyDump([], now);
    flushAndEncode(intervalStart, now);
  }, 'destroyAndFlush');
}
sampleRss();

if (errors.length > 0) throw new Error(`decode errors: ${errors[0].message}`);
if (trackedAtPeak !== FLOWS) throw new Error(`tracked ${trackedAtPeak}, expected ${FLOWS}`);
if (table.stats.tracked !== 0) throw new Error(`tracked ${table.stats.tracked} after DESTROY`);

const seconds = Number(elapsedNs) / 1e9;
const result = {
  eventsPerSecond: Math.round(events / seconds),
  rssMiB: Math.round((rssPeak / 1048576) * 10) / 10,
  flows: FLOWS,
  pods: PODS,
  localPods: LOCAL_PODS,
  events,
  intervals: INTERVALS + 1,
  records,
  encodedBytes,
  seconds: Number(seconds.toFixed(3)),
  phaseSeconds: Object.fromEntries(
    Object.entries(phases).map(([k, v]) => [k, Number(v.toFixed(3))]),
  ),
  rssNote: globalThis.gc
    ? "peak RSS at 100k tracked connections, GC forced before sampling; includes the bench's own pre-built netlink batches (arrayBuffers)"
    : 'peak RSS without --expose-gc: includes uncollected garbage',
  atPeakMiB: Object.fromEntries(
    Object.entries(atPeak).map(([k, v]) => [k, Math.round(v / 1048576)]),
  ),
  aggregationKindForAllowed: 2,
  stats: table.stats,
  scope: 'conntrack decode + flow table + endpoint cache lookups + aggregation + 24-field encoding',
  node: process.version,
  date: new Date().toISOString(),
};
console.log(JSON.stringify(result, null, 2));
mkdirSync(new URL('../bench-results/', import.meta.url), { recursive: true });
writeFileSync(
  new URL('../bench-results/flows.json', import.meta.url),
  `${JSON.stringify(result, null, 2)}\n`,
);
