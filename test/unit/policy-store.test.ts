/**
 * The policy store (what the informers feed) and what the endpoint sources
 * give the evaluator: container ports for named ports, the pod's node for
 * the own-node exception.
 */
import { describe, expect, it } from 'vitest';
import { EndpointCache } from '../../src/endpoints/cache.js';
import { parseEndpointsFile } from '../../src/endpoints/file-source.js';
import { podInfo } from '../../src/endpoints/kubernetes-source.js';
import { PolicyStore } from '../../src/policy/store.js';

describe('PolicyStore', () => {
  it('compiles once per change, tolerates unknown fields from the API, and leaves out what it cannot read', () => {
    const store = new PolicyStore();
    store.upsertPolicy({
      metadata: { name: 'a', namespace: 'x' },
      spec: { podSelector: {}, futureField: true, ingress: [{ _from: [{ podSelector: {} }] }] },
    });
    const first = store.evaluator();
    expect(store.evaluator()).toBe(first);
    expect(store.list()[0]!.spec.ingress).toEqual([{ from: [{ podSelector: {} }] }]);
    store.upsertPolicy({
      metadata: { name: 'b', namespace: 'x' },
      spec: { podSelector: { matchExpressions: [{ key: 'k', operator: 'In' }] } },
    });
    expect(store.evaluator()).not.toBe(first);
    expect(store.list().map((p) => p.name)).toEqual(['a']);
    expect(store.refusedPolicies().get('x/b')).toContain('values: must be non-empty for In');
    store.deletePolicy({ metadata: { name: 'b', namespace: 'x' } });
    expect(store.refusedPolicies().size).toBe(0);
    store.upsertNamespace({ metadata: { name: 'x', labels: { team: 't' } } });
    expect(store.namespaceList()).toEqual([{ name: 'x', labels: { team: 't' } }]);
    store.deleteNamespace({ metadata: { name: 'x' } });
    expect(store.namespaceList()).toEqual([]);
  });
});

describe('pods as policies see them', () => {
  it('the Kubernetes source keeps container ports; the cache answers policyPod with ports and node', () => {
    const info = podInfo({
      metadata: { name: 'web-1', namespace: 'w', labels: { app: 'web' } },
      spec: {
        nodeName: 'node-1',
        containers: [
          {
            name: 'c',
            ports: [
              { name: 'http', containerPort: 8080 },
              { containerPort: 53, protocol: 'UDP' },
            ],
          },
          { name: 'd' },
        ],
      },
      status: { podIP: '10.1.0.5' },
    })!;
    expect(info.ports).toEqual([
      { name: 'http', containerPort: 8080 },
      { containerPort: 53, protocol: 'UDP' },
    ]);
    const cache = new EndpointCache({ nodeName: 'node-1' });
    cache.upsertPod(info, 1_000);
    cache.upsertNode({ name: 'node-1', ips: ['192.168.0.1'] }, 1_000);
    expect(cache.policyPod('10.1.0.5', 2_000)).toEqual({
      namespace: 'w',
      name: 'web-1',
      labels: { app: 'web' },
      ips: ['10.1.0.5'],
      ports: info.ports,
      nodeName: 'node-1',
    });
    expect(cache.policyPod('192.168.0.1', 2_000)).toBeUndefined();
    expect(cache.policyPod('8.8.8.8', 2_000)).toBeUndefined();
    expect(cache.policyNodes()).toEqual([{ name: 'node-1', ips: ['192.168.0.1'] }]);
  });

  it('the endpoints file takes ports and namespace labels, and refuses a bad port', () => {
    const parsed = parseEndpointsFile(
      'namespaces:\n  - { name: stars, labels: { team: web } }\npods:\n  - { namespace: stars, name: b, ip: 10.1.0.9, ports: [{ name: redis, containerPort: 6379 }] }\n',
      'e.yaml',
    );
    expect(parsed.pods[0]!.ports).toEqual([{ name: 'redis', containerPort: 6379 }]);
    expect(parsed.namespaces).toEqual([{ name: 'stars', labels: { team: 'web' } }]);
    expect(() =>
      parseEndpointsFile(
        'pods:\n  - { namespace: s, name: b, ports: [{ containerPort: 0 }] }\n',
        'e.yaml',
      ),
    ).toThrow(/pods\[0\] \(s\/b\)\.ports\[0\]\.containerPort: Too small/);
  });
});
