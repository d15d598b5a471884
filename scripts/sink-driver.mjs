#!/usr/bin/env node
// Runs the CloudWatch Logs sink in its own process for crash tests: writes
// numbered records continuously and prints "accepted <last>" after each
// write() resolved (the records are then durable in the spool). SIGTERM
// closes the sink cleanly; the test uses kill -9 for crashes.
//   sink-driver.mjs ENDPOINT SPOOL_DIR GENERATION [COUNT]
import { createCloudWatchLogsSink } from '../dist/sinks/cloudwatch-logs/sink.js';
import { silentLogger } from '../dist/util/log.js';

const [endpoint, spoolDir, gen, countArg] = process.argv.slice(2);
const count = countArg ? Number(countArg) : Number.POSITIVE_INFINITY;
const sink = createCloudWatchLogsSink({
  region: 'us-east-1',
  endpoint,
  credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  logGroupName: 'ft-crash',
  logStreamName: 'node_Flowlogs',
  retentionDays: 1,
  spoolDir,
  spoolMaxBytes: 64 * 1024 * 1024,
  logger: silentLogger(),
  lingerMs: 50,
});
await sink.start();
let stopping = false;
process.once('SIGTERM', () => {
  stopping = true;
});
let n = 0;
while (!stopping && n < count) {
  const lines = [];
  for (let i = 0; i < 50 && n < count; i++, n++)
    lines.push({ line: `g${gen}-${n}`, timestampMs: Date.now() });
  await sink.write(lines);
  process.stdout.write(`accepted ${n}\n`);
  await new Promise((r) => setTimeout(r, 20));
}
await sink.close();
process.stdout.write(`closed ${JSON.stringify({ depth: sink.spool?.stats.depth ?? -1 })}\n`);
