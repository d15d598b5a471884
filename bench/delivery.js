// npm run bench:delivery — records/s and MiB/s from the spool to a local
// endpoint that accepts PutLogEvents at once (a minimal receiver in a child
// process, not moto, so the endpoint is not the bottleneck), the sender's CPU
// seconds per 1M records, and the request count.
// Writes bench-results/delivery.json.
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCloudWatchLogsSink } from '../dist/sinks/cloudwatch-logs/sink.js';
import { silentLogger } from '../dist/util/log.js';

const RECORDS = Number(process.env.BENCH_RECORDS ?? 500_000);

if (process.argv[2] === '--receiver') {
  const { createServer } = await import('node:http');
  let requests = 0;
  let events = 0;
  let bytes = 0;
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      if (target.endsWith('PutLogEvents')) {
        requests++;
        const body = Buffer.concat(chunks);
        bytes += body.length;
        events += JSON.parse(body).logEvents.length;
      }
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' }).end('{}');
    });
  });
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
  process.on('message', (m) => {
    if (m === 'stats') process.send({ requests, events, bytes });
  });
} else {
  const receiver = fork(new URL(import.meta.url).pathname, ['--receiver']);
  const { port } = await new Promise((r) => receiver.once('message', r));
  const sink = createCloudWatchLogsSink({
    region: 'us-east-1',
    endpoint: `http://127.0.0.1:${port}`,
    credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
    logGroupName: 'bench',
    logStreamName: 'node_Flowlogs',
    retentionDays: 7,
    spoolDir: mkdtempSync(join(tmpdir(), 'ft-bench-spool-')),
    spoolMaxBytes: 4 * 1024 * 1024 * 1024,
    logger: silentLogger(),
    lingerMs: 0,
  });
  // A realistic record line (~190 bytes).
  const line = (i) =>
    `1795576017 1795576317 wep stars frontend-5d9b7c8f4-* - wep stars backend-7f6d4b9c8-* - 10.244.1.${i % 250} 10.244.1.11 6 - 6379 ${i % 7} 1 1 src 5 6 412 380 allow`;
  await sink.start();
  // Fill the spool first (as after an outage), then measure the drain.
  const ts = Date.now();
  for (let i = 0; i < RECORDS; i += 10_000) {
    const batch = [];
    for (let j = i; j < Math.min(RECORDS, i + 10_000); j++)
      batch.push({ line: line(j), timestampMs: ts });
    sink.spool.append(batch);
  }
  const spoolBytes = sink.spool.stats.bytes;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await sink.write([]); // wakes the sender
  while (sink.spool.stats.depth > 0) await new Promise((r) => setTimeout(r, 20));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  receiver.send('stats');
  const recv = await new Promise((r) => receiver.once('message', r));
  await sink.close();
  receiver.kill();
  const mib = sink.stats.bytesSent / (1024 * 1024);
  const result = {
    date: new Date().toISOString(),
    node: process.version,
    cpu: cpus()[0]?.model,
    records: RECORDS,
    recordsPerSecond: Math.round(RECORDS / seconds),
    mibPerSecond: Number((mib / seconds).toFixed(1)),
    cpuSecondsPerMillionRecords: Number(
      (((cpu.user + cpu.system) / 1e6) * (1e6 / RECORDS)).toFixed(2),
    ),
    requests: recv.requests,
    mibSent: Number(mib.toFixed(1)),
    requestsPerMiB: Number((recv.requests / mib).toFixed(3)),
    eventsReceived: recv.events,
    spoolBytes,
  };
  if (recv.events !== RECORDS) throw new Error(`receiver got ${recv.events} of ${RECORDS} records`);
  mkdirSync(new URL('../bench-results/', import.meta.url), { recursive: true });
  writeFileSync(
    new URL('../bench-results/delivery.json', import.meta.url),
    `${JSON.stringify(result, null, 2)}\n`,
  );
  console.table(result);
}
