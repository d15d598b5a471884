/**
 * CloudWatchLogsSink: records go to the disk spool first (write() resolves
 * once they are fsynced there), then a single sender sends them in order,
 * batch by batch, and acknowledges each batch after PutLogEvents succeeded.
 * Throttling, 5xx, resets and timeouts are retried with capped exponential
 * backoff and full jitter, for as long as it takes (the spool holds the
 * backlog); a deleted group or stream is recreated; errors that cannot
 * succeed (access denied, bad parameters) mark the sink unhealthy with the
 * reason and are retried slowly, never in a tight loop.
 */
import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  CreateLogStreamCommand,
  DescribeLogGroupsCommand,
  PutLogEventsCommand,
  PutRetentionPolicyCommand,
  TagResourceCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import PQueue from 'p-queue';
import type { FlowRecord } from '../../format/record.js';
import type { Logger } from '../../util/log.js';
import { Spool } from '../spool/spool.js';
import type { EncodedRecord, Sink, SinkHealth } from '../types.js';
import { MAX_BATCH_EVENTS, planBatch } from './batcher.js';
import { backoffMs, classify } from './retry.js';

export interface CloudWatchLogsSinkOptions {
  region: string;
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  logGroupName: string;
  logStreamName: string;
  retentionDays: number;
  tags?: Record<string, string>;
  spoolDir: string;
  spoolMaxBytes: number;
  logger: Logger;
  now?: () => number;
  /** Wait this long after new records for more before sending a partial batch. */
  lingerMs?: number;
  /** Longest wait between retries of a failure that cannot succeed by itself. */
  fatalRetryMs?: number;
  /** Called with each successful PutLogEvents latency in seconds (the Prometheus histogram). */
  observePutLatency?: (seconds: number) => void;
  /** On close, keep sending for at most this long; the rest stays spooled. */
  drainTimeoutMs?: number;
  random?: () => number;
  /**
   * Records lost for good: dropped by a full spool, or rejected by (or
   * outside the window of) CloudWatch; with their time range in ms.
   */
  onLoss?: (
    kind: 'SpoolFull' | 'Rejected',
    count: number,
    fromMs: number,
    toMs: number,
    detail: string,
  ) => void;
}

function timeRange(events: readonly { timestamp?: number | undefined }[]): [number, number] {
  let from = Number.POSITIVE_INFINITY;
  let to = Number.NEGATIVE_INFINITY;
  for (const e of events) {
    const t = e.timestamp ?? 0;
    if (t < from) from = t;
    if (t > to) to = t;
  }
  return Number.isFinite(from) ? [from, to] : [0, 0];
}

export interface CloudWatchLogsSinkStats {
  recordsAccepted: number;
  recordsSent: number;
  bytesSent: number;
  requests: number;
  failedRequests: number;
  retries: number;
  rejectedTooOld: number;
  rejectedTooNew: number;
  rejectedExpired: number;
  droppedTooOld: number;
  droppedTooNew: number;
  truncated: number;
  recreated: number;
  lastError: string | undefined;
  lastPutLatencyMs: number | undefined;
}

class CloudWatchLogsSink implements Sink {
  readonly name = 'cloudwatch';
  readonly stats: CloudWatchLogsSinkStats = {
    recordsAccepted: 0,
    recordsSent: 0,
    bytesSent: 0,
    requests: 0,
    failedRequests: 0,
    retries: 0,
    rejectedTooOld: 0,
    rejectedTooNew: 0,
    rejectedExpired: 0,
    droppedTooOld: 0,
    droppedTooNew: 0,
    truncated: 0,
    recreated: 0,
    lastError: undefined,
    lastPutLatencyMs: undefined,
  };
  readonly client: CloudWatchLogsClient;
  spool: Spool | undefined;
  private readonly queue = new PQueue({ concurrency: 1 });
  private ready = false;
  private fatal: string | undefined;
  private stopping = false;
  private wake: (() => void) | undefined;
  private pump: Promise<void> | undefined;
  private readonly now: () => number;

  constructor(private readonly o: CloudWatchLogsSinkOptions) {
    this.now = o.now ?? Date.now;
    this.client = new CloudWatchLogsClient({
      region: o.region,
      ...(o.endpoint ? { endpoint: o.endpoint } : {}),
      ...(o.credentials ? { credentials: o.credentials } : {}),
      // Retries are ours (durable, unbounded while the spool has room).
      maxAttempts: 1,
      requestHandler: { requestTimeout: 15_000, connectionTimeout: 5_000 },
    });
  }

  async start(): Promise<void> {
    this.spool = Spool.open({
      dir: this.o.spoolDir,
      maxBytes: this.o.spoolMaxBytes,
      logger: this.o.logger,
      onDrop: (count, fromMs, toMs) =>
        this.o.onLoss?.('SpoolFull', count, fromMs, toMs, 'spool.maxBytes reached'),
    });
    if (this.spool.stats.depth > 0) {
      this.o.logger.info(
        { records: this.spool.stats.depth },
        'replaying spooled records from before the restart',
      );
    }
    this.pump = this.run();
  }

  async write(_records: readonly FlowRecord[], lines: readonly EncodedRecord[]): Promise<void> {
    if (!this.spool) throw new Error('cloudwatch sink not started');
    this.spool.append(lines);
    this.stats.recordsAccepted += lines.length;
    this.lastAppendMs = this.now();
    this.wake?.();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        this.wake = undefined;
        resolve();
      };
    });
  }

  /** Creates the group and stream (already-exists is success), sets retention and tags. */
  private async ensureResources(): Promise<void> {
    const { logGroupName, logStreamName } = this.o;
    try {
      await this.client.send(
        new CreateLogGroupCommand({ logGroupName, ...(this.o.tags ? { tags: this.o.tags } : {}) }),
      );
      this.o.logger.info({ logGroupName }, 'log group created');
    } catch (err) {
      if ((err as Error).name !== 'ResourceAlreadyExistsException') throw err;
      if (this.o.tags && Object.keys(this.o.tags).length > 0) {
        const described = await this.client.send(
          new DescribeLogGroupsCommand({ logGroupNamePrefix: logGroupName }),
        );
        const arn = described.logGroups?.find((g) => g.logGroupName === logGroupName)?.arn;
        if (arn) {
          await this.client
            .send(
              new TagResourceCommand({ resourceArn: arn.replace(/:\*$/, ''), tags: this.o.tags }),
            )
            .catch((e: Error) =>
              this.o.logger.warn({ err: e.message }, 'could not tag the log group'),
            );
        }
      }
    }
    await this.client.send(
      new PutRetentionPolicyCommand({ logGroupName, retentionInDays: this.o.retentionDays }),
    );
    try {
      await this.client.send(new CreateLogStreamCommand({ logGroupName, logStreamName }));
    } catch (err) {
      if ((err as Error).name !== 'ResourceAlreadyExistsException') throw err;
    }
    this.ready = true;
  }

  private async run(): Promise<void> {
    const spool = this.spool!;
    let attempt = 0;
    while (!this.stopping || (this.draining && spool.stats.depth > 0)) {
      if (spool.stats.depth === 0) {
        if (this.stopping) break;
        await this.sleep(60_000);
        continue;
      }
      // Linger briefly after new records so one flush's records share a batch.
      const lingerLeft = this.lastAppendMs + (this.o.lingerMs ?? 1_000) - this.now();
      if (
        !this.stopping &&
        spool.stats.depth < MAX_BATCH_EVENTS &&
        attempt === 0 &&
        lingerLeft > 0
      ) {
        await this.sleep(lingerLeft);
      }
      try {
        if (!this.ready) await this.ensureResources();
        await this.sendOne(spool);
        attempt = 0;
        this.fatal = undefined;
        this.stats.lastError = undefined;
      } catch (err) {
        const outcome = classify(err);
        this.stats.failedRequests++;
        this.stats.lastError = outcome.reason;
        if (outcome.kind === 'missing') {
          this.ready = false;
          this.stats.recreated++;
          this.o.logger.warn(
            { reason: outcome.reason },
            'log group or stream missing: recreating it',
          );
          continue;
        }
        attempt++;
        this.stats.retries++;
        if (outcome.kind === 'fatal') {
          this.fatal = outcome.reason;
          this.ready = false;
          this.o.logger.error(
            { reason: outcome.reason, spooled: spool.stats.depth },
            'CloudWatch Logs refused the request; records stay in the spool (check credentials and IAM permissions)',
          );
          if (this.stopping) break;
          await this.sleep(
            Math.min(this.o.fatalRetryMs ?? 60_000, 1_000 * 2 ** Math.min(attempt, 6)),
          );
        } else {
          const wait = backoffMs(attempt, this.o.random);
          this.o.logger.warn(
            { reason: outcome.reason, attempt, retryInMs: wait },
            'PutLogEvents failed; retrying',
          );
          if (this.stopping && this.now() > this.drainDeadline) break;
          await this.sleep(wait);
        }
      }
      if (this.stopping && this.now() > this.drainDeadline) break;
    }
  }

  private draining = false;
  private lastAppendMs = 0;
  private drainDeadline = 0;

  private async sendOne(spool: Spool): Promise<void> {
    const records = spool.read(spool.acked, MAX_BATCH_EVENTS);
    const plan = planBatch(records, { nowMs: this.now(), retentionDays: this.o.retentionDays });
    this.stats.droppedTooOld += plan.dropped.tooOld;
    this.stats.droppedTooNew += plan.dropped.tooNew;
    this.stats.truncated += plan.dropped.truncated;
    if (plan.dropped.tooOld + plan.dropped.tooNew > 0) {
      const [from, to] = timeRange(records.map((r) => ({ timestamp: r.timestampMs })));
      this.o.onLoss?.(
        'Rejected',
        plan.dropped.tooOld + plan.dropped.tooNew,
        from,
        to,
        'outside the time window CloudWatch accepts',
      );
      this.o.logger.warn(
        { tooOld: plan.dropped.tooOld, tooNew: plan.dropped.tooNew },
        'records outside the window CloudWatch accepts (14 days / retention back, 2 h ahead) dropped',
      );
    }
    if (plan.batch.length === 0) {
      spool.ack(plan.lastId);
      return;
    }
    const started = this.now();
    this.stats.requests++;
    const res = await this.queue.add(() =>
      this.client.send(
        new PutLogEventsCommand({
          logGroupName: this.o.logGroupName,
          logStreamName: this.o.logStreamName,
          // PlannedEvent carries an id too; the SDK serialises only timestamp and message.
          logEvents: plan.batch,
        }),
      ),
    );
    this.stats.lastPutLatencyMs = this.now() - started;
    this.o.observePutLatency?.(this.stats.lastPutLatencyMs / 1000);
    const rejected = res?.rejectedLogEventsInfo;
    if (rejected) {
      // Rejected events are never resent: count them by reason and log.
      const n = plan.batch.length;
      const tooOld =
        rejected.tooOldLogEventEndIndex !== undefined ? rejected.tooOldLogEventEndIndex : 0;
      const tooNew =
        rejected.tooNewLogEventStartIndex !== undefined ? n - rejected.tooNewLogEventStartIndex : 0;
      const expired =
        rejected.expiredLogEventEndIndex !== undefined ? rejected.expiredLogEventEndIndex : 0;
      this.stats.rejectedTooOld += tooOld;
      this.stats.rejectedTooNew += tooNew;
      this.stats.rejectedExpired += expired;
      const [from, to] = timeRange(plan.batch);
      this.o.onLoss?.(
        'Rejected',
        Math.min(n, tooOld + tooNew + expired),
        from,
        to,
        'rejected by CloudWatch (rejectedLogEventsInfo)',
      );
      this.o.logger.warn(
        { tooOld, tooNew, expired },
        'CloudWatch rejected some events of a batch (not resent)',
      );
    }
    this.stats.recordsSent += plan.batch.length;
    this.stats.bytesSent += plan.bytes;
    spool.ack(plan.lastId);
  }

  async close(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.draining = true;
    this.drainDeadline = this.now() + (this.o.drainTimeoutMs ?? 5_000);
    this.wake?.();
    await this.pump;
    if (this.spool && this.spool.stats.depth > 0) {
      this.o.logger.warn(
        { records: this.spool.stats.depth },
        'records left in the spool; they are sent after the restart',
      );
    }
    this.spool?.close();
    this.client.destroy();
  }

  health(): SinkHealth {
    if (this.fatal) return { healthy: false, reason: `CloudWatch Logs: ${this.fatal}` };
    return { healthy: true };
  }
}

export type { CloudWatchLogsSink };

export function createCloudWatchLogsSink(options: CloudWatchLogsSinkOptions): CloudWatchLogsSink {
  return new CloudWatchLogsSink(options);
}
