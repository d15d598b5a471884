// npm run bench:decode — decoder throughput on one core, on real kernel bytes
// (test/fixtures/netlink/): conntrack DESTROY messages and NFLOG packets
// replicated into one large batch, decoded into typed events.
// Writes bench-results/decode.json.
//
// conntrackDestroy is the agent's path: the listener decodes live events
// with decodeConntrackBatchView and the flow table reads each view during
// the callback. The consumer below reads what the flow table reads of a
// DESTROY: type, fromDump, id, zone, status, both tuples (family, proto,
// ports, ICMP fields), both counters and the stop time (stopMs). Address
// text is built on first read by design (the flow table formats it to match
// a connection) and is measured with the flow table (bench:flows), not here. conntrackDestroyCopied is the path that keeps
// every event (dumps, array consumers): one new event per message.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { decodeConntrackBatch, decodeConntrackBatchView } from '../dist/conntrack/decode.js';
import { decodeNflogBatch } from '../dist/nflog/decode.js';

const fixtures = new URL('../test/fixtures/netlink/', import.meta.url);

/** Splits a batch into its netlink messages. */
function messages(buf) {
  const out = [];
  for (let o = 0; o + 16 <= buf.length; ) {
    const len = buf.readUInt32LE(o);
    out.push(buf.subarray(o, o + len));
    o += (len + 3) & ~3;
  }
  return out;
}

function replicate(msg, count) {
  const padded = (msg.length + 3) & ~3;
  const buf = Buffer.alloc(padded * count);
  for (let i = 0; i < count; i++) msg.copy(buf, i * padded);
  return buf;
}

function measure(name, buf, perBatch, decode) {
  // Warm up, then time whole batches for ~2 s.
  for (let i = 0; i < 20; i++) decode(buf);
  let batches = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < 2) {
    decode(buf);
    batches++;
    elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  }
  const rate = (batches * perBatch) / elapsed;
  console.log(
    `${name.padEnd(20)} ${Math.round(rate).toLocaleString('en-US').padStart(12)} messages/s (${perBatch} per batch, ${batches} batches)`,
  );
  return {
    messagesPerSecond: Math.round(rate),
    messageBytes: buf.length / perBatch,
    batches,
    seconds: Number(elapsed.toFixed(3)),
  };
}

const events = messages(readFileSync(new URL('events.bin', fixtures)));
const destroy = events.find((m) => m.readUInt16LE(4) === 0x102);
const nflog = messages(readFileSync(new URL('nflog.bin', fixtures))).find(
  (m) => m.readUInt16LE(4) === 0x400 && m.length > 100,
);
const N = 10_000;
let sink = 0;
function readTuple(t) {
  return t.family + t.proto + t.sport + t.dport + (t.icmpType ?? 0) + (t.icmpId ?? 0);
}
/** Reads what FlowTable.onConntrackEvent reads of a DESTROY (see the top of this file). */
function readEvent(e) {
  let n = e.id + e.zone + e.status + (e.type === 'destroy' ? 1 : 0) + (e.fromDump ? 1 : 0);
  n += e.stopMs ?? 0;
  n += readTuple(e.orig);
  const r = e.reply;
  if (r !== undefined) n += readTuple(r);
  const co = e.countersOrig;
  const cr = e.countersReply;
  if (co !== undefined) n += co.packets + co.bytes;
  if (cr !== undefined) n += cr.packets + cr.bytes;
  sink += n;
}
const ctHandler = {
  event: readEvent,
  error: (e) => {
    throw e;
  },
};
const nfHandler = {
  packet: (p) => {
    sink += p.bytes;
  },
  error: (e) => {
    throw e;
  },
};

const result = {
  date: new Date().toISOString(),
  node: process.version,
  cpu: cpus()[0]?.model,
  conntrackDestroy: measure('conntrack DESTROY', replicate(destroy, N), N, (b) =>
    decodeConntrackBatchView(b, ctHandler),
  ),
  conntrackDestroyCopied: measure('conntrack (copied)', replicate(destroy, N), N, (b) =>
    decodeConntrackBatch(b, ctHandler),
  ),
  nflogPacket: measure('NFLOG packet', replicate(nflog, N), N, (b) =>
    decodeNflogBatch(b, nfHandler),
  ),
  target: { conntrackMessagesPerSecond: 3_000_000 },
  conntrackReads:
    'type, fromDump, id, zone, status, orig+reply tuples (family, proto, ports, ICMP), countersOrig, countersReply, stopMs',
};
if (sink === 0) throw new Error('nothing decoded');
mkdirSync(new URL('../bench-results/', import.meta.url), { recursive: true });
writeFileSync(
  new URL('../bench-results/decode.json', import.meta.url),
  `${JSON.stringify(result, null, 2)}\n`,
);
console.log('wrote bench-results/decode.json');
