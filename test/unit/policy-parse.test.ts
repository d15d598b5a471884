/**
 * NetworkPolicy objects from YAML and JSON: what the API server refuses is
 * refused here with the field path and the value; arbitrary input never
 * throws anything but PolicyParseError; a parsed policy evaluates the same
 * after a trip through YAML.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { PolicyParseError, parseNetworkPolicy, parsePolicyYaml } from '../../src/policy/parse.js';

const base = {
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name: 'p', namespace: 'ns' },
};

function errorOf(spec: unknown, metadata: unknown = base.metadata): string {
  try {
    parseNetworkPolicy({ ...base, metadata, spec }, 'p.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyParseError);
    return (err as Error).message;
  }
  throw new Error('expected a PolicyParseError');
}

describe('NetworkPolicy validation, as the API server validates', () => {
  it.each([
    [
      { podSelector: { matchExpressions: [{ key: 'a', operator: 'In', values: [] }] } },
      'spec.podSelector.matchExpressions[0].values: must be non-empty for In',
    ],
    [
      { podSelector: { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] } },
      'spec.podSelector.matchExpressions[0].values: must be empty for Exists',
    ],
    [
      { podSelector: { matchExpressions: [{ key: 'a', operator: 'Equals', values: ['x'] }] } },
      'spec.podSelector.matchExpressions[0].operator: expected In, NotIn, Exists or DoesNotExist, got "Equals"',
    ],
    [
      { podSelector: {}, ingress: [{ from: [{}] }] },
      'spec.ingress[0].from[0]: a peer needs podSelector, namespaceSelector or ipBlock',
    ],
    [
      {
        podSelector: {},
        ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8' }, podSelector: {} }] }],
      },
      'spec.ingress[0].from[0]: ipBlock cannot be combined with podSelector or namespaceSelector',
    ],
    [
      { podSelector: {}, egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0' } }] }] },
      'spec.egress[0].to[0].ipBlock.cidr: expected a CIDR such as 10.0.0.0/24 or 2001:db8::/64, got "10.0.0.0"',
    ],
    [
      { podSelector: {}, egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/33' } }] }] },
      'prefix /33 is longer than 32 bits',
    ],
    [
      {
        podSelector: {},
        egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/16', except: ['10.1.0.0/24'] } }] }],
      },
      'spec.egress[0].to[0].ipBlock.except[0]: "10.1.0.0/24" must be a strict subset of cidr "10.0.0.0/16"',
    ],
    [
      {
        podSelector: {},
        egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/16', except: ['10.0.0.0/16'] } }] }],
      },
      'must be a strict subset',
    ],
    [
      {
        podSelector: {},
        egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/16', except: ['2001:db8::/64'] } }] }],
      },
      'must be a strict subset',
    ],
    [
      { podSelector: {}, ingress: [{ ports: [{ protocol: 'ICMP' }] }] },
      'spec.ingress[0].ports[0].protocol: expected TCP, UDP or SCTP, got "ICMP"',
    ],
    [{ podSelector: {}, ingress: [{ ports: [{ port: 70000 }] }] }, 'spec.ingress[0].ports[0].port'],
    [
      { podSelector: {}, ingress: [{ ports: [{ port: '80' }] }] },
      'expected a port number or a port name',
    ],
    [
      { podSelector: {}, ingress: [{ ports: [{ port: 'a-very-long-port-name' }] }] },
      'got "a-very-long-port-name"',
    ],
    [
      { podSelector: {}, ingress: [{ ports: [{ port: 'http', endPort: 90 }] }] },
      'spec.ingress[0].ports[0].endPort: needs a numeric port',
    ],
    [
      { podSelector: {}, ingress: [{ ports: [{ endPort: 90 }] }] },
      'spec.ingress[0].ports[0].endPort: needs a numeric port',
    ],
    [
      { podSelector: {}, ingress: [{ ports: [{ port: 100, endPort: 90 }] }] },
      'spec.ingress[0].ports[0].endPort: must be at least port (100), got 90',
    ],
    [
      { podSelector: {}, policyTypes: ['ingress'] },
      'spec.policyTypes[0]: expected Ingress or Egress, got "ingress"',
    ],
    [{ podselector: {} }, 'spec: unknown field(s) podselector'],
  ])('refuses %j', (spec, message) => {
    expect(errorOf(spec)).toContain(message);
  });

  it('names the file and refuses bad names and API versions', () => {
    expect(errorOf({}, { name: 'Bad_Name' })).toMatch(
      /^p\.yaml: metadata\.name: expected a DNS subdomain name, got "Bad_Name"/,
    );
    expect(() =>
      parseNetworkPolicy({ ...base, apiVersion: 'extensions/v1beta1', spec: {} }, 'x'),
    ).toThrow('apiVersion: expected networking.k8s.io/v1, got "extensions/v1beta1"');
  });

  it('reads several documents and Lists, skips other kinds, fills the namespace, drops nulls', () => {
    const text = `
apiVersion: v1
kind: Service
metadata: { name: s }
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: a }
spec:
  podSelector:
  ingress:
  - from:
    ports: null
---
apiVersion: v1
kind: List
items:
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: { name: b, namespace: x, uid: abc, resourceVersion: "7" }
  spec: { podSelector: { matchLabels: { app: b } }, policyTypes: [Egress] }
`;
    const { policies, skipped } = parsePolicyYaml(text, 'f.yaml', 'team');
    expect(skipped).toBe(1);
    expect(policies).toEqual([
      { namespace: 'team', name: 'a', spec: { podSelector: {}, ingress: [{}] } },
      {
        namespace: 'x',
        name: 'b',
        spec: { podSelector: { matchLabels: { app: 'b' } }, policyTypes: ['Egress'] },
      },
    ]);
  });

  it('reports the document of a YAML error', () => {
    expect(() => parsePolicyYaml('a: 1\n---\nb: [1\n', 'bad.yaml')).toThrow(
      /^bad\.yaml \(document 2\): invalid YAML/,
    );
  });

  it('throws nothing but PolicyParseError on arbitrary objects', () => {
    const anyJson = fc.anything({
      withNullPrototype: false,
      key: fc.constantFrom(
        'podSelector',
        'ingress',
        'egress',
        'from',
        'to',
        'ports',
        'port',
        'endPort',
        'ipBlock',
        'cidr',
        'except',
        'matchLabels',
        'matchExpressions',
        'key',
        'operator',
        'values',
        'policyTypes',
        'protocol',
        'x',
      ),
    });
    fc.assert(
      fc.property(anyJson, (spec) => {
        try {
          parseNetworkPolicy({ ...base, spec }, 'fuzz');
        } catch (err) {
          if (!(err instanceof PolicyParseError)) throw err;
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('a policy survives a trip through YAML text unchanged', () => {
    const spec = {
      podSelector: {
        matchLabels: { app: 'db' },
        matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['x'] }],
      },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [
        {
          from: [{ namespaceSelector: {}, podSelector: { matchLabels: { a: 'b' } } }],
          ports: [{ protocol: 'UDP', port: 53 }],
        },
      ],
      egress: [
        {
          to: [{ ipBlock: { cidr: '2001:db8::/48', except: ['2001:db8::/64'] } }],
          ports: [{ port: 1000, endPort: 2000 }, { port: 'http' }],
        },
      ],
    };
    const once = parseNetworkPolicy({ ...base, spec }, 'a');
    const twice = parsePolicyYaml(stringify({ ...base, spec: once.spec }), 'b').policies[0];
    expect(twice).toEqual(once);
    expect(once.spec).toEqual(spec);
  });
});
