#!/usr/bin/env node
// The fault proxy (tooling/sim/fault-proxy.ts) as its own process, so that it can
// run inside a simulated node's namespace next to the agent and moto.
//   fault-proxy.mjs TARGET_URL
// Prints {"endpoint":"http://127.0.0.1:PORT"} when listening, then reads
// commands a line at a time on stdin: `<mode> [probability]` (pass, throttle,
// fail500, fail503, deny, reset, stall) or `down` / `up`; each answered {"ok":…}.
import { createInterface } from 'node:readline';
import { FaultProxy } from '../dist-tooling/sim/fault-proxy.js';

const proxy = await FaultProxy.start(process.argv[2]);
process.stdout.write(`${JSON.stringify({ endpoint: proxy.endpoint })}\n`);
for await (const line of createInterface({ input: process.stdin })) {
  const [mode, p] = line.trim().split(/\s+/);
  if (mode === 'down') await proxy.down();
  else if (mode === 'up') await proxy.up();
  else if (mode) proxy.set(mode, p === undefined ? 1 : Number(p));
  process.stdout.write(`${JSON.stringify({ ok: line.trim(), requests: proxy.requests.length })}\n`);
  // Keep the memory of what it saw bounded over hours.
  if (proxy.requests.length > 10_000) proxy.requests.splice(0, proxy.requests.length - 1_000);
}
await proxy.stop();
