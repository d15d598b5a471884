/**
 * The "stars" demo scenario, as data: pods, the servers they run, who talks
 * to whom, and the policies applied in each phase.
 */
import type { PodSpec } from '../sim/simnode.js';

export interface DemoPod extends PodSpec {
  key: string;
  serve?: number;
}

export const STARS_PODS: readonly DemoPod[] = [
  {
    key: 'frontend',
    namespace: 'stars',
    name: 'frontend-5d9b7c8f4-h2x8k',
    generateName: 'frontend-5d9b7c8f4-',
    ip: '10.244.1.10',
    labels: { role: 'frontend' },
    serve: 80,
  },
  {
    key: 'backend',
    namespace: 'stars',
    name: 'backend-7f6d4b9c8-q4z7m',
    generateName: 'backend-7f6d4b9c8-',
    ip: '10.244.1.11',
    labels: { role: 'backend' },
    serve: 6379,
  },
  {
    key: 'client',
    namespace: 'client',
    name: 'client-6c8d7b5f9-p9w3v',
    generateName: 'client-6c8d7b5f9-',
    ip: '10.244.1.12',
    labels: { role: 'client' },
  },
  {
    key: 'management-ui',
    namespace: 'management-ui',
    name: 'management-ui-5b7c9d8f6-t6n2c',
    generateName: 'management-ui-5b7c9d8f6-',
    ip: '10.244.1.13',
    labels: { role: 'management-ui' },
    serve: 9001,
  },
];

/** The public-looking address the sink namespace answers on. */
export const INTERNET_IP = '203.0.113.10';
export const INTERNET_PORT = 443;

export interface Talk {
  from: string;
  to: string;
  port: number;
  /** Allowed once the allow policies are in (client → backend never is). */
  allowedBy?: string;
}

/** Who talks to whom, periodically, for the whole demo. */
export const TALKS: readonly Talk[] = [
  { from: 'management-ui', to: 'frontend', port: 80, allowedBy: 'default.allow-ui' },
  { from: 'management-ui', to: 'backend', port: 6379, allowedBy: 'default.allow-ui' },
  { from: 'client', to: 'frontend', port: 80, allowedBy: 'default.allow-client' },
  { from: 'frontend', to: 'backend', port: 6379, allowedBy: 'default.allow-frontend-backend' },
  { from: 'client', to: 'backend', port: 6379 },
  {
    from: 'frontend',
    to: 'internet',
    port: INTERNET_PORT,
    allowedBy: 'default.allow-egress-https',
  },
];

/**
 * The stars scenario's policy as Kubernetes NetworkPolicies, equivalent to
 * the iptables rules the demo installs (src/sim/policy.ts): first a default
 * deny of both directions in every namespace, then each allowed talk as an
 * egress rule at its source and an ingress rule at its destination; client →
 * backend stays denied. `flowtrail policy test --policies` takes them as
 * files; the round-trip test checks the evaluator gives the simulated node's
 * own verdicts with them.
 */
export const STARS_DEFAULT_DENY_YAML = ['stars', 'client', 'management-ui']
  .map(
    (ns) => `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: default-deny, namespace: ${ns} }
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
`,
  )
  .join('---\n');

export const STARS_ALLOW_YAML = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: frontend-policy, namespace: stars }
spec:
  podSelector: { matchLabels: { role: frontend } }
  policyTypes: [Ingress, Egress]
  ingress:
    - from:
        - namespaceSelector: { matchLabels: { kubernetes.io/metadata.name: client } }
          podSelector: { matchLabels: { role: client } }
        - namespaceSelector: { matchLabels: { kubernetes.io/metadata.name: management-ui } }
          podSelector: { matchLabels: { role: management-ui } }
      ports: [{ protocol: TCP, port: 80 }]
  egress:
    - to: [{ podSelector: { matchLabels: { role: backend } } }]
      ports: [{ protocol: TCP, port: 6379 }]
    - to: [{ ipBlock: { cidr: ${INTERNET_IP}/32 } }]
      ports: [{ protocol: TCP, port: ${INTERNET_PORT} }]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: backend-policy, namespace: stars }
spec:
  podSelector: { matchLabels: { role: backend } }
  ingress:
    - from:
        - podSelector: { matchLabels: { role: frontend } }
        - namespaceSelector: { matchLabels: { kubernetes.io/metadata.name: management-ui } }
          podSelector: { matchLabels: { role: management-ui } }
      ports: [{ protocol: TCP, port: 6379 }]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: client-policy, namespace: client }
spec:
  podSelector: { matchLabels: { role: client } }
  policyTypes: [Egress]
  egress:
    - to:
        - namespaceSelector: { matchLabels: { kubernetes.io/metadata.name: stars } }
          podSelector: { matchLabels: { role: frontend } }
      ports: [{ protocol: TCP, port: 80 }]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: ui-policy, namespace: management-ui }
spec:
  podSelector: { matchLabels: { role: management-ui } }
  policyTypes: [Egress]
  egress:
    - to:
        - namespaceSelector: { matchLabels: { kubernetes.io/metadata.name: stars } }
          podSelector: { matchLabels: { role: frontend } }
      ports: [{ protocol: TCP, port: 80 }]
    - to:
        - namespaceSelector: { matchLabels: { kubernetes.io/metadata.name: stars } }
          podSelector: { matchLabels: { role: backend } }
      ports: [{ protocol: TCP, port: 6379 }]
`;
