/**
 * The examples of the Kubernetes documentation (Network Policies concept
 * page and the Declare Network Policy walkthrough), parsed from their YAML
 * and evaluated: each assertion is a sentence of the docs' explanation.
 */
import { describe, expect, it } from 'vitest';
import { PolicyEvaluator } from '../../src/policy/evaluate.js';
import { decidingPolicies, decidingPrefixes } from '../../src/policy/naming.js';
import { parsePolicyYaml } from '../../src/policy/parse.js';
import type { ClusterState, NetworkPolicy, PolicyPod } from '../../src/policy/types.js';

const pod = (
  namespace: string,
  name: string,
  ip: string,
  labels: Record<string, string>,
  extra: Partial<PolicyPod> = {},
): PolicyPod => ({ namespace, name, ips: [ip], labels, ...extra });

function policies(yaml: string): NetworkPolicy[] {
  return parsePolicyYaml(yaml, 'example.yaml').policies;
}

const TEST_NETWORK_POLICY = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: test-network-policy
  namespace: default
spec:
  podSelector:
    matchLabels:
      role: db
  policyTypes:
  - Ingress
  - Egress
  ingress:
  - from:
    - ipBlock:
        cidr: 172.17.0.0/16
        except:
        - 172.17.1.0/24
    - namespaceSelector:
        matchLabels:
          project: myproject
    - podSelector:
        matchLabels:
          role: frontend
    ports:
    - protocol: TCP
      port: 6379
  egress:
  - to:
    - ipBlock:
        cidr: 10.0.0.0/24
    ports:
    - protocol: TCP
      port: 5978
`;

describe('the Network Policies page example (test-network-policy)', () => {
  const db = pod('default', 'db-0', '10.1.0.1', { role: 'db' });
  const frontend = pod('default', 'frontend-0', '10.1.0.2', { role: 'frontend' });
  const other = pod('default', 'other-0', '10.1.0.3', { role: 'other' });
  const mine = pod('mine', 'x-0', '10.1.1.1', { anything: 'x' });
  const theirs = pod('theirs', 'frontend-0', '10.1.2.1', { role: 'frontend' });
  const state: ClusterState = {
    namespaces: [
      { name: 'default' },
      { name: 'mine', labels: { project: 'myproject' } },
      { name: 'theirs', labels: { project: 'theirproject' } },
    ],
    pods: [db, frontend, other, mine, theirs],
    policies: policies(TEST_NETWORK_POLICY),
  };
  const ev = new PolicyEvaluator(state);
  const toDb = (src: string, port = 6379, proto = 6) =>
    ev.evaluate({ src, dst: '10.1.0.1', proto, dport: port }).allowed;

  it('isolates role=db pods in default for both directions', () => {
    expect(ev.isolating(db, 'ingress')).toEqual([
      { namespace: 'default', name: 'test-network-policy' },
    ]);
    expect(ev.isolating(db, 'egress')).toHaveLength(1);
    expect(ev.isolating(frontend, 'ingress')).toEqual([]);
  });

  it('allows TCP 6379 from role=frontend in default, any pod of a project=myproject namespace, and 172.17.0.0/16 except 172.17.1.0/24', () => {
    expect(toDb('10.1.0.2')).toBe(true);
    expect(toDb('10.1.1.1')).toBe(true);
    expect(toDb('172.17.0.255')).toBe(true);
    expect(toDb('172.17.2.0')).toBe(true);
    expect(toDb('172.17.255.255')).toBe(true);
  });

  it('denies everything else into db: other pods, frontends of other namespaces, the except range, other ports and UDP', () => {
    expect(toDb('10.1.0.3')).toBe(false);
    expect(toDb('10.1.2.1')).toBe(false); // podSelector alone means the policy's namespace
    expect(toDb('172.17.1.0')).toBe(false);
    expect(toDb('172.17.1.255')).toBe(false);
    expect(toDb('172.18.0.1')).toBe(false);
    expect(toDb('10.1.0.2', 6380)).toBe(false);
    expect(toDb('10.1.0.2', 6379, 17)).toBe(false);
  });

  it('allows db only TCP 5978 to 10.0.0.0/24, and names the deciding policy in the rule-prefix convention', () => {
    const out = (dst: string, port: number) =>
      ev.evaluate({ src: '10.1.0.1', dst, proto: 6, dport: port });
    expect(out('10.0.0.7', 5978).allowed).toBe(true);
    expect(decidingPrefixes(out('10.0.0.7', 5978))).toEqual(['APE0|default.test-network-policy']);
    expect(out('10.0.1.7', 5978).allowed).toBe(false);
    expect(out('10.0.0.7', 5979).allowed).toBe(false);
    // Egress from db to the frontend pod: db's egress refuses (only 10.0.0.0/24).
    const v = ev.evaluate({ src: '10.1.0.1', dst: '10.1.0.2', proto: 6, dport: 80 });
    expect(v.egress.reason).toBe('isolated');
    expect(v.ingress.reason).toBe('not-isolated');
    expect(decidingPrefixes(v)).toEqual(['DPE|default.test-network-policy']);
    expect(decidingPolicies(v)).toEqual(['default.test-network-policy']);
  });
});

describe('to/from selectors: one element with both selectors versus two elements', () => {
  const both = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: both, namespace: app }
spec:
  podSelector: {}
  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          user: alice
      podSelector:
        matchLabels:
          role: client
`;
  const two = both
    .replace('      podSelector:', '    - podSelector:')
    .replace('name: both', 'name: two');
  const namespaces = [
    { name: 'app' },
    { name: 'alice-ns', labels: { user: 'alice' } },
    { name: 'bob-ns' },
  ];
  const pods = [
    pod('app', 'server', '10.2.0.1', {}),
    pod('alice-ns', 'client', '10.2.1.1', { role: 'client' }),
    pod('alice-ns', 'other', '10.2.1.2', { role: 'other' }),
    pod('bob-ns', 'client', '10.2.2.1', { role: 'client' }),
    pod('app', 'client', '10.2.0.2', { role: 'client' }),
  ];
  const allowedFrom = (yaml: string) => {
    const ev = new PolicyEvaluator({ namespaces, pods, policies: policies(yaml) });
    return pods
      .slice(1)
      .filter((p) => ev.evaluate({ src: p.ips![0]!, dst: '10.2.0.1', proto: 6, dport: 80 }).allowed)
      .map((p) => `${p.namespace}/${p.name}`);
  };

  it('one element: role=client pods in user=alice namespaces only', () => {
    expect(allowedFrom(both)).toEqual(['alice-ns/client']);
  });

  it('two elements: role=client pods of the local namespace, or any pod of a user=alice namespace', () => {
    expect(allowedFrom(two)).toEqual(['alice-ns/client', 'alice-ns/other', 'app/client']);
  });
});

describe('default policies', () => {
  const a = pod('ns', 'a', '10.3.0.1', { app: 'a' });
  const b = pod('ns', 'b', '10.3.0.2', { app: 'b' });
  const outside = pod('elsewhere', 'c', '10.3.1.1', {});
  const run = (yaml: string) => {
    const ev = new PolicyEvaluator({
      namespaces: [{ name: 'ns' }, { name: 'elsewhere' }],
      pods: [a, b, outside],
      policies: policies(yaml),
    });
    return {
      into: ev.evaluate({ src: '10.3.1.1', dst: '10.3.0.1', proto: 6, dport: 80 }),
      outOf: ev.evaluate({ src: '10.3.0.1', dst: '203.0.113.1', proto: 17, dport: 53 }),
      ev,
    };
  };
  const header =
    'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  namespace: ns\n';

  it('default-deny-ingress isolates every pod for ingress and leaves egress alone', () => {
    const r = run(
      `${header}  name: default-deny-ingress\nspec:\n  podSelector: {}\n  policyTypes:\n  - Ingress\n`,
    );
    expect(r.into.allowed).toBe(false);
    expect(decidingPrefixes(r.into)).toEqual(['DPI|ns.default-deny-ingress']);
    expect(r.outOf.allowed).toBe(true);
    expect(r.ev.isolating(b, 'ingress')).toHaveLength(1);
  });

  it('allow-all-ingress: ingress [{}] allows every connection in', () => {
    const r = run(
      `${header}  name: allow-all-ingress\nspec:\n  podSelector: {}\n  ingress:\n  - {}\n  policyTypes:\n  - Ingress\n`,
    );
    expect(r.into.allowed).toBe(true);
    expect(decidingPrefixes(r.into)).toEqual(['API0|ns.allow-all-ingress']);
  });

  it('allow-all-ingress beside default-deny-ingress: the union allows', () => {
    const r = run(
      `${header}  name: default-deny-ingress\nspec:\n  podSelector: {}\n  policyTypes:\n  - Ingress\n---\n` +
        `${header}  name: allow-all-ingress\nspec:\n  podSelector: {}\n  ingress:\n  - {}\n  policyTypes:\n  - Ingress\n`,
    );
    expect(r.into.allowed).toBe(true);
    expect(r.into.ingress.isolatedBy.map((p) => p.name)).toEqual([
      'allow-all-ingress',
      'default-deny-ingress',
    ]);
  });

  it('default-deny-egress isolates for egress only', () => {
    const r = run(
      `${header}  name: default-deny-egress\nspec:\n  podSelector: {}\n  policyTypes:\n  - Egress\n`,
    );
    expect(r.outOf.allowed).toBe(false);
    expect(decidingPrefixes(r.outOf)).toEqual(['DPE|ns.default-deny-egress']);
    expect(r.into.allowed).toBe(true);
  });

  it('allow-all-egress: egress [{}] allows every connection out, UDP included', () => {
    const r = run(
      `${header}  name: allow-all-egress\nspec:\n  podSelector: {}\n  egress:\n  - {}\n  policyTypes:\n  - Egress\n`,
    );
    expect(r.outOf.allowed).toBe(true);
  });

  it('default-deny-all denies both ways; a pod can still reach itself', () => {
    const r = run(
      `${header}  name: default-deny-all\nspec:\n  podSelector: {}\n  policyTypes:\n  - Ingress\n  - Egress\n`,
    );
    expect(r.into.allowed).toBe(false);
    expect(r.outOf.allowed).toBe(false);
    expect(r.ev.evaluate({ src: '10.3.0.1', dst: '10.3.0.2', proto: 6, dport: 80 }).allowed).toBe(
      false,
    );
    expect(r.ev.evaluate({ src: '10.3.0.1', dst: '10.3.0.1', proto: 6, dport: 80 }).allowed).toBe(
      true,
    );
  });

  it('policyTypes left out: Ingress always, Egress only when there are egress rules', () => {
    const noTypes = run(`${header}  name: ingress-only\nspec:\n  podSelector: {}\n  egress: []\n`);
    expect(noTypes.into.allowed).toBe(false);
    expect(noTypes.outOf.allowed).toBe(true); // egress: [] has no rules: not an egress policy
    const withEgress = run(
      `${header}  name: with-egress\nspec:\n  podSelector: {}\n  egress:\n  - to:\n    - ipBlock: { cidr: 198.51.100.0/24 }\n`,
    );
    expect(withEgress.into.allowed).toBe(false);
    expect(withEgress.outOf.allowed).toBe(false);
    expect(
      withEgress.ev.evaluate({ src: '10.3.0.1', dst: '198.51.100.9', proto: 6, dport: 1 }).allowed,
    ).toBe(true);
  });
});

describe('ports: ranges, named ports, protocols', () => {
  it('multi-port-egress: TCP 32000..32768 to 10.0.0.0/24, both ends included', () => {
    const ev = new PolicyEvaluator({
      namespaces: [{ name: 'default' }],
      pods: [pod('default', 'db', '10.4.0.1', { role: 'db' })],
      policies: policies(`
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: multi-port-egress
  namespace: default
spec:
  podSelector:
    matchLabels:
      role: db
  policyTypes:
    - Egress
  egress:
    - to:
        - ipBlock:
            cidr: 10.0.0.0/24
      ports:
        - protocol: TCP
          port: 32000
          endPort: 32768
`),
    });
    const out = (port: number, proto = 6) =>
      ev.evaluate({ src: '10.4.0.1', dst: '10.0.0.9', proto, dport: port }).allowed;
    expect([31999, 32000, 32500, 32768, 32769].map((p) => out(p))).toEqual([
      false,
      true,
      true,
      true,
      false,
    ]);
    expect(out(32000, 17)).toBe(false);
  });

  it('a named port resolves on the destination pod, with its protocol', () => {
    const web = pod(
      'w',
      'web',
      '10.5.0.1',
      { app: 'web' },
      {
        ports: [
          { name: 'http', containerPort: 8080 },
          { name: 'dns', containerPort: 53, protocol: 'UDP' },
        ],
      },
    );
    const web2 = pod(
      'w',
      'web2',
      '10.5.0.2',
      { app: 'web' },
      { ports: [{ name: 'http', containerPort: 9090 }] },
    );
    const client = pod(
      'w',
      'client',
      '10.5.0.3',
      { app: 'client' },
      { ports: [{ name: 'http', containerPort: 7070 }] },
    );
    const ev = new PolicyEvaluator({
      namespaces: [{ name: 'w' }],
      pods: [web, web2, client],
      policies: policies(`
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: web, namespace: w }
spec:
  podSelector: { matchLabels: { app: web } }
  ingress:
  - ports:
    - port: http
    - port: dns
      protocol: UDP
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: client-out, namespace: w }
spec:
  podSelector: { matchLabels: { app: client } }
  policyTypes: [Egress]
  egress:
  - ports:
    - port: http
`),
    });
    // Ingress, from an address no policy isolates.
    const into = (dst: string, port: number, proto = 6) =>
      ev.evaluate({ src: '192.0.2.9', dst, proto, dport: port }).allowed;
    expect(into('10.5.0.1', 8080)).toBe(true);
    expect(into('10.5.0.1', 9090)).toBe(false);
    expect(into('10.5.0.2', 9090)).toBe(true);
    expect(into('10.5.0.1', 53, 17)).toBe(true);
    expect(into('10.5.0.1', 53, 6)).toBe(false);
    // Egress: the destination's http counts, not the client's own (7070).
    const out = (dst: string, port: number) =>
      ev.evaluate({ src: '10.5.0.3', dst, proto: 6, dport: port }).egress.allowed;
    expect(out('10.5.0.1', 8080)).toBe(true);
    expect(out('10.5.0.2', 9090)).toBe(true);
    expect(out('10.5.0.2', 7070)).toBe(false);
    // An address that is no pod has no named ports.
    expect(out('192.0.2.1', 8080)).toBe(false);
  });
});

describe('namespaces by label, and by name', () => {
  it('egress-namespaces: matchExpressions In on a namespace label', () => {
    const ev = new PolicyEvaluator({
      namespaces: [
        { name: 'app' },
        { name: 'frontend', labels: { namespace: 'frontend' } },
        { name: 'backend', labels: { namespace: 'backend' } },
        { name: 'other', labels: { namespace: 'other' } },
      ],
      pods: [
        pod('app', 'myapp', '10.6.0.1', { app: 'myapp' }),
        pod('frontend', 'f', '10.6.1.1', {}),
        pod('backend', 'b', '10.6.2.1', {}),
        pod('other', 'o', '10.6.3.1', {}),
      ],
      policies: policies(`
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: egress-namespaces
  namespace: app
spec:
  podSelector:
    matchLabels:
      app: myapp
  policyTypes:
  - Egress
  egress:
  - to:
    - namespaceSelector:
        matchExpressions:
        - key: namespace
          operator: In
          values: ["frontend", "backend"]
`),
    });
    const out = (dst: string) => ev.evaluate({ src: '10.6.0.1', dst, proto: 6, dport: 1 }).allowed;
    expect(['10.6.1.1', '10.6.2.1', '10.6.3.1', '203.0.113.1'].map(out)).toEqual([
      true,
      true,
      false,
      false,
    ]);
  });

  it('kubernetes.io/metadata.name selects a namespace by name, also one never listed', () => {
    const ev = new PolicyEvaluator({
      namespaces: [],
      pods: [
        pod('db', 'db', '10.7.0.1', {}),
        pod('ops', 'o', '10.7.1.1', {}),
        pod('dev', 'd', '10.7.2.1', {}),
      ],
      policies: policies(`
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: from-ops, namespace: db }
spec:
  podSelector: {}
  ingress:
  - from:
    - namespaceSelector:
        matchLabels: { kubernetes.io/metadata.name: ops }
`),
    });
    expect(ev.evaluate({ src: '10.7.1.1', dst: '10.7.0.1', proto: 6, dport: 5432 }).allowed).toBe(
      true,
    );
    expect(ev.evaluate({ src: '10.7.2.1', dst: '10.7.0.1', proto: 6, dport: 5432 }).allowed).toBe(
      false,
    );
  });
});

describe('the node exception and the Declare Network Policy walkthrough', () => {
  const nginx = pod('default', 'nginx', '10.8.0.1', { app: 'nginx' }, { nodeName: 'node-a' });
  const state: ClusterState = {
    namespaces: [{ name: 'default' }],
    pods: [
      nginx,
      pod('default', 'busybox', '10.8.0.2', {}),
      pod('default', 'access', '10.8.0.3', { access: 'true' }),
    ],
    nodes: [
      { name: 'node-a', ips: ['192.168.10.1'] },
      { name: 'node-b', ips: ['192.168.10.2'] },
    ],
    policies: policies(`
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: access-nginx
spec:
  podSelector:
    matchLabels:
      app: nginx
  ingress:
  - from:
    - podSelector:
        matchLabels:
          access: "true"
`),
  };
  const ev = new PolicyEvaluator(state);
  const into = (src: string) => ev.evaluate({ src, dst: '10.8.0.1', proto: 6, dport: 80 });

  it('only pods labelled access=true reach nginx (the walkthrough), missing namespace meaning default', () => {
    expect(into('10.8.0.3').allowed).toBe(true);
    expect(into('10.8.0.2').allowed).toBe(false);
  });

  it("nginx's own node always reaches it; another node does not", () => {
    expect(into('192.168.10.1')).toMatchObject({ allowed: true, ingress: { reason: 'own-node' } });
    expect(into('192.168.10.2').allowed).toBe(false);
  });
});
