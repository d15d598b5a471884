/**
 * Health as users see it: NodeHealthy points become 0 when a sink fails or
 * the capture stalls (read back from moto), and /readyz explains why.
 */
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MetricsPublisher } from '../../src/metrics/cloudwatch-metrics.js';
import { evaluateHealth, type HealthSignals } from '../../src/metrics/health.js';
import { startHttpServer } from '../../src/metrics/http-server.js';
import { type Moto, readFromEmulator, startMoto } from '../../src/sim/moto.js';
import { silentLogger } from '../../src/util/log.js';
import { skipMoto } from '../harness/env.js';

function signals(
  over: Partial<{
    open: boolean;
    lastDump: number | undefined;
    synced: boolean;
    sinkOk: boolean;
  }> = {},
): HealthSignals {
  const s = {
    open: true,
    lastDump: 10_000 as number | undefined,
    synced: true,
    sinkOk: true,
    ...over,
  };
  return {
    captureOpen: () => s.open,
    lastDumpOkMs: () => s.lastDump,
    endpointsSynced: () => s.synced,
    sinks: () => [
      s.sinkOk
        ? { name: 'cloudwatch', healthy: true }
        : {
            name: 'cloudwatch',
            healthy: false,
            reason: 'CloudWatch Logs: AccessDeniedException (HTTP 400): denied',
          },
    ],
  };
}

describe('health evaluation', () => {
  it.each([
    ['healthy', {}, []],
    [
      'sink failing',
      { sinkOk: false },
      ['sink cloudwatch: CloudWatch Logs: AccessDeniedException (HTTP 400): denied'],
    ],
    [
      'capture stalled (no dump for 5 minutes)',
      { lastDump: 10_000 - 300_000 },
      ['no conntrack dump succeeded for 300 s'],
    ],
    ['capture closed', { open: false }, ['netlink capture is not running']],
    ['endpoints not synced', { synced: false }, ['endpoint cache not synced yet']],
  ])('%s', (_name, over, reasons) => {
    const h = evaluateHealth(signals(over), 10_000, 180_000);
    expect(h).toEqual({ healthy: reasons.length === 0, reasons });
  });

  it('/readyz answers 503 with the reasons, /healthz stays 200', async () => {
    let ok = false;
    const server = await startHttpServer({
      listen: '127.0.0.1:0',
      registry: new Registry(),
      health: () => evaluateHealth(signals({ sinkOk: ok }), 10_000, 180_000),
    });
    try {
      const notReady = await fetch(`http://${server.address}/readyz`);
      expect(notReady.status).toBe(503);
      expect(await notReady.json()).toEqual({
        ready: false,
        reasons: ['sink cloudwatch: CloudWatch Logs: AccessDeniedException (HTTP 400): denied'],
      });
      expect((await fetch(`http://${server.address}/healthz`)).status).toBe(200);
      ok = true;
      expect((await fetch(`http://${server.address}/readyz`)).status).toBe(200);
      expect((await fetch(`http://${server.address}/nope`)).status).toBe(404);
    } finally {
      await server.close();
    }
  });
});

describe.skipIf(skipMoto)('NodeHealthy in CloudWatch', () => {
  let moto: Moto;
  beforeAll(async () => {
    moto = await startMoto();
    process.env.AWS_ACCESS_KEY_ID ??= 'testing';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'testing';
  });
  afterAll(async () => {
    await moto?.stop();
  });

  it('points are 1 while healthy, 0 while the sink fails, with their own timestamps after an outage', async () => {
    let sinkOk = true;
    let t = Date.now() - 180_000;
    const publisher = new MetricsPublisher({
      region: 'us-east-1',
      endpoint: moto.endpoint,
      namespace: 'ft-health',
      clusterName: 'c1',
      nodeName: 'n1',
      pushIntervalMs: 60_000,
      logger: silentLogger(),
      now: () => t,
      sources: {
        takeDeniedPackets: () => 0,
        healthy: () => evaluateHealth(signals({ sinkOk, lastDump: t }), t, 180_000).healthy,
      },
    });
    await publisher.push(); // minute 1: healthy
    t += 60_000;
    sinkOk = false;
    await publisher.push(); // minute 2: the sink fails
    t += 60_000;
    sinkOk = true;
    await publisher.push(); // minute 3: healthy again
    await publisher.stop();
    const points = readFromEmulator(moto.endpoint, undefined, [
      'metric',
      'ft-health',
      'NodeHealthy',
      'ClusterName=c1,NodeName=n1',
      String(t - 300_000),
      String(t + 120_000),
    ]) as { Timestamp: string; Minimum: number; Maximum: number }[];
    const byTime = points
      .sort((a, b) => Date.parse(a.Timestamp) - Date.parse(b.Timestamp))
      .map((p) => p.Minimum);
    expect(byTime.slice(0, 3)).toEqual([1, 0, 1]);
    expect(publisher.stats.pointsDropped).toBe(0);
  });
});
