/**
 * Runs one Logs Insights query: StartQuery, then GetQueryResults until the
 * query is Complete (or Failed/Cancelled/Timeout), within a deadline. The
 * clock and the sleep are passed in so the polling loop can be tested
 * without waiting.
 */
import {
  type CloudWatchLogsClient,
  GetQueryResultsCommand,
  type QueryStatus,
  StartQueryCommand,
  StopQueryCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import { FlowtrailError } from '../util/errors.js';

export interface InsightsRequest {
  readonly logGroupName: string;
  /** Seconds since the epoch, inclusive. */
  readonly startTime: number;
  /** Seconds since the epoch, inclusive. */
  readonly endTime: number;
  readonly queryString: string;
  readonly limit?: number;
}

export interface InsightsOptions {
  /** Give up (and StopQuery) after this many ms. Default 120 s. */
  readonly deadlineMs?: number;
  /** Wait between polls. Default 1 s. */
  readonly pollMs?: number;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  /** Called after each poll (progress). */
  readonly onPoll?: (status: string, polls: number) => void;
}

export interface InsightsResult {
  readonly queryId: string;
  readonly status: 'Complete';
  /** Field names in first-seen order, `@ptr` left out. */
  readonly fields: readonly string[];
  readonly rows: readonly Record<string, string>[];
  readonly statistics?: { recordsMatched?: number; recordsScanned?: number; bytesScanned?: number };
}

const DONE_BAD: ReadonlySet<string> = new Set(['Failed', 'Cancelled', 'Timeout']);

export async function runInsightsQuery(
  client: CloudWatchLogsClient,
  request: InsightsRequest,
  options: InsightsOptions = {},
): Promise<InsightsResult> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const deadline = now() + (options.deadlineMs ?? 120_000);
  const pollMs = options.pollMs ?? 1_000;
  const started = await client.send(
    new StartQueryCommand({
      logGroupName: request.logGroupName,
      startTime: request.startTime,
      endTime: request.endTime,
      queryString: request.queryString,
      ...(request.limit !== undefined ? { limit: request.limit } : {}),
    }),
  );
  const queryId = started.queryId;
  if (!queryId) {
    throw new FlowtrailError('ERR_QUERY_START', 'StartQuery returned no queryId', {
      logGroupName: request.logGroupName,
    });
  }
  let polls = 0;
  for (;;) {
    const r = await client.send(new GetQueryResultsCommand({ queryId }));
    polls++;
    const status: QueryStatus | string = r.status ?? 'Unknown';
    options.onPoll?.(status, polls);
    if (status === 'Complete') {
      const fields: string[] = [];
      const rows: Record<string, string>[] = [];
      for (const row of r.results ?? []) {
        const out: Record<string, string> = {};
        for (const cell of row) {
          if (!cell.field || cell.field === '@ptr') continue;
          if (!fields.includes(cell.field)) fields.push(cell.field);
          out[cell.field] = cell.value ?? '';
        }
        rows.push(out);
      }
      return {
        queryId,
        status: 'Complete',
        fields,
        rows,
        ...(r.statistics
          ? {
              statistics: {
                ...(r.statistics.recordsMatched !== undefined
                  ? { recordsMatched: r.statistics.recordsMatched }
                  : {}),
                ...(r.statistics.recordsScanned !== undefined
                  ? { recordsScanned: r.statistics.recordsScanned }
                  : {}),
                ...(r.statistics.bytesScanned !== undefined
                  ? { bytesScanned: r.statistics.bytesScanned }
                  : {}),
              },
            }
          : {}),
      };
    }
    if (DONE_BAD.has(status)) {
      throw new FlowtrailError('ERR_QUERY_FAILED', `query ${queryId} ended with status ${status}`, {
        queryId,
        status,
        logGroupName: request.logGroupName,
      });
    }
    if (now() + pollMs > deadline) {
      try {
        await client.send(new StopQueryCommand({ queryId }));
      } catch {
        // The query may have finished meanwhile; the deadline error is what matters.
      }
      throw new FlowtrailError(
        'ERR_QUERY_DEADLINE',
        `query ${queryId} still ${status} after ${options.deadlineMs ?? 120_000} ms; stopped it (raise --timeout)`,
        { queryId, status, polls },
      );
    }
    await sleep(pollMs);
  }
}
