/**
 * The Kubernetes endpoint source against a local HTTP server that speaks the
 * API server's list+watch wire protocol (no API server is available here):
 * list responses with metadata.resourceVersion, `?watch=true` chunked
 * streams of JSON lines (ADDED, MODIFIED, DELETED, BOOKMARK), and a 410 Gone
 * ERROR event that forces a relist.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { EndpointCache } from '../../src/endpoints/cache.js';
import { startKubernetesSource } from '../../src/endpoints/kubernetes-source.js';
import { silentLogger } from '../../src/util/log.js';

type Obj = Record<string, unknown>;

function pod(name: string, ip: string, node = 'node-1', labels: Record<string, string> = {}): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'stars',
      uid: `uid-${name}`,
      generateName: `${name.split('-')[0]}-`,
      labels,
      resourceVersion: '1',
    },
    spec: { nodeName: node },
    status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
  };
}

/** A tiny API server: GET list / watch for pods and nodes, events pushed by the test. */
class FakeApiServer {
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
  watchers: { kind: 'pods' | 'nodes'; res: ServerResponse }[] = [];
  lists = { pods: 0, nodes: 0 };
  holdLists = false;

  async start(): Promise<string> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', () => r()));
    return `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const kind = url.pathname.endsWith('/pods')
      ? 'pods'
      : url.pathname.endsWith('/nodes')
        ? 'nodes'
        : undefined;
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
      const items = [...(kind === 'pods' ? this.pods : this.nodes).values()];
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          apiVersion: 'v1',
          kind: kind === 'pods' ? 'PodList' : 'NodeList',
          metadata: { resourceVersion: String(this.rv) },
          items,
        }),
      );
    };
    if (this.holdLists && kind === 'pods') setTimeout(send, 300);
    else send();
  }

  event(kind: 'pods' | 'nodes', type: string, object: Obj): void {
    this.rv++;
    const o = {
      ...object,
      metadata: { ...(object.metadata as Obj), resourceVersion: String(this.rv) },
    };
    if (kind === 'pods') {
      const name = (o.metadata as unknown as { name: string }).name;
      if (type === 'DELETED') this.pods.delete(name);
      else if (type !== 'BOOKMARK') this.pods.set(name, o);
    }
    for (const w of this.watchers.filter((x) => x.kind === kind))
      w.res.write(`${JSON.stringify({ type, object: o })}\n`);
  }

  /** The watch's resourceVersion expired: 410 Gone as an ERROR event, then end the stream. */
  expire(kind: 'pods' | 'nodes'): void {
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

async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('Kubernetes endpoint source (local list+watch server)', () => {
  let api: FakeApiServer;
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    await api?.stop();
  });

  it('is ready only after the first list, then follows ADDED, MODIFIED, DELETED and BOOKMARK', async () => {
    api = new FakeApiServer();
    api.pods.set('backend-x', pod('backend-x', '10.244.1.3'));
    api.holdLists = true;
    const url = await api.start();
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: url, skipTLSVerify: true }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'c', cluster: 'fake', user: 'u' }],
      currentContext: 'c',
    });
    const cache = new EndpointCache({ nodeName: 'node-1' });
    let t = 1_000;
    const starting = startKubernetesSource({
      cache,
      logger: silentLogger(),
      nodeName: 'node-1',
      kubeConfig: kc,
      now: () => t,
      retryMs: 50,
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(cache.synced).toBe(false); // the pod list is still on its way
    close = (await starting).close;
    expect(cache.synced).toBe(true);
    expect(cache.lookup('10.244.1.3', t)).toMatchObject({
      type: 'wep',
      namespace: 'stars',
      name: 'backend-x',
      local: true,
    });
    expect(cache.lookup('10.0.0.1', t)).toMatchObject({ type: 'hep', name: 'node-1' });

    await until(() => api.watchers.length === 2, 'both watches');
    t = 2_000;
    api.event('pods', 'ADDED', pod('frontend-y', '10.244.1.4', 'node-2', { role: 'frontend' }));
    await until(() => cache.lookup('10.244.1.4', t).name === 'frontend-y', 'ADDED');
    expect(cache.lookup('10.244.1.4', t)).toMatchObject({
      local: false,
      labels: { role: 'frontend' },
    });
    t = 3_000;
    api.event('pods', 'MODIFIED', pod('frontend-y', '10.244.1.5', 'node-2'));
    await until(() => cache.lookup('10.244.1.5', t).name === 'frontend-y', 'MODIFIED (new IP)');
    api.event('pods', 'BOOKMARK', { kind: 'Pod', apiVersion: 'v1', metadata: { name: 'x' } });
    t = 4_000;
    api.event('pods', 'DELETED', pod('backend-x', '10.244.1.3'));
    await until(() => cache.lookup('10.244.1.3', 10_000_000).type === 'net', 'DELETED');
    // Flows from before the deletion still name the pod.
    expect(cache.lookup('10.244.1.3', 3_500)).toMatchObject({ name: 'backend-x' });
  }, 30_000);

  it('relists after 410 Gone and drops pods that vanished meanwhile', async () => {
    api = new FakeApiServer();
    api.pods.set('a', pod('a-1', '10.244.2.1'));
    const url = await api.start();
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: url, skipTLSVerify: true }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'c', cluster: 'fake', user: 'u' }],
      currentContext: 'c',
    });
    const cache = new EndpointCache({ nodeName: 'node-1', graceMs: 0 });
    let t = 1_000;
    close = (
      await startKubernetesSource({
        cache,
        logger: silentLogger(),
        nodeName: 'node-1',
        kubeConfig: kc,
        now: () => t,
        retryMs: 50,
      })
    ).close;
    await until(() => api.watchers.length === 2, 'watches');
    const listsBefore = api.lists.pods;
    // While "disconnected": a-1 goes away and b-1 appears, without events.
    api.pods.clear();
    api.pods.set('b', pod('b-1', '10.244.2.2'));
    t = 5_000;
    api.expire('pods');
    await until(() => api.lists.pods > listsBefore, 'a relist');
    await until(() => cache.lookup('10.244.2.2', t).name === 'b-1', 'the relisted pod');
    await until(() => cache.lookup('10.244.2.1', 6_000).type === 'net', 'the vanished pod removed');
  }, 30_000);
});
