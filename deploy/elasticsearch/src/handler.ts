/**
 * The function a CloudWatch Logs subscription filter invokes: decodes the
 * payload, parses each log event as a flow record, and indexes one document
 * per record into `flowtrail-YYYY.MM.DD` (by the record's endTime) with the
 * CloudWatch event id as document id, so a redelivered batch does not
 * duplicate. Records that do not parse are counted and logged (dead letter),
 * not indexed. If some documents cannot be indexed after retries, the
 * invocation fails (CloudWatch Logs then retries the whole batch; ids make
 * that safe).
 *
 * Environment: ES_ENDPOINT (required), ES_INDEX_PREFIX (default
 * "flowtrail-"), ES_USERNAME/ES_PASSWORD (basic auth, optional), ES_SIGV4
 * ("true"/"false"; default true for *.es.amazonaws.com and
 * *.aoss.amazonaws.com), AWS_REGION, ES_MAX_ATTEMPTS (default 5).
 */
import type { CloudWatchLogsEvent } from 'aws-lambda';
import { decodeRecord } from '../../../src/format/codec.js';
import {
  type BulkItem,
  type FailedItem,
  fetchTransport,
  indexAll,
  type RetryOptions,
} from './bulk.js';
import { indexName, toDocument } from './document.js';
import { decodePayload } from './payload.js';
import { credentialsFromEnv, signRequest } from './sign.js';

export interface HandlerOptions {
  readonly endpoint: string;
  readonly indexPrefix?: string;
  readonly basicAuth?: { username: string; password: string };
  readonly sigv4?: { region: string; service?: string };
  readonly env?: NodeJS.ProcessEnv;
  readonly fetch?: typeof fetch;
  readonly retry?: RetryOptions;
  /** One JSON object per call; console.log in Lambda. */
  readonly log?: (entry: Record<string, unknown>) => void;
}

export interface HandlerResult {
  readonly received: number;
  readonly indexed: number;
  readonly deadLetter: number;
  readonly retries: number;
  /** Loss events from a node's `<node>_Events` stream: logged, not indexed as flows. */
  readonly lossEvents?: number;
  readonly control?: true;
}

/** A `<node>_Events` line (a loss, src/loss/ledger.ts, or a doctor write test), or undefined. */
function lossEvent(message: string): Record<string, unknown> | undefined {
  if (!message.startsWith('{"event":')) return undefined;
  try {
    return JSON.parse(message) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

export class IndexingError extends Error {
  readonly code = 'ERR_ES_INDEXING';
  constructor(
    readonly counts: { received: number; indexed: number; failed: number; deadLetter: number },
    readonly failures: readonly FailedItem[],
  ) {
    super(
      `${counts.failed} of ${counts.received} flow records could not be indexed ` +
        `(${counts.indexed} indexed, ${counts.deadLetter} unparsable); first: ` +
        failures
          .slice(0, 3)
          .map((f) => `${f.id} → ${f.status} ${f.error}`)
          .join('; '),
    );
  }
}

/** How many unparsable records are logged one by one per invocation. */
const DEAD_LETTER_LOG_LIMIT = 20;

export function createHandler(o: HandlerOptions) {
  const log = o.log ?? ((e: Record<string, unknown>) => console.log(JSON.stringify(e)));
  const env = o.env ?? process.env;
  const sigv4 = o.sigv4;
  const transport = fetchTransport({
    endpoint: o.endpoint,
    ...(o.basicAuth ? { basicAuth: o.basicAuth } : {}),
    ...(o.fetch ? { fetch: o.fetch } : {}),
    ...(sigv4
      ? {
          sign: (req) =>
            signRequest({
              ...req,
              region: sigv4.region,
              service: sigv4.service ?? 'es',
              credentials: credentialsFromEnv(env),
            }),
        }
      : {}),
  });
  return async (event: CloudWatchLogsEvent): Promise<HandlerResult> => {
    const data = decodePayload(event);
    if (!data) {
      log({ level: 'info', msg: 'control message ignored' });
      return { received: 0, indexed: 0, deadLetter: 0, retries: 0, control: true };
    }
    const items: BulkItem[] = [];
    let deadLetter = 0;
    let lossEvents = 0;
    for (const e of data.logEvents) {
      const loss = lossEvent(e.message);
      if (loss) {
        // Not a flow: say it loudly where operators look (the function's logs).
        if (loss.event === 'loss') {
          lossEvents++;
          log({
            level: 'warn',
            msg: 'node reported data loss',
            ...loss,
            logStream: data.logStream,
          });
        }
        continue;
      }
      try {
        const record = decodeRecord(e.message);
        items.push({
          index: indexName(record, o.indexPrefix),
          // A string in CloudWatch's payloads; moto sends a number. Either way the id is its text.
          id: String(e.id),
          doc: toDocument(record, { logGroup: data.logGroup, logStream: data.logStream }),
        });
      } catch (err) {
        deadLetter++;
        if (deadLetter <= DEAD_LETTER_LOG_LIMIT) {
          log({
            level: 'warn',
            msg: 'dead letter: log event is not a flow record',
            code: (err as { code?: string }).code ?? 'ERR_RECORD_FORMAT',
            error: (err as Error).message,
            id: String(e.id),
            logGroup: data.logGroup,
            logStream: data.logStream,
            timestamp: e.timestamp,
            message: e.message.slice(0, 500),
          });
        }
      }
    }
    const outcome = await indexAll(items, transport, o.retry);
    const summary = {
      received: data.logEvents.length,
      indexed: outcome.indexed,
      deadLetter,
      retries: outcome.retries,
      ...(lossEvents > 0 ? { lossEvents } : {}),
    };
    log({
      level: outcome.failed.length > 0 || deadLetter > 0 ? 'warn' : 'info',
      msg: 'batch done',
      ...summary,
      failed: outcome.failed.length,
      requests: outcome.requests,
      logGroup: data.logGroup,
      logStream: data.logStream,
    });
    if (outcome.failed.length > 0) {
      throw new IndexingError({ ...summary, failed: outcome.failed.length }, outcome.failed);
    }
    return summary;
  };
}

/** Options from the Lambda environment. */
export function optionsFromEnv(env: NodeJS.ProcessEnv): HandlerOptions {
  const endpoint = env.ES_ENDPOINT;
  if (!endpoint)
    throw new Error('ES_ENDPOINT is not set (e.g. https://search-x.eu-west-1.es.amazonaws.com)');
  const host = new URL(endpoint).hostname;
  const awsHost = host.endsWith('.es.amazonaws.com') || host.endsWith('.aoss.amazonaws.com');
  const sign = env.ES_SIGV4 === undefined ? awsHost : env.ES_SIGV4 === 'true';
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (sign && !region) throw new Error('ES_SIGV4 needs AWS_REGION');
  const maxAttempts = env.ES_MAX_ATTEMPTS ? Number(env.ES_MAX_ATTEMPTS) : undefined;
  return {
    endpoint,
    env,
    ...(env.ES_INDEX_PREFIX ? { indexPrefix: env.ES_INDEX_PREFIX } : {}),
    ...(env.ES_USERNAME && env.ES_PASSWORD
      ? { basicAuth: { username: env.ES_USERNAME, password: env.ES_PASSWORD } }
      : {}),
    ...(sign && region
      ? { sigv4: { region, service: host.endsWith('.aoss.amazonaws.com') ? 'aoss' : 'es' } }
      : {}),
    ...(maxAttempts && Number.isInteger(maxAttempts) && maxAttempts > 0
      ? { retry: { maxAttempts } }
      : {}),
  };
}

let cached: ((event: CloudWatchLogsEvent) => Promise<HandlerResult>) | undefined;

/** The Lambda entry point (index.handler in the bundle). */
export async function handler(event: CloudWatchLogsEvent): Promise<HandlerResult> {
  cached ??= createHandler(optionsFromEnv(process.env));
  return cached(event);
}
