import { describe, expect, it } from 'vitest';
import type { Endpoint } from '../../src/endpoints/types.js';
import type { DropQuery } from '../../src/flows/kernel-denies.js';
import { NetworkPolicyNamer, type PolicyEndpoints } from '../../src/kdrops/policy-namer.js';
import { PolicyStore } from '../../src/policy/store.js';
import type { PolicyPod } from '../../src/policy/types.js';

const pods: Record<string, PolicyPod> = {
  '10.244.1.2': {
    namespace: 'client',
    name: 'client-1',
    labels: { role: 'client' },
    ips: ['10.244.1.2'],
  },
  '10.244.1.3': {
    namespace: 'stars',
    name: 'backend-1',
    labels: { role: 'backend' },
    ips: ['10.244.1.3'],
  },
};
const endpoints: PolicyEndpoints = {
  policyPod: (ip) => pods[ip],
  policyNodes: () => [],
  version: 1,
};

function store(...policies: object[]): PolicyStore {
  const s = new PolicyStore();
  s.replaceAll({
    policies: policies.map((spec, i) => ({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { namespace: (spec as { ns: string }).ns, name: `p${i}` },
      spec: { ...spec, ns: undefined },
    })),
    namespaces: [
      { metadata: { name: 'client', labels: {} } },
      { metadata: { name: 'stars', labels: {} } },
    ],
  });
  s.markSynced();
  return s;
}

const ep = { type: 'wep' } as Endpoint;
function q(over: Partial<DropQuery> = {}): DropQuery {
  return {
    src: ep,
    dst: ep,
    srcIP: '10.244.1.2',
    dstIP: '10.244.1.3',
    proto: 6,
    sport: 40000,
    dport: 6379,
    reporter: 'dst',
    reasonName: 'TC_EGRESS',
    ...over,
  };
}

const isolateBackend = {
  ns: 'stars',
  podSelector: { matchLabels: { role: 'backend' } },
  policyTypes: ['Ingress'],
};
const isolateClientEgress = { ns: 'client', podSelector: {}, policyTypes: ['Egress'] };

describe('NetworkPolicyNamer: the policy behind a kernel drop', () => {
  it('an ingress refusal names the policies isolating the destination, reported by dst', () => {
    const n = new NetworkPolicyNamer(store(isolateBackend), endpoints);
    expect(n.name(q({ reporter: 'src' }), 0)).toEqual({ policy: 'stars.p0', reporter: 'dst' });
  });

  it('an egress refusal names the source’s policies, reported by src', () => {
    const n = new NetworkPolicyNamer(store(isolateClientEgress), endpoints);
    expect(n.name(q(), 0)).toEqual({ policy: 'client.p0', reporter: 'src' });
  });

  it('both ends refuse: the end the hook points at reports', () => {
    const n = new NetworkPolicyNamer(store(isolateBackend, isolateClientEgress), endpoints);
    expect(n.name(q({ reporter: 'src' }), 0)).toEqual({ policy: 'client.p1', reporter: 'src' });
    expect(n.name(q({ reporter: 'dst' }), 0)).toEqual({ policy: 'stars.p0', reporter: 'dst' });
  });

  it('policies that allow the packet name nothing (the drop was not NetworkPolicy’s), and say so', () => {
    const allowClient = {
      ...isolateBackend,
      ingress: [
        { from: [{ namespaceSelector: {}, podSelector: { matchLabels: { role: 'client' } } }] },
      ],
    };
    const n = new NetworkPolicyNamer(store(allowClient), endpoints);
    expect(n.name(q(), 0)).toBeUndefined();
    expect(n.notPolicy).toBe(1);
  });

  it('names nothing before the policies are synced', () => {
    const s = new PolicyStore();
    expect(new NetworkPolicyNamer(s, endpoints).name(q(), 0)).toBeUndefined();
  });
});
