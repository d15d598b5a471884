/**
 * What a failed CloudWatch call means — classification only; when to retry
 * is the sender's business (capped exponential backoff with full jitter).
 */

import { exponentialMs } from '../../util/backoff.js';
import { FlowtrailError } from '../../util/errors.js';

/**
 * `reason` is the whole story (error name, HTTP status and the service's
 * message, which can name the role ARN and account): for the log. `code` is
 * the error name and status only: safe for unauthenticated endpoints (/readyz).
 */
export type Outcome =
  | { kind: 'retryable'; reason: string; code: string }
  | { kind: 'missing'; reason: string; code: string }
  | { kind: 'fatal'; reason: string; code: string };

/** Something only setup (flowtrail setup, CloudFormation) can fix, e.g. a log group this role may not create. */
export class SetupRequiredError extends FlowtrailError {
  constructor(message: string, context: Record<string, unknown>) {
    super('ERR_SETUP_REQUIRED', message, context);
  }
}

const DENIED_NAMES = new Set(['AccessDeniedException', 'AccessDenied', 'UnauthorizedOperation']);

/** The role may not call this action (IAM), as opposed to any other failure. */
export function isAccessDenied(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return DENIED_NAMES.has(e.name ?? '') || e.$metadata?.httpStatusCode === 403;
}

const RETRYABLE_NAMES = new Set([
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'ServiceUnavailableException',
  'ServiceUnavailable',
  'InternalFailure',
  'InternalServerError',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'OperationAbortedException',
  'DataAlreadyAcceptedException',
]);
const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

export function classify(err: unknown): Outcome {
  const e = err as {
    name?: string;
    code?: string;
    message?: string;
    $metadata?: { httpStatusCode?: number };
    $retryable?: unknown;
  };
  const name = e.name ?? 'Error';
  const status = e.$metadata?.httpStatusCode;
  const code = `${name}${status ? ` (HTTP ${status})` : ''}${e.code && name !== e.code ? ` ${e.code}` : ''}`;
  const reason = `${name}${status ? ` (HTTP ${status})` : ''}: ${e.message ?? String(err)}`;
  const out = (kind: Outcome['kind']): Outcome => ({ kind, reason, code });
  // Our own words, naming no account: shown as they are.
  if (err instanceof SetupRequiredError) return { kind: 'fatal', reason, code: err.message };
  if (name === 'ResourceNotFoundException') return out('missing');
  if (RETRYABLE_NAMES.has(name) || e.$retryable) return out('retryable');
  if (e.code && NETWORK_CODES.has(e.code)) return out('retryable');
  if (/socket hang up|ECONNRESET|ECONNREFUSED|timed? ?out|EPIPE/i.test(e.message ?? ''))
    return out('retryable');
  if (status !== undefined && (status >= 500 || status === 429)) return out('retryable');
  if (status === undefined && !name.endsWith('Exception')) return out('retryable');
  return out('fatal');
}

/** Full-jitter exponential backoff: random in [0, min(cap, base·2^attempt)]. */
export function backoffMs(
  attempt: number,
  random: () => number = Math.random,
  baseMs = 200,
  capMs = 30_000,
): number {
  return Math.floor(random() * exponentialMs(attempt, baseMs, capMs));
}
