/**
 * The Kubernetes endpoint source against a local HTTP server that speaks the
 * API server's list+watch wire protocol (test/helpers/fake-kube-api.ts; no
 * API server is available here), including a 410 Gone ERROR event that
 * forces a relist.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { EndpointCache } from '../../src/endpoints/cache.js';
import { startKubernetesSource } from '../../src/endpoints/kubernetes-source.js';
import { silentLogger } from '../../src/util/log.js';
import { FakeApiServer, fakeKubeConfig, type Obj, until } from '../helpers/fake-kube-api.js';

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
    const kc = fakeKubeConfig(url);
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
    const kc = fakeKubeConfig(url);
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
