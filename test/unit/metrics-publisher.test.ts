/**
 * The DeniedPackets / NodeHealthy publisher against a local fake of the
 * CloudWatch endpoint (node:http on 127.0.0.1), so what is checked is what
 * the real SDK puts on the wire: body size, points per call, compression,
 * timestamps. The fake answers AccessDenied (not retried by the SDK) while
 * "down", so an outage costs one request per attempt.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MetricDatum } from '@aws-sdk/client-cloudwatch';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  batchDatums,
  createMetricsPublisher,
  estimateDatumBytes,
  MAX_METRICS_PER_CALL,
  MAX_REQUEST_BYTES,
  type MetricsPublisherOptions,
} from '../../src/metrics/cloudwatch-metrics.js';
import { fileJournal, POINTS_FILE } from '../../src/metrics/points-journal.js';
import { silentLogger } from '../../src/util/log.js';

interface WireDatum {
  MetricName: string;
  Value: number;
  Unit: string;
  Timestamp: number;
  Dimensions: { Name: string; Value: string }[];
}
interface Received {
  target: string;
  encoding: string | undefined;
  bytes: number;
  namespace: string;
  data: WireDatum[];
}

let server: Server;
let endpoint: string;
let down = false;
let received: Received[] = [];
let attempts = 0;

function body(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const raw = await body(req);
    attempts++;
    if (down) {
      res
        .writeHead(400, { 'content-type': 'application/x-amz-json-1.0' })
        .end(JSON.stringify({ __type: 'AccessDeniedException', message: 'down for the test' }));
      return;
    }
    const json = JSON.parse(raw.toString('utf8')) as { Namespace: string; MetricData: WireDatum[] };
    received.push({
      target: String(req.headers['x-amz-target']),
      encoding: req.headers['content-encoding'],
      bytes: raw.length,
      namespace: json.Namespace,
      data: json.MetricData,
    });
    res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' }).end('{}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  endpoint = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  process.env.AWS_ACCESS_KEY_ID ??= 'testing';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'testing';
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

beforeEach(() => {
  down = false;
  received = [];
  attempts = 0;
});

const T0 = 1_800_000_000_000;

function publisher(over: Partial<MetricsPublisherOptions> & { denied?: number[] } = {}) {
  let t = T0;
  let healthy = true;
  const denied = over.denied ?? [];
  let push = 0;
  const timers: { fn: () => void; ms: number }[] = [];
  const p = createMetricsPublisher({
    region: 'us-east-1',
    endpoint,
    namespace: 'flowtrail',
    clusterName: 'c1',
    nodeName: 'n1',
    pushIntervalMs: 60_000,
    logger: silentLogger(),
    now: () => t,
    setTimer: (fn, ms) => {
      timers.push({ fn, ms });
      return {};
    },
    sources: {
      takeDeniedPackets: () => denied[push++] ?? 0,
      healthy: () => healthy,
    },
    ...over,
  });
  return {
    p,
    timers,
    advance: (ms: number) => {
      t += ms;
    },
    setHealthy: (h: boolean) => {
      healthy = h;
    },
  };
}

const delivered = (): WireDatum[] => received.flatMap((r) => r.data);
const series = (ds: WireDatum[], metric: string, node: boolean) =>
  ds.filter((d) => d.MetricName === metric && d.Dimensions.length === (node ? 2 : 1));

describe('batchDatums', () => {
  const point = (i: number, dimValue = 'c1'): MetricDatum => ({
    MetricName: 'DeniedPackets',
    Value: i,
    Unit: 'Count',
    Timestamp: new Date(T0 + i),
    Dimensions: [{ Name: 'ClusterName', Value: dimValue }],
  });

  it('splits at 1,000 metric data per call, in order', () => {
    const points = Array.from({ length: 2_500 }, (_, i) => point(i));
    const batches = batchDatums(points);
    expect(batches.map((b) => b.length)).toEqual([1_000, 1_000, 500]);
    expect(batches.flat().map((d) => d.Value)).toEqual(points.map((d) => d.Value));
  });

  it('splits on the request size when points are large, never above 1 MB', () => {
    const points = Array.from({ length: 1_000 }, (_, i) => point(i, 'x'.repeat(1_000)));
    const batches = batchDatums(points);
    expect(batches.length).toBeGreaterThan(1);
    for (const b of batches) {
      const bytes = b.reduce((n, d) => n + estimateDatumBytes(d), 0);
      expect(bytes).toBeLessThanOrEqual(MAX_REQUEST_BYTES);
    }
    expect(batches.flat()).toHaveLength(1_000);
  });
});

describe('MetricsPublisher', () => {
  it('puts DeniedPackets and NodeHealthy by cluster and by cluster+node, uncompressed, with the push time', async () => {
    const { p, advance } = publisher({ denied: [7, 0] });
    await p.push();
    advance(60_000);
    await p.push();
    expect(received).toHaveLength(2);
    for (const r of received) {
      expect(r.target).toBe('GraniteServiceVersion20100801.PutMetricData');
      expect(r.encoding).toBeUndefined();
      expect(r.namespace).toBe('flowtrail');
    }
    const first = received[0]!.data;
    expect(first).toHaveLength(4);
    expect(series(first, 'DeniedPackets', false)[0]).toMatchObject({
      Value: 7,
      Unit: 'Count',
      Timestamp: T0 / 1000,
      Dimensions: [{ Name: 'ClusterName', Value: 'c1' }],
    });
    expect(series(first, 'NodeHealthy', true)[0]).toMatchObject({
      Value: 1,
      Dimensions: [
        { Name: 'ClusterName', Value: 'c1' },
        { Name: 'NodeName', Value: 'n1' },
      ],
    });
    expect(series(received[1]!.data, 'DeniedPackets', true)[0]?.Value).toBe(0);
    expect(series(received[1]!.data, 'DeniedPackets', true)[0]?.Timestamp).toBe(
      (T0 + 60_000) / 1000,
    );
    expect(p.stats).toMatchObject({ pushes: 2, pointsSent: 8, pointsDropped: 0, buffered: 0 });
  });

  it('buffers points while CloudWatch is down and sends them with their own timestamps, ≤ 1,000 per call', async () => {
    const denied = Array.from({ length: 300 }, (_, i) => i + 1);
    const { p, advance, setHealthy } = publisher({ denied, maxBufferedPoints: 2_000 });
    down = true;
    for (let i = 0; i < 300; i++) {
      setHealthy(i % 2 === 0);
      await p.push();
      advance(60_000);
    }
    expect(received).toHaveLength(0);
    expect(p.stats.buffered).toBe(1_200);
    expect(p.stats.failures).toBe(300);
    down = false;
    await p.flushNow();
    expect(received.map((r) => r.data.length)).toEqual([1_000, 200]);
    for (const r of received) expect(r.bytes).toBeLessThanOrEqual(MAX_REQUEST_BYTES);
    const byNode = series(delivered(), 'DeniedPackets', true);
    expect(byNode.map((d) => d.Value)).toEqual(denied);
    expect(byNode.map((d) => d.Timestamp)).toEqual(denied.map((_, i) => (T0 + i * 60_000) / 1000));
    expect(series(delivered(), 'NodeHealthy', false).map((d) => d.Value)).toEqual(
      denied.map((_, i) => (i % 2 === 0 ? 1 : 0)),
    );
    expect(p.stats).toMatchObject({ pointsSent: 1_200, pointsDropped: 0, buffered: 0 });
  });

  it('drops the oldest points when the buffer overflows, and counts them', async () => {
    const { p, advance } = publisher({ denied: [1, 2, 3, 4, 5], maxBufferedPoints: 10 });
    down = true;
    for (let i = 0; i < 5; i++) {
      await p.push();
      advance(60_000);
    }
    expect(p.stats.pointsDropped).toBe(10);
    expect(p.stats.buffered).toBe(10);
    down = false;
    await p.flushNow();
    // 20 points taken, the oldest 10 dropped: the last two of push 3, all of 4 and 5.
    expect(delivered()).toHaveLength(10);
    expect(series(delivered(), 'DeniedPackets', true).map((d) => d.Value)).toEqual([3, 4, 5]);
    expect(series(delivered(), 'DeniedPackets', false).map((d) => d.Value)).toEqual([4, 5]);
    expect(p.stats.pointsDropped).toBe(10);
  });

  it('retries a failed put after a backoff that doubles up to the push interval, one timer at a time', async () => {
    const { p, timers } = publisher({ retryBaseMs: 1_000, pushIntervalMs: 10_000 });
    down = true;
    await p.push();
    expect(timers).toHaveLength(1);
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      const timer = timers.shift()!;
      delays.push(timer.ms);
      timer.fn();
      await p.idle(); // the retry the timer queued has failed
    }
    // Each delay is in [d/2, d] for d = 1 s, 2 s, 4 s, 8 s, then the 10 s cap.
    const nominal = [1_000, 2_000, 4_000, 8_000, 10_000, 10_000];
    delays.forEach((ms, i) => {
      expect(ms).toBeGreaterThanOrEqual(nominal[i]! / 2);
      expect(ms).toBeLessThanOrEqual(nominal[i]!);
    });
    expect(p.stats.retries).toBe(6);
    expect(attempts).toBe(7);
    down = false;
    timers.shift()!.fn();
    await p.idle();
    expect(delivered()).toHaveLength(4);
    expect(timers).toHaveLength(0);
    expect(p.stats.buffered).toBe(0);
  });

  it('points unsent when the agent dies (kill -9 during an outage) are sent by the next agent, with their own timestamps', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ft-points-'));
    const journal = () => fileJournal(dir, silentLogger());
    const first = publisher({ denied: [5, 7], journal: journal() });
    down = true;
    await first.p.push();
    first.advance(60_000);
    await first.p.push();
    // Nothing delivered; the process now dies without stop(): only the journal is left.
    expect(delivered()).toEqual([]);
    expect(existsSync(join(dir, POINTS_FILE))).toBe(true);
    down = false;
    const second = publisher({ denied: [1], journal: journal() });
    expect(second.p.stats.buffered).toBe(8);
    second.advance(5 * 60_000);
    await second.p.push();
    const denied = series(delivered(), 'DeniedPackets', true);
    expect(denied.map((d) => [d.Value, d.Timestamp])).toEqual([
      [5, T0 / 1000],
      [7, (T0 + 60_000) / 1000],
      [1, (T0 + 5 * 60_000) / 1000],
    ]);
    // Everything sent: the journal is gone, and a third agent sends nothing twice.
    expect(existsSync(join(dir, POINTS_FILE))).toBe(false);
    expect(publisher({ journal: journal() }).p.stats.buffered).toBe(0);
  });

  it('saved points CloudWatch would refuse as too old (two weeks) are dropped at start, counted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ft-points-'));
    const first = publisher({ denied: [3], journal: fileJournal(dir, silentLogger()) });
    down = true;
    await first.p.push();
    const saved = JSON.parse(readFileSync(join(dir, POINTS_FILE), 'utf8')) as {
      points: unknown[];
    };
    expect(saved.points).toHaveLength(4);
    const later = publisher({
      journal: fileJournal(dir, silentLogger()),
      now: () => T0 + 15 * 24 * 3600 * 1000,
    });
    expect(later.p.stats).toMatchObject({ buffered: 0, pointsDropped: 4 });
  });

  it('keeps the per-call limit constant where the service documents it', () => {
    expect(MAX_METRICS_PER_CALL).toBe(1_000);
    expect(MAX_REQUEST_BYTES).toBe(1_000_000);
  });

  it('stop() makes a last push with the current health, then stops retrying', async () => {
    const { p, timers, setHealthy } = publisher();
    setHealthy(false);
    await p.stop();
    expect(series(delivered(), 'NodeHealthy', true).map((d) => d.Value)).toEqual([0]);
    expect(timers).toHaveLength(0);
    expect(attempts).toBe(1);
  });
});
