/**
 * DeniedPackets and NodeHealthy to CloudWatch, every push interval.
 *
 * Each push takes the denied packets counted since the last push and the
 * node's health, as points with their own timestamps, in two series: by
 * ClusterName (so Sum of NodeHealthy over the cluster = healthy nodes) and
 * by ClusterName + NodeName (to find the noisy node). Points wait in a
 * bounded buffer while CloudWatch is unreachable and go out with their
 * original timestamps when it is back; overflow drops the oldest, counted.
 * Pushes have their own queue: they never wait behind log delivery.
 */
import {
  CloudWatchClient,
  type MetricDatum,
  PutMetricDataCommand,
} from '@aws-sdk/client-cloudwatch';
import PQueue from 'p-queue';
import type { Logger } from '../util/log.js';

export interface MetricsPublisherOptions {
  region: string;
  endpoint?: string;
  namespace: string;
  clusterName: string;
  nodeName: string;
  pushIntervalMs: number;
  /** Points kept while CloudWatch is down (default 10,000). */
  maxBufferedPoints?: number;
  logger: Logger;
  now?: () => number;
  sources: { takeDeniedPackets(): number; healthy(): boolean };
}

/** PutMetricData accepts at most 1,000 metric data per call. */
export const MAX_METRICS_PER_CALL = 1_000;

export interface MetricsPublisherStats {
  pushes: number;
  pointsSent: number;
  pointsDropped: number;
  failures: number;
  buffered: number;
  lastError: string | undefined;
}

export class MetricsPublisher {
  private readonly client: CloudWatchClient;
  private readonly queue = new PQueue({ concurrency: 1 });
  private buffer: MetricDatum[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  readonly stats: MetricsPublisherStats = {
    pushes: 0,
    pointsSent: 0,
    pointsDropped: 0,
    failures: 0,
    buffered: 0,
    lastError: undefined,
  };

  constructor(private readonly o: MetricsPublisherOptions) {
    this.now = o.now ?? Date.now;
    this.client = new CloudWatchClient({
      region: o.region,
      ...(o.endpoint ? { endpoint: o.endpoint, disableRequestCompression: true } : {}),
      maxAttempts: 2,
    });
  }

  start(): void {
    this.timer = setInterval(() => void this.push(), this.o.pushIntervalMs);
    this.timer.unref();
  }

  /** Samples the sources into points (one push interval) and sends what is buffered. */
  async push(): Promise<void> {
    const ts = new Date(this.now());
    const denied = this.o.sources.takeDeniedPackets();
    const healthy = this.o.sources.healthy() ? 1 : 0;
    const cluster = { Name: 'ClusterName', Value: this.o.clusterName };
    const node = { Name: 'NodeName', Value: this.o.nodeName };
    for (const dims of [[cluster], [cluster, node]]) {
      this.buffer.push(
        {
          MetricName: 'DeniedPackets',
          Unit: 'Count',
          Value: denied,
          Timestamp: ts,
          Dimensions: dims,
        },
        {
          MetricName: 'NodeHealthy',
          Unit: 'Count',
          Value: healthy,
          Timestamp: ts,
          Dimensions: dims,
        },
      );
    }
    const max = this.o.maxBufferedPoints ?? 10_000;
    if (this.buffer.length > max) {
      const drop = this.buffer.length - max;
      this.buffer.splice(0, drop);
      this.stats.pointsDropped += drop;
      this.o.logger.warn({ dropped: drop }, 'metrics buffer full: oldest points dropped');
    }
    this.stats.pushes++;
    await this.queue.add(() => this.send());
  }

  private async send(): Promise<void> {
    while (this.buffer.length > 0) {
      const batch = this.buffer.slice(0, MAX_METRICS_PER_CALL);
      try {
        await this.client.send(
          new PutMetricDataCommand({ Namespace: this.o.namespace, MetricData: batch }),
        );
        this.buffer.splice(0, batch.length);
        this.stats.pointsSent += batch.length;
        this.stats.lastError = undefined;
      } catch (err) {
        this.stats.failures++;
        this.stats.lastError = `${(err as Error).name}: ${(err as Error).message}`;
        this.o.logger.warn(
          { err: this.stats.lastError, buffered: this.buffer.length },
          'PutMetricData failed; points kept for the next push',
        );
        break;
      } finally {
        this.stats.buffered = this.buffer.length;
      }
    }
  }

  /** Last push (with the final health) and stop. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.push();
    await this.queue.onIdle();
    this.client.destroy();
  }
}
