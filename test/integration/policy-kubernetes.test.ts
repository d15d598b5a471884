/**
 * NetworkPolicies and namespaces from the Kubernetes API into the policy
 * store, against a local HTTP server that speaks the API server's
 * list+watch wire protocol (test/helpers/fake-kube-api.ts; no API server is
 * available here): the first list (client-node's typed models, `_from`
 * included), watch events as plain JSON, a 410 Gone that forces a relist,
 * and the evaluator's verdicts following each change.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { startPolicySource } from '../../src/policy/kubernetes-source.js';
import { PolicyStore } from '../../src/policy/store.js';
import type { PolicyPod } from '../../src/policy/types.js';
import { silentLogger } from '../../src/util/log.js';
import { FakeApiServer, type Obj } from '../helpers/fake-kube-api.js';

const namespace = (name: string, labels: Record<string, string> = {}): Obj => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } },
});

const policy = (ns: string, name: string, spec: Obj): Obj => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name, namespace: ns, uid: `uid-${name}` },
  spec,
});

const backend: PolicyPod = {
  namespace: 'stars',
  name: 'backend',
  labels: { role: 'backend' },
  ips: ['10.244.1.11'],
};
const frontend: PolicyPod = {
  namespace: 'stars',
  name: 'frontend',
  labels: { role: 'frontend' },
  ips: ['10.244.1.10'],
};
const client: PolicyPod = {
  namespace: 'client',
  name: 'client',
  labels: { role: 'client' },
  ips: ['10.244.1.12'],
};
const ui: PolicyPod = {
  namespace: 'management-ui',
  name: 'ui',
  labels: { role: 'management-ui' },
  ips: ['10.244.1.13'],
};

async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function kubeConfig(url: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'fake', server: url, skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'c', cluster: 'fake', user: 'u' }],
    currentContext: 'c',
  });
  return kc;
}

describe('NetworkPolicy and namespace informers (local list+watch server)', () => {
  let api: FakeApiServer;
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    await api?.stop();
  });

  it('lists, then follows policy and namespace events; verdicts change with them; relists after 410 Gone', async () => {
    api = new FakeApiServer();
    for (const ns of [namespace('stars'), namespace('client'), namespace('management-ui')])
      api.namespaces.set((ns.metadata as { name: string }).name, ns);
    api.networkpolicies.set(
      'stars/default-deny',
      policy('stars', 'default-deny', { podSelector: {} }),
    );
    api.networkpolicies.set(
      'stars/backend-policy',
      policy('stars', 'backend-policy', {
        podSelector: { matchLabels: { role: 'backend' } },
        ingress: [
          {
            from: [{ podSelector: { matchLabels: { role: 'frontend' } } }],
            ports: [{ protocol: 'TCP', port: 6379 }],
          },
        ],
      }),
    );
    const url = await api.start();
    const store = new PolicyStore();
    close = (
      await startPolicySource({
        store,
        logger: silentLogger(),
        kubeConfig: kubeConfig(url),
        retryMs: 50,
      })
    ).close;
    expect(store.synced).toBe(true);
    expect(
      store
        .list()
        .map((p) => p.name)
        .sort(),
    ).toEqual(['backend-policy', 'default-deny']);
    const verdict = (src: PolicyPod, dst: PolicyPod, dport: number) =>
      store
        .evaluator({ pods: [backend, frontend, client, ui] })
        .evaluate({ src: src.ips![0]!, dst: dst.ips![0]!, proto: 6, dport });
    // The list's items came through client-node's models (`_from`): the rule is there.
    expect(verdict(frontend, backend, 6379)).toMatchObject({
      allowed: true,
      ingress: { allowedBy: [{ name: 'backend-policy', rule: 0 }] },
    });
    expect(verdict(client, backend, 6379).allowed).toBe(false);
    expect(verdict(ui, backend, 6379).allowed).toBe(false);

    await until(() => api.watchers.length === 2, 'both watches');
    // A new policy, as a plain-JSON watch event: ui namespaces may reach every stars pod.
    api.event(
      'networkpolicies',
      'ADDED',
      policy('stars', 'allow-ui', {
        podSelector: {},
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { role: 'management-ui' } } }] }],
      }),
    );
    await until(() => store.list().length === 3, 'ADDED policy');
    expect(verdict(ui, backend, 6379).allowed).toBe(false); // the namespace lacks the label yet
    api.event('namespaces', 'MODIFIED', namespace('management-ui', { role: 'management-ui' }));
    await until(() => verdict(ui, backend, 6379).allowed, 'MODIFIED namespace labels');
    expect(verdict(ui, frontend, 80).allowed).toBe(true);

    api.event('networkpolicies', 'DELETED', policy('stars', 'default-deny', { podSelector: {} }));
    await until(() => store.list().length === 2, 'DELETED policy');
    // frontend is now isolated by allow-ui alone.
    expect(verdict(client, frontend, 80)).toMatchObject({
      allowed: false,
      ingress: { reason: 'isolated', isolatedBy: [{ namespace: 'stars', name: 'allow-ui' }] },
    });
    expect(verdict(client, backend, 6379).ingress.isolatedBy.map((p) => p.name)).toEqual([
      'allow-ui',
      'backend-policy',
    ]);

    // While "disconnected": backend-policy goes away without an event; 410 Gone forces a relist.
    const listsBefore = api.lists.networkpolicies;
    api.networkpolicies.delete('stars/backend-policy');
    api.expire('networkpolicies');
    await until(() => api.lists.networkpolicies > listsBefore, 'a relist');
    await until(() => store.list().length === 1, 'the vanished policy removed');
    expect(verdict(client, backend, 6379).ingress.isolatedBy.map((p) => p.name)).toEqual([
      'allow-ui',
    ]);
    expect(verdict(frontend, backend, 6379).allowed).toBe(false); // its allowing rule went with it
  }, 30_000);

  it('leaves out a policy it cannot read, and says which and why', async () => {
    api = new FakeApiServer();
    api.networkpolicies.set(
      'a/bad',
      policy('a', 'bad', { podSelector: {}, ingress: [{ ports: [{ protocol: 'ICMP' }] }] }),
    );
    api.networkpolicies.set('a/good', policy('a', 'good', { podSelector: {} }));
    const url = await api.start();
    const store = new PolicyStore();
    close = (
      await startPolicySource({
        store,
        logger: silentLogger(),
        kubeConfig: kubeConfig(url),
        retryMs: 50,
      })
    ).close;
    expect(store.list().map((p) => p.name)).toEqual(['good']);
    expect([...store.refusedPolicies()]).toEqual([
      [
        'a/bad',
        expect.stringContaining(
          'spec.ingress[0].ports[0].protocol: expected TCP, UDP or SCTP, got "ICMP"',
        ),
      ],
    ]);
  }, 30_000);
});
