/**
 * CloudWatch Logs delivery against moto_server through a fault proxy (the
 * emulator enforces no limits, so the requests flowtrail sends are checked
 * at the proxy): limits, an outage, throttling and resets, a deleted group,
 * access denied, and kill -9 of the process running the sink.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CloudWatchLogsClient,
  DeleteLogGroupCommand,
  GetLogEventsCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awsTestConfig, type Moto, startMoto } from '../../src/sim/moto.js';
import {
  EVENT_OVERHEAD,
  MAX_BATCH_BYTES,
  MAX_SPAN_MS,
} from '../../src/sinks/cloudwatch-logs/batcher.js';
import { createCloudWatchLogsSink } from '../../src/sinks/cloudwatch-logs/sink.js';
import type { EncodedRecord } from '../../src/sinks/types.js';
import { silentLogger } from '../../src/util/log.js';
import { FaultProxy } from '../../tooling/sim/fault-proxy.js';
import { skipMoto } from '../harness/env.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const DRIVER = new URL('../../scripts/sink-driver.mjs', import.meta.url).pathname;

async function readAll(
  logs: CloudWatchLogsClient,
  group: string,
  stream: string,
): Promise<{ timestamp: number; message: string }[]> {
  const out: { timestamp: number; message: string }[] = [];
  let token: string | undefined;
  for (;;) {
    const r = await logs.send(
      new GetLogEventsCommand({
        logGroupName: group,
        logStreamName: stream,
        startFromHead: true,
        nextToken: token,
      }),
    );
    const evs = r.events ?? [];
    out.push(...evs.map((e) => ({ timestamp: e.timestamp!, message: e.message! })));
    if (evs.length === 0 || !r.nextForwardToken || r.nextForwardToken === token) break;
    token = r.nextForwardToken;
  }
  return out;
}

async function until(
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe.skipIf(skipMoto)('CloudWatch Logs delivery (moto + fault proxy)', () => {
  let moto: Moto;
  let proxy: FaultProxy;
  let logs: CloudWatchLogsClient;
  let seq = 0;

  beforeAll(async () => {
    moto = await startMoto();
    proxy = await FaultProxy.start(moto.endpoint);
    logs = new CloudWatchLogsClient(awsTestConfig(moto.endpoint));
  });
  afterAll(async () => {
    await proxy?.stop();
    await moto?.stop();
  });

  function sink(
    group: string,
    extra: Partial<Parameters<typeof createCloudWatchLogsSink>[0]> = {},
  ) {
    return createCloudWatchLogsSink({
      region: 'us-east-1',
      endpoint: proxy.endpoint,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      logGroupName: group,
      logStreamName: 'node-1_Flowlogs',
      retentionDays: 7,
      spoolDir: mkdtempSync(join(tmpdir(), 'ft-spool-')),
      spoolMaxBytes: 256 * 1024 * 1024,
      logger: silentLogger(),
      lingerMs: 20,
      fatalRetryMs: 300,
      random: () => 0.5,
      ...extra,
    });
  }

  const lines = (n: number, tag: string, ts = Date.now(), size = 40): EncodedRecord[] =>
    Array.from({ length: n }, () => ({
      line: `${tag}-${seq++} ${'x'.repeat(size)}`,
      timestampMs: ts,
    }));

  it('every request stays within the PutLogEvents limits and every valid record arrives exactly once', async () => {
    proxy.set('pass');
    const s = sink('ft-limits');
    await s.start();
    const now = Date.now();
    const day = 24 * 3600 * 1000;
    const batches: EncodedRecord[][] = [
      lines(10_001, 'many', now - 3 * 3600 * 1000, 10), // crosses 10,000 events
      lines(1100, 'big', now - 2 * 3600 * 1000, 1000), // crosses 1 MiB (1100 × 1026+ bytes)
      lines(5, 'span-a', now - 25 * 3600 * 1000), // 25 h apart from the next: two batches
      lines(5, 'span-b', now),
      lines(3, 'too-old', now - 15 * day), // dropped, counted
      lines(2, 'too-new', now + 3 * 3600 * 1000), // dropped, counted
    ];
    for (const b of batches) await s.write(b);
    await until(() => (s.spool?.stats.depth ?? 1) === 0, 60_000, 'the spool to drain');
    await s.close();
    const puts = proxy
      .operations('PutLogEvents')
      .filter((r) => r.body?.logGroupName === 'ft-limits');
    for (const p of puts) {
      const events = p.body!.logEvents as { timestamp: number; message: string }[];
      const bytes = events.reduce((n, e) => n + Buffer.byteLength(e.message) + EVENT_OVERHEAD, 0);
      expect(bytes).toBeLessThanOrEqual(MAX_BATCH_BYTES);
      expect(events.length).toBeLessThanOrEqual(10_000);
      const ts = events.map((e) => e.timestamp);
      expect(ts).toEqual([...ts].sort((a, b) => a - b));
      expect(Math.max(...ts) - Math.min(...ts)).toBeLessThanOrEqual(MAX_SPAN_MS);
    }
    const got = await readAll(logs, 'ft-limits', 'node-1_Flowlogs');
    const expected = batches
      .flat()
      .filter((l) => !/^too-/.test(l.line))
      .map((l) => l.line);
    expect(got.length).toBe(expected.length);
    expect(new Set(got.map((e) => e.message))).toEqual(new Set(expected));
    expect(s.stats.droppedTooOld).toBe(3);
    expect(s.stats.droppedTooNew).toBe(2);
  }, 120_000);

  it('an outage: records keep coming while the endpoint is down, then all arrive in order', async () => {
    proxy.set('pass');
    const s = sink('ft-outage');
    await s.start();
    await s.write(lines(100, 'before'));
    await until(() => s.stats.recordsSent === 100, 20_000, 'the first records');
    await proxy.down();
    for (let i = 0; i < 5; i++) {
      await s.write(lines(200, `during${i}`));
      await sleep(300);
    }
    expect(s.spool!.stats.depth).toBe(1000); // held on disk, not in memory
    await proxy.up();
    await until(() => s.spool!.stats.depth === 0, 60_000, 'the backlog to drain');
    await s.close();
    const got = (await readAll(logs, 'ft-outage', 'node-1_Flowlogs')).map(
      (e) => e.message.split(' ')[0]!,
    );
    expect(got).toHaveLength(1100);
    const order = got.map((m) => Number(m.split('-').at(-1)));
    expect(order).toEqual([...order].sort((a, b) => a - b));
  }, 120_000);

  it('throttling and resets on 30% of requests: nothing lost, no retry storm', async () => {
    let r = 0;
    const coin = () => {
      r = (r * 9301 + 49297) % 233280;
      return r / 233280;
    };
    const chaos = await FaultProxy.start(moto.endpoint, { random: coin });
    try {
      chaos.set('throttle', 0.3);
      const s = sink('ft-chaos', { endpoint: chaos.endpoint });
      await s.start();
      for (let i = 0; i < 10; i++) {
        await s.write(lines(300, `c${i}`));
        if (i === 5) chaos.set('reset', 0.3);
        await sleep(150);
      }
      await until(() => s.spool!.stats.depth === 0, 90_000, 'delivery under faults');
      await s.close();
      const got = await readAll(logs, 'ft-chaos', 'node-1_Flowlogs');
      expect(new Set(got.map((e) => e.message)).size).toBe(3000);
      const puts = chaos.operations('PutLogEvents');
      const ok = puts.filter((p) => p.fault === 'pass').length;
      // Each failure costs one retry: at 30% faults, well under twice the successful requests.
      expect(puts.length).toBeLessThan(ok * 2 + 5);
      // Every injected fault (on any operation) was retried once, nothing more.
      expect(s.stats.retries).toBe(chaos.requests.filter((q) => q.fault !== 'pass').length);
    } finally {
      await chaos.stop();
    }
  }, 120_000);

  it('the log group deleted mid-run is recreated and later records arrive', async () => {
    proxy.set('pass');
    const s = sink('ft-deleted');
    await s.start();
    await s.write(lines(10, 'first'));
    await until(() => s.stats.recordsSent === 10, 20_000, 'first records');
    await logs.send(new DeleteLogGroupCommand({ logGroupName: 'ft-deleted' }));
    await s.write(lines(20, 'after'));
    await until(() => s.stats.recordsSent === 30, 20_000, 'records after the deletion');
    await s.close();
    const got = await readAll(logs, 'ft-deleted', 'node-1_Flowlogs');
    expect(got.map((e) => e.message.split('-')[0])).toEqual(Array(20).fill('after'));
    expect(s.stats.recreated).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it('access denied: a clear unhealthy reason, records stay in the spool, and arrive once access returns', async () => {
    proxy.set('deny');
    const s = sink('ft-denied');
    await s.start();
    await s.write(lines(25, 'held'));
    await until(() => !s.health().healthy, 10_000, 'unhealthy');
    expect(s.health().reason).toMatch(/AccessDeniedException/);
    expect(s.spool!.stats.depth).toBe(25);
    const attempts = proxy.requests.length;
    await sleep(1_000);
    // Backing off, not spinning.
    expect(proxy.requests.length - attempts).toBeLessThan(10);
    proxy.set('pass');
    await until(() => s.spool!.stats.depth === 0, 20_000, 'delivery after access returns');
    expect(s.health()).toEqual({ healthy: true });
    await s.close();
    expect((await readAll(logs, 'ft-denied', 'node-1_Flowlogs')).length).toBe(25);
  }, 60_000);

  it('kill -9 at random moments: every accepted record arrives; duplicates only from batches in flight', async () => {
    proxy.set('pass');
    const spool = mkdtempSync(join(tmpdir(), 'ft-crash-'));
    const accepted = new Set<string>();
    let rnd = 7;
    const rand = () => {
      rnd = (rnd * 48271) % 2147483647;
      return rnd / 2147483647;
    };
    const run = (gen: number, count?: number) => {
      const child = spawn(
        process.execPath,
        [DRIVER, proxy.endpoint, spool, String(gen), ...(count ? [String(count)] : [])],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      let buf = '';
      child.stdout!.on('data', (c: Buffer) => {
        buf += c.toString();
        for (const m of buf.matchAll(/accepted (\d+)\n/g)) {
          for (let i = 0; i < Number(m[1]); i++) accepted.add(`g${gen}-${i}`);
        }
      });
      return child;
    };
    for (let gen = 1; gen <= 3; gen++) {
      const child = run(gen);
      await sleep(800 + Math.floor(rand() * 1500));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    const last = run(4, 500);
    await new Promise((r) => last.once('exit', r));
    const got = (await readAll(logs, 'ft-crash', 'node_Flowlogs')).map((e) => e.message);
    const counts = new Map<string, number>();
    for (const m of got) counts.set(m, (counts.get(m) ?? 0) + 1);
    const missing = [...accepted].filter((a) => !counts.has(a));
    expect(missing).toEqual([]);
    const duplicates = [...counts.values()].filter((n) => n > 1).reduce((n, c) => n + c - 1, 0);
    // At most the records of the batch in flight at each of the 3 kills.
    expect(duplicates).toBeLessThanOrEqual(3 * 10_000);
    console.log(
      `kill -9 ×3: ${accepted.size} records accepted, all delivered; ${duplicates} duplicates`,
    );
  }, 120_000);
});
