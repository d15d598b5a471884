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
import { exponentialMs } from '../../util/backoff.js';
import type { Logger } from '../../util/log.js';
import { Spool, SpoolWriteError } from '../spool/spool.js';
import type { EncodedRecord, Sink, SinkHealth } from '../types.js';
import { MAX_BATCH_EVENTS, planBatch } from './batcher.js';
import { backoffMs, classify, isAccessDenied, SetupRequiredError } from './retry.js';

/**
 * Actions the agent calls at start when it may, but does not need: the log
 * group, its retention and its tags belong to setup (`flowtrail setup`, the
 * CloudFormation template, deploy/aws/iam-setup-policy.json). The run-time
 * policy (deploy/aws/iam-policy.json) does not grant them; denied, they are
 * skipped with one warning.
 */
export const SETUP_TIME_ACTIONS = [
  'logs:CreateLogGroup',
  'logs:PutRetentionPolicy',
  'logs:TagResource',
  'logs:DescribeLogGroups',
] as const;

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

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
   * Records lost for good: dropped by a full spool or not written to it
   * (SpoolFull), lost to damaged spool bytes (SpoolCorrupt), or rejected by
   * (or outside the window of) CloudWatch; with their time range in ms.
   */
  onLoss?: (
    kind: 'SpoolFull' | 'SpoolCorrupt' | 'Rejected',
    count: number,
    fromMs: number,
    toMs: number,
    detail: string,
  ) => void;
}

export function timeRange(events: readonly { timestamp?: number | undefined }[]): [number, number] {
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
  /** Flushes whose records could not be spooled, and their records (counted as SpoolFull). */
  spoolWriteFailures: number;
  recordsNotSpooled: number;
}

/** What the sink reports about delivery, spool included: the agent's self-metrics read this. */
export interface DeliveryStats {
  recordsSent: number;
  bytesSent: number;
  requests: number;
  failedRequests: number;
  /** Events CloudWatch rejected in rejectedLogEventsInfo. */
  rejected: number;
  /** Events dropped before sending (outside the accepted time window). */
  dropped: number;
  spoolDepth: number;
  spoolBytes: number;
  /** Records the spool dropped (full) or lost (damaged bytes). */
  spoolDropped: number;
  lastPutLatencySeconds: number;
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
    spoolWriteFailures: 0,
    recordsNotSpooled: 0,
  };
  readonly client: CloudWatchLogsClient;
  spool: Spool | undefined;
  private readonly queue = new PQueue({ concurrency: 1 });
  private ready = false;
  private fatal: string | undefined;
  /** Set while the last append to the spool failed (why, for /readyz). */
  private spoolFailure: string | undefined;
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
      onCorrupt: (count, fromMs, toMs) =>
        this.o.onLoss?.(
          'SpoolCorrupt',
          count,
          fromMs,
          toMs,
          'damaged spool segment bytes (window: between the intact records around them)',
        ),
    });
    if (this.spool.stats.depth > 0) {
      this.o.logger.info(
        { records: this.spool.stats.depth },
        'replaying spooled records from before the restart',
      );
    }
    this.pump = this.run();
  }

  /**
   * Spools the records (fsynced). If the spool cannot take them (ENOSPC, a
   * read-only remount, EIO), they are counted as lost (SpoolFull, with their
   * time range), the sink reports unready with the reason until an append
   * succeeds again, and the call rejects, so the agent does not save
   * baselines past records that were never spooled.
   */
  async write(lines: readonly EncodedRecord[]): Promise<void> {
    if (!this.spool) throw new Error('cloudwatch sink not started');
    if (lines.length === 0) return;
    try {
      this.spool.append(lines);
    } catch (err) {
      if (!(err instanceof SpoolWriteError)) throw err;
      this.stats.spoolWriteFailures++;
      this.stats.recordsNotSpooled += lines.length;
      const [from, to] = timeRange(lines.map((l) => ({ timestamp: l.timestampMs })));
      this.spoolFailure = `cannot write to the spool (${err.errno}); ${this.stats.recordsNotSpooled} records lost so far (SpoolFull)`;
      this.o.logger.error(
        { errno: err.errno, records: lines.length, dir: this.o.spoolDir, setting: 'spool.dir' },
        'spool write failed: records lost (counted as SpoolFull); free space or fix spool.dir',
      );
      this.o.onLoss?.(
        'SpoolFull',
        lines.length,
        from,
        to,
        `spool write failed (${err.errno}): records not spooled`,
      );
      throw err;
    }
    if (this.spoolFailure) {
      this.o.logger.info({ dir: this.o.spoolDir }, 'spool writable again');
      this.spoolFailure = undefined;
    }
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

  /**
   * Creates the group and stream (already-exists is success), sets retention
   * and tags. Group, retention and tags are setup-time (SETUP_TIME_ACTIONS):
   * when the role may not do them, they are skipped with one warning; only a
   * group that is missing and may not be created stops delivery.
   */
  private async ensureResources(): Promise<void> {
    const { logGroupName, logStreamName } = this.o;
    const denied: string[] = [];
    const setupTime = async (action: string, call: () => Promise<unknown>): Promise<boolean> => {
      try {
        await call();
        return true;
      } catch (err) {
        if (!isAccessDenied(err)) throw err;
        denied.push(action);
        this.o.logger.debug({ action, reason: classify(err).reason }, 'setup-time action denied');
        return false;
      }
    };
    let exists = false;
    await setupTime('logs:CreateLogGroup', async () => {
      try {
        await this.client.send(
          new CreateLogGroupCommand({
            logGroupName,
            ...(this.o.tags ? { tags: this.o.tags } : {}),
          }),
        );
        this.o.logger.info({ logGroupName }, 'log group created');
      } catch (err) {
        if ((err as Error).name !== 'ResourceAlreadyExistsException') throw err;
        exists = true;
      }
    });
    if (exists && this.o.tags && Object.keys(this.o.tags).length > 0) {
      const tags = this.o.tags;
      await setupTime('logs:DescribeLogGroups', async () => {
        const described = await this.client.send(
          new DescribeLogGroupsCommand({ logGroupNamePrefix: logGroupName }),
        );
        const arn = described.logGroups?.find((g) => g.logGroupName === logGroupName)?.arn;
        if (arn) {
          await setupTime('logs:TagResource', () =>
            this.client.send(
              new TagResourceCommand({ resourceArn: arn.replace(/:\*$/, ''), tags }),
            ),
          ).catch((e: Error) =>
            this.o.logger.warn({ err: e.message }, 'could not tag the log group'),
          );
        }
      });
    }
    await setupTime('logs:PutRetentionPolicy', () =>
      this.client.send(
        new PutRetentionPolicyCommand({ logGroupName, retentionInDays: this.o.retentionDays }),
      ),
    );
    try {
      await this.client.send(new CreateLogStreamCommand({ logGroupName, logStreamName }));
    } catch (err) {
      const name = (err as Error).name;
      if (name === 'ResourceNotFoundException' && denied.includes('logs:CreateLogGroup')) {
        throw new SetupRequiredError(
          `log group ${logGroupName} does not exist and this role may not create it: run flowtrail setup or deploy deploy/aws/cloudformation.yaml`,
          { logGroupName },
        );
      }
      if (name !== 'ResourceAlreadyExistsException') throw err;
    }
    if (denied.length > 0 && !this.warnedSetupTime) {
      this.warnedSetupTime = true;
      this.o.logger.warn(
        { denied, logGroupName },
        'setup-time actions not allowed to this role (as with deploy/aws/iam-policy.json); group, retention and tags are left to flowtrail setup or CloudFormation',
      );
    }
    this.ready = true;
  }

  private warnedSetupTime = false;

  private async run(): Promise<void> {
    const spool = this.spool!;
    let attempt = 0;
    while (!this.stopping || (this.draining && spool.stats.depth > 0)) {
      // Never a tight loop: whatever happens below, timers, signals and
      // HTTP probes get their turn between two rounds.
      await yieldToEventLoop();
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
          // Missing again right after recreating it: back off like any failure.
          if (attempt++ > 0) await this.sleep(backoffMs(attempt, this.o.random));
          continue;
        }
        attempt++;
        this.stats.retries++;
        if (outcome.kind === 'fatal') {
          // /readyz is unauthenticated: the error's name only; the message
          // (role ARN, account id) goes to the log below.
          this.fatal = outcome.code;
          this.ready = false;
          this.o.logger.error(
            { reason: outcome.reason, spooled: spool.stats.depth },
            'CloudWatch Logs refused the request; records stay in the spool (check credentials and IAM permissions: deploy/aws/iam-policy.json)',
          );
          if (this.stopping) break;
          await this.sleep(exponentialMs(attempt, 1_000, this.o.fatalRetryMs ?? 60_000, 6));
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
    if (records.length === 0) {
      // The spool keeps depth to what it can read; should that ever fail, wait, never spin.
      throw new Error(`spool depth ${spool.stats.depth} but no readable record`);
    }
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

  /** Delivery and spool counters in one reading. */
  readStats(): DeliveryStats {
    const st = this.stats;
    const spool = this.spool?.stats;
    return {
      recordsSent: st.recordsSent,
      bytesSent: st.bytesSent,
      requests: st.requests,
      failedRequests: st.failedRequests,
      rejected: st.rejectedTooOld + st.rejectedTooNew + st.rejectedExpired,
      dropped: st.droppedTooOld + st.droppedTooNew,
      spoolDepth: spool?.depth ?? 0,
      spoolBytes: spool?.bytes ?? 0,
      spoolDropped: (spool?.droppedFull ?? 0) + (spool?.droppedCorrupt ?? 0),
      lastPutLatencySeconds: (st.lastPutLatencyMs ?? 0) / 1000,
    };
  }

  health(): SinkHealth {
    if (this.spoolFailure) return { healthy: false, reason: this.spoolFailure };
    if (this.fatal)
      return {
        healthy: false,
        reason: `CloudWatch Logs: ${this.fatal} (details in the agent log)`,
      };
    return { healthy: true };
  }
}

export type { CloudWatchLogsSink };

export function createCloudWatchLogsSink(options: CloudWatchLogsSinkOptions): CloudWatchLogsSink {
  return new CloudWatchLogsSink(options);
}
