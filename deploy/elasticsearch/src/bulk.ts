/**
 * Indexing through the `_bulk` API: ndjson `index` actions with explicit ids
 * (so a redelivered batch overwrites, never duplicates), items the response
 * marks 429 or 5xx retried with full-jitter backoff, other item errors
 * final. What still failed at the end is returned, never dropped silently.
 */

export interface BulkItem {
  readonly index: string;
  readonly id: string;
  readonly doc: unknown;
}

export interface BulkResponseItem {
  _index?: string;
  _id?: string;
  status: number;
  error?: { type?: string; reason?: string } | string;
}

export interface BulkResponse {
  took?: number;
  errors: boolean;
  items: Record<string, BulkResponseItem>[];
}

/** Sends one ndjson body to `_bulk`; the HTTP status and parsed body come back. */
export type BulkTransport = (body: string) => Promise<{ status: number; body: string }>;

export interface FailedItem {
  readonly index: string;
  readonly id: string;
  readonly status: number;
  readonly error: string;
}

export interface IndexOutcome {
  readonly indexed: number;
  /** Item sends beyond the first (per item). */
  readonly retries: number;
  readonly requests: number;
  readonly failed: readonly FailedItem[];
}

export interface RetryOptions {
  readonly maxAttempts?: number;
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  /** Bytes per `_bulk` request before splitting (default 5 MiB). */
  readonly maxRequestBytes?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
}

export class BulkRequestError extends Error {
  readonly code = 'ERR_ES_BULK_REQUEST';
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** 429 and 5xx may succeed later; every other error will not. */
export function retryable(status: number): boolean {
  return status === 429 || status >= 500;
}

function ndjson(items: readonly BulkItem[]): string {
  let out = '';
  for (const it of items) {
    out += `${JSON.stringify({ index: { _index: it.index, _id: it.id } })}\n${JSON.stringify(it.doc)}\n`;
  }
  return out;
}

function chunks(items: readonly BulkItem[], maxBytes: number): BulkItem[][] {
  const out: BulkItem[][] = [];
  let cur: BulkItem[] = [];
  let bytes = 0;
  for (const it of items) {
    const size = Buffer.byteLength(JSON.stringify(it.doc)) + it.id.length + it.index.length + 40;
    if (cur.length > 0 && bytes + size > maxBytes) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(it);
    bytes += size;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

function errorText(e: BulkResponseItem['error']): string {
  if (e === undefined) return '';
  if (typeof e === 'string') return e;
  return [e.type, e.reason].filter(Boolean).join(': ');
}

export async function indexAll(
  items: readonly BulkItem[],
  send: BulkTransport,
  options: RetryOptions = {},
): Promise<IndexOutcome> {
  const maxAttempts = options.maxAttempts ?? 5;
  const base = options.baseDelayMs ?? 200;
  const cap = options.maxDelayMs ?? 5_000;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const random = options.random ?? Math.random;
  let indexed = 0;
  let retries = 0;
  let requests = 0;
  const failed: FailedItem[] = [];
  for (const chunk of chunks(items, options.maxRequestBytes ?? 5 * 1024 * 1024)) {
    let pending = chunk;
    let last = new Map<string, { status: number; error: string }>();
    for (let attempt = 1; pending.length > 0 && attempt <= maxAttempts; attempt++) {
      if (attempt > 1) {
        retries += pending.length;
        await sleep(Math.floor(random() * Math.min(cap, base * 2 ** (attempt - 2))));
      }
      requests++;
      let res: { status: number; body: string };
      try {
        res = await send(ndjson(pending));
      } catch (err) {
        last = new Map(pending.map((p) => [p.id, { status: 0, error: (err as Error).message }]));
        continue;
      }
      if (res.status < 200 || res.status >= 300) {
        if (!retryable(res.status)) {
          throw new BulkRequestError(
            `_bulk answered HTTP ${res.status}: ${res.body.slice(0, 300)}`,
            res.status,
          );
        }
        last = new Map(
          pending.map((p) => [p.id, { status: res.status, error: res.body.slice(0, 200) }]),
        );
        continue;
      }
      const parsed = JSON.parse(res.body) as BulkResponse;
      if (!Array.isArray(parsed.items) || parsed.items.length !== pending.length) {
        throw new BulkRequestError(
          `_bulk answered ${parsed.items?.length ?? 'no'} items for ${pending.length} actions`,
          res.status,
        );
      }
      const next: BulkItem[] = [];
      last = new Map();
      parsed.items.forEach((entry, i) => {
        const item = pending[i]!;
        const r = entry.index ?? Object.values(entry)[0];
        const status = r?.status ?? 0;
        if (status >= 200 && status < 300) {
          indexed++;
        } else if (retryable(status)) {
          next.push(item);
          last.set(item.id, { status, error: errorText(r?.error) });
        } else {
          failed.push({ index: item.index, id: item.id, status, error: errorText(r?.error) });
        }
      });
      pending = next;
    }
    for (const p of pending) {
      const l = last.get(p.id) ?? { status: 0, error: 'not attempted' };
      failed.push({ index: p.index, id: p.id, ...l });
    }
  }
  return { indexed, retries, requests, failed };
}

export interface FetchTransportOptions {
  /** https://search-domain.region.es.amazonaws.com or http://127.0.0.1:9200 */
  readonly endpoint: string;
  readonly basicAuth?: { username: string; password: string };
  /** Signs each request (SigV4 for Amazon OpenSearch Service). */
  readonly sign?: (req: {
    url: URL;
    method: string;
    headers: Record<string, string>;
    body: string;
  }) => Promise<Record<string, string>>;
  readonly fetch?: typeof fetch;
  readonly timeoutMs?: number;
}

/** A BulkTransport over plain fetch. */
export function fetchTransport(o: FetchTransportOptions): BulkTransport {
  const url = new URL('_bulk', o.endpoint.endsWith('/') ? o.endpoint : `${o.endpoint}/`);
  const doFetch = o.fetch ?? fetch;
  return async (body) => {
    let headers: Record<string, string> = { 'content-type': 'application/x-ndjson' };
    if (o.basicAuth) {
      const token = Buffer.from(`${o.basicAuth.username}:${o.basicAuth.password}`).toString(
        'base64',
      );
      headers.authorization = `Basic ${token}`;
    }
    if (o.sign) headers = await o.sign({ url, method: 'POST', headers, body });
    const res = await doFetch(url, {
      method: 'POST',
      headers,
      body,
      signal: AbortSignal.timeout(o.timeoutMs ?? 30_000),
    });
    return { status: res.status, body: await res.text() };
  };
}
