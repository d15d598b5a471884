/**
 * A local HTTP server that speaks the Kubernetes API server's wire protocol
 * for pods, nodes, namespaces and networkpolicies (no API server is
 * available here): list responses with
 * metadata.resourceVersion, `?watch=true` chunked streams of JSON lines
 * (ADDED, MODIFIED, DELETED, BOOKMARK), a 410 Gone ERROR event, GET of one
 * node, and Status objects for errors.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export type Obj = Record<string, unknown>;

export type Kind = 'pods' | 'nodes' | 'namespaces' | 'networkpolicies';

const LIST: Record<Kind, { apiVersion: string; kind: string }> = {
  pods: { apiVersion: 'v1', kind: 'PodList' },
  nodes: { apiVersion: 'v1', kind: 'NodeList' },
  namespaces: { apiVersion: 'v1', kind: 'NamespaceList' },
  networkpolicies: { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicyList' },
};

/** Which collection a request path lists or watches. */
function kindOf(path: string): Kind | undefined {
  if (path === '/apis/networking.k8s.io/v1/networkpolicies') return 'networkpolicies';
  if (path === '/api/v1/namespaces') return 'namespaces';
  if (path.endsWith('/pods')) return 'pods';
  if (path.endsWith('/nodes')) return 'nodes';
  return undefined;
}

/** An error answer as the API server writes it: a v1 Status object. */
function status(res: ServerResponse, code: number, reason: string, message: string): void {
  res.writeHead(code, { 'content-type': 'application/json' }).end(
    JSON.stringify({
      kind: 'Status',
      apiVersion: 'v1',
      status: 'Failure',
      reason,
      message,
      code,
    }),
  );
}

/** A tiny API server: GET list / watch for pods and nodes, events pushed by the test. */
export class FakeApiServer {
  server: Server | undefined;
  rv = 100;
  pods = new Map<string, Obj>();
  nodes = new Map<string, Obj>([
    [
      'node-1',
      {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: 'node-1', resourceVersion: '1' },
        status: { addresses: [{ type: 'InternalIP', address: '10.0.0.1' }] },
      },
    ],
  ]);
  /** Keyed by name (namespaces) or namespace/name (networkpolicies). */
  namespaces = new Map<string, Obj>();
  networkpolicies = new Map<string, Obj>();
  watchers: { kind: Kind; res: ServerResponse }[] = [];
  /** When set, every request is answered with this HTTP status as a Status object (e.g. 403). */
  refuse: number | undefined;
  lists: Record<Kind, number> = { pods: 0, nodes: 0, namespaces: 0, networkpolicies: 0 };
  holdLists = false;

  async start(): Promise<string> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', () => r()));
    return `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    if (this.refuse !== undefined) {
      status(
        res,
        this.refuse,
        this.refuse === 403 ? 'Forbidden' : 'Failure',
        'refused by the test',
      );
      return;
    }
    // GET /api/v1/nodes/NAME: one node, or 404 NotFound as the API server says it.
    const one = /^\/api\/v1\/nodes\/([^/]+)$/.exec(url.pathname);
    if (one) {
      const n = this.nodes.get(decodeURIComponent(one[1]!));
      if (n) res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(n));
      else status(res, 404, 'NotFound', `nodes "${one[1]}" not found`);
      return;
    }
    const kind = kindOf(url.pathname);
    if (!kind) {
      res.writeHead(404).end();
      return;
    }
    if (url.searchParams.get('watch') === 'true') {
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      res.flushHeaders(); // as the API server does: the watch is open before any event
      this.watchers.push({ kind, res });
      req.on('close', () => {
        this.watchers = this.watchers.filter((w) => w.res !== res);
      });
      return;
    }
    const send = () => {
      this.lists[kind]++;
      // As the API server writes lists: items without apiVersion and kind.
      const items = [...this.collection(kind).values()].map(
        ({ apiVersion, kind, ...rest }) => rest,
      );
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          ...LIST[kind],
          metadata: { resourceVersion: String(this.rv) },
          items,
        }),
      );
    };
    if (this.holdLists && kind === 'pods') setTimeout(send, 300);
    else send();
  }

  collection(kind: Kind): Map<string, Obj> {
    return this[kind];
  }

  /** The key an object is stored under in its collection. */
  static keyOf(kind: Kind, o: Obj): string {
    const md = o.metadata as { name: string; namespace?: string };
    return kind === 'networkpolicies' ? `${md.namespace}/${md.name}` : md.name;
  }

  event(kind: Kind, type: string, object: Obj): void {
    this.rv++;
    const o = {
      ...object,
      metadata: { ...(object.metadata as Obj), resourceVersion: String(this.rv) },
    };
    if (kind !== 'nodes') {
      const key = FakeApiServer.keyOf(kind, o);
      if (type === 'DELETED') this.collection(kind).delete(key);
      else if (type !== 'BOOKMARK') this.collection(kind).set(key, o);
    }
    for (const w of this.watchers.filter((x) => x.kind === kind))
      w.res.write(`${JSON.stringify({ type, object: o })}\n`);
  }

  /** The watch's resourceVersion expired: 410 Gone as an ERROR event, then end the stream. */
  expire(kind: Kind): void {
    for (const w of this.watchers.filter((x) => x.kind === kind)) {
      w.res.write(
        `${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410, message: 'too old resource version' } })}\n`,
      );
      w.res.end();
    }
  }

  async stop(): Promise<void> {
    for (const w of this.watchers) w.res.destroy();
    await new Promise<void>((r) => this.server?.close(() => r()));
  }
}
