// npm run bench:decode — decoder throughput on one core, on real kernel bytes
// (test/fixtures/netlink/): conntrack DESTROY messages and NFLOG packets
// replicated into one large batch, decoded into typed events.
// Writes bench-results/decode.json.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { decodeConntrackBatch } from '../dist/conntrack/decode.js';
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
const ctHandler = {
  event: (e) => {
    sink += e.countersOrig.packets;
  },
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
    decodeConntrackBatch(b, ctHandler),
  ),
  nflogPacket: measure('NFLOG packet', replicate(nflog, N), N, (b) =>
    decodeNflogBatch(b, nfHandler),
  ),
  target: { conntrackMessagesPerSecond: 3_000_000 },
};
if (sink === 0) throw new Error('nothing decoded');
mkdirSync(new URL('../bench-results/', import.meta.url), { recursive: true });
writeFileSync(
  new URL('../bench-results/decode.json', import.meta.url),
  `${JSON.stringify(result, null, 2)}\n`,
);
console.log('wrote bench-results/decode.json');
