/**
 * A local node:http server speaking the Elasticsearch/OpenSearch `_bulk`
 * protocol (ndjson in; `{took, errors, items: [{index: {_index, _id,
 * status, error?}}]}` out), storing documents by index and id. No
 * Elasticsearch is available on this machine; this stands in for it, with
 * per-item errors injected by a callback.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';

export interface FakeEs {
  readonly endpoint: string;
  /** index → id → document */
  readonly indices: Map<string, Map<string, unknown>>;
  /** Every `_bulk` request: the ids it carried and its headers. */
  readonly requests: { ids: string[]; headers: IncomingMessage['headers'] }[];
  /** Per item: undefined/200 to accept, or an error status (e.g. 429, 503, 400). */
  failWith: (id: string, attempt: number) => number | undefined;
  /** Answer the whole request with this HTTP status instead (once per value set). */
  failRequest: number | undefined;
  count(): number;
  /** Forget documents, requests, attempt counts and injected errors. */
  reset(): void;
  stop(): Promise<void>;
}

const ERROR_TYPES: Record<number, string> = {
  429: 'es_rejected_execution_exception',
  503: 'unavailable_shards_exception',
  400: 'mapper_parsing_exception',
};

export async function startFakeEs(): Promise<FakeEs> {
  const attempts = new Map<string, number>();
  const state: Omit<FakeEs, 'endpoint' | 'stop'> = {
    indices: new Map(),
    requests: [],
    failWith: () => undefined,
    failRequest: undefined,
    reset() {
      this.indices.clear();
      this.requests.length = 0;
      this.failWith = () => undefined;
      this.failRequest = undefined;
      attempts.clear();
    },
    count() {
      let n = 0;
      for (const m of this.indices.values()) n += m.size;
      return n;
    },
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || !req.url?.endsWith('/_bulk')) {
        res.writeHead(404).end();
        return;
      }
      if (state.failRequest !== undefined) {
        const status = state.failRequest;
        state.failRequest = undefined;
        res.writeHead(status, { 'content-type': 'application/json' }).end('{"error":"injected"}');
        return;
      }
      const lines = Buffer.concat(chunks)
        .toString('utf8')
        .split('\n')
        .filter((l) => l !== '');
      const items: unknown[] = [];
      const ids: string[] = [];
      let errors = false;
      for (let i = 0; i < lines.length; i += 2) {
        const action = JSON.parse(lines[i]!) as { index: { _index: string; _id: string } };
        const doc = JSON.parse(lines[i + 1]!) as unknown;
        const { _index, _id } = action.index;
        ids.push(_id);
        const attempt = (attempts.get(_id) ?? 0) + 1;
        attempts.set(_id, attempt);
        const status = state.failWith(_id, attempt) ?? 200;
        if (status >= 200 && status < 300) {
          let index = state.indices.get(_index);
          if (!index) {
            index = new Map();
            state.indices.set(_index, index);
          }
          const created = !index.has(_id);
          index.set(_id, doc);
          items.push({
            index: {
              _index,
              _id,
              status: created ? 201 : 200,
              result: created ? 'created' : 'updated',
            },
          });
        } else {
          errors = true;
          items.push({
            index: {
              _index,
              _id,
              status,
              error: {
                type: ERROR_TYPES[status] ?? 'injected_exception',
                reason: `injected ${status}`,
              },
            },
          });
        }
      }
      state.requests.push({ ids, headers: req.headers });
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ took: 1, errors, items }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return Object.assign(state, {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }) as FakeEs;
}
