/**
 * What a failed CloudWatch call means — classification only; when to retry
 * is the sender's business (capped exponential backoff with full jitter).
 */
export type Outcome =
  | { kind: 'retryable'; reason: string }
  | { kind: 'missing'; reason: string }
  | { kind: 'fatal'; reason: string };

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
  const reason = `${name}${status ? ` (HTTP ${status})` : ''}: ${e.message ?? String(err)}`;
  if (name === 'ResourceNotFoundException') return { kind: 'missing', reason };
  if (RETRYABLE_NAMES.has(name) || e.$retryable) return { kind: 'retryable', reason };
  if (e.code && NETWORK_CODES.has(e.code)) return { kind: 'retryable', reason };
  if (/socket hang up|ECONNRESET|ECONNREFUSED|timed? ?out|EPIPE/i.test(e.message ?? ''))
    return { kind: 'retryable', reason };
  if (status !== undefined && (status >= 500 || status === 429))
    return { kind: 'retryable', reason };
  if (status === undefined && !name.endsWith('Exception')) return { kind: 'retryable', reason };
  return { kind: 'fatal', reason };
}

/** Full-jitter exponential backoff: random in [0, min(cap, base·2^attempt)]. */
export function backoffMs(
  attempt: number,
  random: () => number = Math.random,
  baseMs = 200,
  capMs = 30_000,
): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 20));
  return Math.floor(random() * ceiling);
}
