/**
 * DeniedPackets, NodeHealthy, LostEvents and (when enabled) DroppedPackets to
 * CloudWatch, every push interval.
 *
 * Each push takes the denied packets counted since the last push and the
 * node's health, as points with their own timestamps, in two series: by
 * ClusterName (so Sum of NodeHealthy over the cluster = healthy nodes) and
 * by ClusterName + NodeName (to find the noisy node). Points wait in a
 * bounded buffer while CloudWatch is unreachable and go out with their
 * original timestamps when it is back; overflow drops the oldest, counted.
 * Pushes have their own queue: they never wait behind log delivery. A failed
 * put is retried after a backoff (doubling from retryBaseMs up to the push
 * interval, with jitter) as well as at every push. With a journal, the
 * unsent points are saved beside the spool and sent after a restart (a
 * crash during an outage loses none of them).
 */
import {
  CloudWatchClient,
  type MetricDatum,
  PutMetricDataCommand,
  type PutMetricDataCommandInput,
} from '@aws-sdk/client-cloudwatch';
import PQueue from 'p-queue';
import { exponentialMs } from '../util/backoff.js';
import type { Logger } from '../util/log.js';
import type { PointsJournal } from './points-journal.js';

export interface MetricsPublisherOptions {
  region: string;
  endpoint?: string;
  namespace: string;
  clusterName: string;
  nodeName: string;
  pushIntervalMs: number;
  /**
   * Points kept while CloudWatch is down: 4 per push (2 metrics × 2 series),
   * so the default 10,000 holds ~41 h of 60 s pushes.
   */
  maxBufferedPoints?: number;
  logger: Logger;
  now?: () => number;
  sources: {
    takeDeniedPackets(): number;
    healthy(): boolean;
    /** Losses since the last push, by kind (LostEvents, Kind dimension); zero kinds are not sent. */
    takeLost?(): ReadonlyMap<string, number>;
    /** Kernel drops that are not policy denies since the last push, by reason (DroppedPackets, Reason dimension). */
    takeDropped?(): ReadonlyMap<string, number>;
  };
  /** First retry delay after a failed put; doubles up to the push interval (default 1,000). */
  retryBaseMs?: number;
  /** Replaces the SDK call (tests); resolves when CloudWatch accepted the call. */
  put?: (input: PutMetricDataCommandInput) => Promise<unknown>;
  /** Replaces setTimeout for retries (tests). */
  setTimer?: (fn: () => void, ms: number) => { unref?(): unknown };
  /** Where unsent points survive a crash (points-journal.ts); without it they live in memory only. */
  journal?: PointsJournal;
}

/** CloudWatch refuses points older than two weeks: saved ones past that are dropped (counted). */
export const MAX_POINT_AGE_MS = 14 * 24 * 3600 * 1000 - 3600 * 1000;

/** PutMetricData accepts at most 1,000 metric data per call. */
export const MAX_METRICS_PER_CALL = 1_000;
/** … and at most 1 MB of request payload. */
export const MAX_REQUEST_BYTES = 1_000_000;

/**
 * An upper bound of a datum's share of the request: the SDK sends it as
 * form fields (`MetricData.member.N.Dimensions.member.M.Name=…`) or as a
 * more compact JSON/CBOR body; three times its JSON length covers the form
 * encoding's key prefixes (measured: ~2.2×).
 */
export function estimateDatumBytes(d: MetricDatum): number {
  return 3 * JSON.stringify(d).length;
}

/** Splits points into PutMetricData calls within the count and size limits, in order. */
export function batchDatums(
  points: readonly MetricDatum[],
  maxCount = MAX_METRICS_PER_CALL,
  maxBytes = MAX_REQUEST_BYTES - 1_000,
): MetricDatum[][] {
  const batches: MetricDatum[][] = [];
  let batch: MetricDatum[] = [];
  let bytes = 0;
  for (const p of points) {
    const b = estimateDatumBytes(p);
    if (batch.length > 0 && (batch.length === maxCount || bytes + b > maxBytes)) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(p);
    bytes += b;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

export interface MetricsPublisherStats {
  pushes: number;
  pointsSent: number;
  pointsDropped: number;
  failures: number;
  retries: number;
  buffered: number;
  lastError: string | undefined;
}

export class MetricsPublisher {
  private readonly client: CloudWatchClient;
  private readonly queue = new PQueue({ concurrency: 1 });
  private buffer: MetricDatum[] = [];
  private timer: NodeJS.Timeout | undefined;
  private retryPending = false;
  private consecutiveFailures = 0;
  private stopped = false;
  private readonly now: () => number;
  private readonly put: (input: PutMetricDataCommandInput) => Promise<unknown>;
  readonly stats: MetricsPublisherStats = {
    pushes: 0,
    pointsSent: 0,
    pointsDropped: 0,
    failures: 0,
    retries: 0,
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
    this.put = o.put ?? ((input) => this.client.send(new PutMetricDataCommand(input)));
    const restored = o.journal?.load() ?? [];
    if (restored.length > 0) {
      const oldest = this.now() - MAX_POINT_AGE_MS;
      const fresh = restored.filter((d) => (d.Timestamp as Date).getTime() >= oldest);
      this.stats.pointsDropped += restored.length - fresh.length;
      this.buffer.push(...fresh);
      this.trim();
      this.stats.buffered = this.buffer.length;
      this.o.logger.info(
        { points: fresh.length, tooOld: restored.length - fresh.length },
        'unsent metric points from before the restart: sending them',
      );
    }
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
    this.pushCounts('LostEvents', 'Kind', this.o.sources.takeLost?.(), ts);
    this.pushCounts('DroppedPackets', 'Reason', this.o.sources.takeDropped?.(), ts);
    this.trim();
    this.stats.pushes++;
    this.persist();
    await this.queue.add(() => this.send());
  }

  /** Count points per value of one dimension, in both series; zero counts are not sent. */
  private pushCounts(
    metricName: string,
    dimension: string,
    counts: ReadonlyMap<string, number> | undefined,
    ts: Date,
  ): void {
    const cluster = { Name: 'ClusterName', Value: this.o.clusterName };
    const node = { Name: 'NodeName', Value: this.o.nodeName };
    for (const [value, count] of counts ?? []) {
      if (count <= 0) continue;
      const d = { Name: dimension, Value: value };
      for (const dims of [
        [cluster, d],
        [cluster, node, d],
      ]) {
        this.buffer.push({
          MetricName: metricName,
          Unit: 'Count',
          Value: count,
          Timestamp: ts,
          Dimensions: dims,
        });
      }
    }
  }

  /** Keeps the newest maxBufferedPoints points; the dropped ones are counted. */
  private trim(): void {
    const max = this.o.maxBufferedPoints ?? 10_000;
    if (this.buffer.length <= max) return;
    const drop = this.buffer.length - max;
    this.buffer.splice(0, drop);
    this.stats.pointsDropped += drop;
    this.stats.buffered = this.buffer.length;
    this.o.logger.warn(
      { dropped: drop, droppedTotal: this.stats.pointsDropped, maxBufferedPoints: max },
      'metrics buffer full while CloudWatch is unreachable: oldest points dropped',
    );
  }

  /** Sends what is buffered now (without taking a new sample). */
  async flushNow(): Promise<void> {
    await this.queue.add(() => this.send());
  }

  /** Resolves when no put is queued or in flight (tests, shutdown). */
  async idle(): Promise<void> {
    await this.queue.onIdle();
  }

  private scheduleRetry(): void {
    if (this.retryPending || this.stopped) return;
    const base = this.o.retryBaseMs ?? 1_000;
    const cap = Math.max(base, this.o.pushIntervalMs);
    const delay = exponentialMs(this.consecutiveFailures - 1, base, cap, 30);
    // Equal jitter: at least half the delay, so retries of many nodes spread out.
    const ms = delay / 2 + Math.random() * (delay / 2);
    this.retryPending = true;
    const fire = () => {
      this.retryPending = false;
      if (this.stopped || this.buffer.length === 0) return;
      this.stats.retries++;
      void this.queue.add(() => this.send());
    };
    const handle = (this.o.setTimer ?? setTimeout)(fire, ms);
    handle.unref?.();
  }

  private async send(): Promise<void> {
    while (this.buffer.length > 0) {
      const batch = batchDatums(this.buffer.slice(0, MAX_METRICS_PER_CALL))[0]!;
      // Out of the buffer while in flight, so that a push trimming the
      // buffer meanwhile cannot shift what this call removes afterwards.
      this.buffer.splice(0, batch.length);
      this.inFlight = batch;
      try {
        await this.put({ Namespace: this.o.namespace, MetricData: batch });
        this.stats.pointsSent += batch.length;
        this.stats.lastError = undefined;
        this.consecutiveFailures = 0;
      } catch (err) {
        this.buffer.unshift(...batch);
        this.trim();
        this.consecutiveFailures++;
        this.scheduleRetry();
        this.stats.failures++;
        this.stats.lastError = `${(err as Error).name}: ${(err as Error).message}`;
        this.o.logger.warn(
          { err: this.stats.lastError, buffered: this.buffer.length },
          'PutMetricData failed; points kept for a retry',
        );
        break;
      } finally {
        this.inFlight = [];
        this.stats.buffered = this.buffer.length;
      }
    }
    this.persist();
  }

  /** Saves what is unsent, the batch in flight included (a crash may cut it off). */
  private persist(): void {
    this.o.journal?.save(
      this.inFlight.length > 0 ? [...this.inFlight, ...this.buffer] : this.buffer,
    );
  }

  private inFlight: MetricDatum[] = [];

  /** Last push (with the final health) and stop. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.push();
    this.stopped = true;
    await this.queue.onIdle();
    this.client.destroy();
  }
}

export function createMetricsPublisher(o: MetricsPublisherOptions): MetricsPublisher {
  return new MetricsPublisher(o);
}
