/**
 * DeniedPackets and NodeHealthy as CloudWatch stores them (moto), read back
 * with GetMetricStatistics and GetMetricData: the points sum to what was
 * pushed, per series, each at its own minute, also the ones held back by an
 * outage (a fault proxy between the SDK and moto denies every call for two
 * pushes).
 */
import { CloudWatchClient, type Dimension, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetricsPublisher } from '../../src/metrics/cloudwatch-metrics.js';
import { awsTestConfig, type Moto, startMoto } from '../../src/sim/moto.js';
import { silentLogger } from '../../src/util/log.js';
import { FaultProxy } from '../../tooling/sim/fault-proxy.js';
import { skipMoto } from '../harness/env.js';

describe.skipIf(skipMoto)('DeniedPackets and NodeHealthy in CloudWatch (moto)', () => {
  let moto: Moto;
  let proxy: FaultProxy;
  let cw: CloudWatchClient;
  const minute = 60_000;
  const t0 = Math.floor(Date.now() / minute) * minute - 10 * minute;
  const denied = [3, 0, 12, 5, 1, 9];
  const healthy = [true, true, false, false, true, true];
  const cluster: Dimension = { Name: 'ClusterName', Value: 'moto-c1' };
  const node: Dimension = { Name: 'NodeName', Value: 'node-7' };
  let publisherStats: { pointsSent: number; pointsDropped: number; failures: number };

  beforeAll(async () => {
    moto = await startMoto();
    proxy = await FaultProxy.start(moto.endpoint);
    process.env.AWS_ACCESS_KEY_ID ??= 'testing';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'testing';
    cw = new CloudWatchClient({ ...awsTestConfig(moto.endpoint), disableRequestCompression: true });
    let i = 0;
    let t = t0;
    const p = createMetricsPublisher({
      region: 'us-east-1',
      endpoint: proxy.endpoint,
      namespace: 'ft-moto',
      clusterName: 'moto-c1',
      nodeName: 'node-7',
      pushIntervalMs: minute,
      logger: silentLogger(),
      now: () => t,
      setTimer: () => ({}), // retries only at pushes here
      sources: {
        takeDeniedPackets: () => denied[i] ?? 0,
        healthy: () => healthy[i] ?? true,
      },
    });
    for (i = 0; i < denied.length; i++) {
      proxy.set(i === 2 || i === 3 ? 'deny' : 'pass');
      if (i < denied.length - 1) await p.push();
      else await p.stop(); // the last push is the one stop() makes
      t += minute;
    }
    publisherStats = p.stats;
  }, 60_000);

  afterAll(async () => {
    cw?.destroy();
    await proxy?.down();
    await moto?.stop();
  });

  /**
   * Per-minute values of one series. GetMetricData, not GetMetricStatistics:
   * moto's GetMetricStatistics matches every series whose dimensions include
   * the given ones (so ClusterName alone also returns the per-node series),
   * where CloudWatch matches the exact set; its GetMetricData matches exactly.
   */
  async function perMinute(
    metric: string,
    dims: Dimension[],
    stat: 'Sum' | 'Minimum' | 'SampleCount',
  ) {
    const r = await cw.send(
      new GetMetricDataCommand({
        StartTime: new Date(t0 - minute),
        EndTime: new Date(t0 + (denied.length + 1) * minute),
        ScanBy: 'TimestampAscending',
        MetricDataQueries: [
          {
            Id: 'm',
            MetricStat: {
              Metric: { Namespace: 'ft-moto', MetricName: metric, Dimensions: dims },
              Period: 60,
              Stat: stat,
            },
          },
        ],
      }),
    );
    const res = r.MetricDataResults?.[0];
    return (res?.Timestamps ?? [])
      .map((ts, i) => ({ at: ts.getTime(), value: res?.Values?.[i] }))
      .sort((a, b) => a.at - b.at);
  }

  it('the outage cost two failed pushes and no points', () => {
    expect(publisherStats.failures).toBe(2);
    expect(publisherStats.pointsDropped).toBe(0);
    expect(publisherStats.pointsSent).toBe(denied.length * 4);
  });

  it('DeniedPackets per minute equals what each push took, in both series', async () => {
    for (const dims of [[cluster], [cluster, node]]) {
      const counts = await perMinute('DeniedPackets', dims, 'SampleCount');
      expect(counts.map((c) => c.value)).toEqual(denied.map(() => 1));
      const points = await perMinute('DeniedPackets', dims, 'Sum');
      expect(points).toEqual(denied.map((v, i) => ({ at: t0 + i * minute, value: v })));
    }
  });

  it('GetMetricData sums DeniedPackets over the range to the total pushed', async () => {
    const r = await cw.send(
      new GetMetricDataCommand({
        StartTime: new Date(t0 - minute),
        EndTime: new Date(t0 + (denied.length + 1) * minute),
        MetricDataQueries: [
          {
            Id: 'denied',
            MetricStat: {
              Metric: { Namespace: 'ft-moto', MetricName: 'DeniedPackets', Dimensions: [cluster] },
              Period: 3_600,
              Stat: 'Sum',
            },
          },
        ],
      }),
    );
    const values = r.MetricDataResults?.[0]?.Values ?? [];
    expect(values.reduce((a, b) => a + b, 0)).toBe(denied.reduce((a, b) => a + b, 0));
  });

  it('NodeHealthy is 1, then 0 while unhealthy, then 1 again, per node and per cluster', async () => {
    const want = healthy.map((h, i) => ({ at: t0 + i * minute, value: h ? 1 : 0 }));
    expect(await perMinute('NodeHealthy', [cluster, node], 'Minimum')).toEqual(want);
    expect(await perMinute('NodeHealthy', [cluster], 'Minimum')).toEqual(want);
  });
});
