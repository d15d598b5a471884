/**
 * The NetworkPolicy evaluator against a naive reference written separately
 * from the API docs (test/helpers/policy-reference.ts), on random clusters:
 * namespaces and pods with labels, container ports and nodes; policies with
 * every selector operator, combined selectors, ipBlocks with except, ports
 * with protocols, names and ranges, explicit and inferred policyTypes; and
 * flows between pods, nodes and outside addresses over TCP, UDP, SCTP and
 * ICMP.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type FlowVerdict, PolicyEvaluator } from '../../src/policy/evaluate.js';
import type {
  ClusterState,
  IPBlock,
  LabelSelector,
  NetworkPolicy,
  NetworkPolicyPeer,
  NetworkPolicyPort,
  PolicyPod,
} from '../../src/policy/types.js';
import { type RefEnd, type RefVerdict, referenceVerdict } from '../helpers/policy-reference.js';

const NS = ['ns1', 'ns2', 'ns3'];
const KEYS = ['app', 'tier', 'env'];
const VALUES = ['a', 'b', 'c'];
const PORT_NAMES = ['http', 'dns', 'alt', 'sctp'];
/** Each pod gives some of the names to ports of its own choosing. */
const containerPorts = fc.uniqueArray(
  fc.record(
    {
      name: fc.constantFrom(...PORT_NAMES),
      containerPort: fc.constantFrom(53, 80, 8080),
      protocol: fc.constantFrom('TCP' as const, 'UDP' as const, 'SCTP' as const),
    },
    { requiredKeys: ['name', 'containerPort'] },
  ),
  { selector: (p) => p.name, maxLength: 3 },
);
const NODES = [
  { name: 'n1', ips: ['10.0.1.1'] },
  { name: 'n2', ips: ['10.0.1.2'] },
];
const OUTSIDE = [
  '10.0.0.200',
  '10.0.0.3',
  '192.168.1.1',
  '8.8.8.8',
  '10.0.1.1',
  '10.0.1.2',
  '2001:db8::5',
];
const BLOCKS: IPBlock[] = [
  { cidr: '10.0.0.0/24' },
  { cidr: '10.0.0.0/24', except: ['10.0.0.0/30'] },
  { cidr: '10.0.0.0/29', except: ['10.0.0.4/31', '10.0.0.2/32'] },
  { cidr: '10.0.0.4/30' },
  { cidr: '0.0.0.0/0', except: ['10.0.0.0/8'] },
  { cidr: '0.0.0.0/0' },
  { cidr: '10.0.1.0/24' },
  { cidr: '192.168.0.0/16' },
  { cidr: '2001:db8::/64' },
  { cidr: '::/0', except: ['2001:db8::/120'] },
];

const labels = fc.dictionary(fc.constantFrom(...KEYS), fc.constantFrom(...VALUES), { maxKeys: 3 });
const values = fc.uniqueArray(fc.constantFrom(...VALUES, 'ns1', 'ns2'), {
  minLength: 1,
  maxLength: 2,
});

function selector(keys: string[]): fc.Arbitrary<LabelSelector> {
  const key = fc.constantFrom(...keys);
  const expr = fc.oneof(
    fc.record({ key, operator: fc.constantFrom('In' as const, 'NotIn' as const), values }),
    fc.record({ key, operator: fc.constantFrom('Exists' as const, 'DoesNotExist' as const) }),
  );
  return fc.record(
    {
      matchLabels: fc.dictionary(key, fc.constantFrom(...VALUES, 'ns1', 'ns2'), { maxKeys: 2 }),
      matchExpressions: fc.array(expr, { maxLength: 2 }),
    },
    { requiredKeys: [] },
  );
}

const podSel = selector(KEYS);
const nsSel = selector([...KEYS, 'kubernetes.io/metadata.name']);

const peer: fc.Arbitrary<NetworkPolicyPeer> = fc.oneof(
  fc.record({ ipBlock: fc.constantFrom(...BLOCKS) }),
  fc.record({ podSelector: podSel }),
  fc.record({ namespaceSelector: nsSel }),
  fc.record({ podSelector: podSel, namespaceSelector: nsSel }),
);

const port: fc.Arbitrary<NetworkPolicyPort> = fc
  .record(
    {
      protocol: fc.constantFrom('TCP' as const, 'UDP' as const, 'SCTP' as const),
      port: fc.oneof(
        fc.constantFrom(53, 79, 80, 443, 8080),
        fc.constantFrom(...PORT_NAMES, 'nope'),
      ),
      endPort: fc.integer({ min: 0, max: 3 }),
    },
    { requiredKeys: [] },
  )
  .map((p) => {
    const { endPort, ...rest } = p;
    // endPort only with a numeric port, and at least that port.
    return typeof rest.port === 'number' && endPort !== undefined
      ? { ...rest, endPort: rest.port + endPort }
      : rest;
  });

const maybeList = <T>(a: fc.Arbitrary<T>, max: number) =>
  fc.option(fc.array(a, { maxLength: max }), { nil: undefined });

const policy = (i: number): fc.Arbitrary<NetworkPolicy> =>
  fc
    .record({
      namespace: fc.constantFrom(...NS),
      // Often {}: every pod of the namespace, so that isolation is common.
      podSelector: fc.oneof(
        { weight: 2, arbitrary: fc.constant({}) },
        { weight: 3, arbitrary: podSel },
      ),
      policyTypes: fc.constantFrom(
        undefined,
        [],
        ['Ingress'],
        ['Egress'],
        ['Ingress', 'Egress'],
        ['Egress', 'Ingress'],
      ),
      ingress: maybeList(
        fc.record({ from: maybeList(peer, 3), ports: maybeList(port, 3) }, { requiredKeys: [] }),
        2,
      ),
      egress: maybeList(
        fc.record({ to: maybeList(peer, 3), ports: maybeList(port, 3) }, { requiredKeys: [] }),
        2,
      ),
    })
    .map(({ namespace, podSelector, policyTypes, ingress, egress }) => ({
      namespace,
      name: `pol${i}`,
      spec: {
        podSelector,
        ...(policyTypes ? { policyTypes: [...policyTypes] as ('Ingress' | 'Egress')[] } : {}),
        ...(ingress ? { ingress } : {}),
        ...(egress ? { egress } : {}),
      },
    }));

const cluster: fc.Arbitrary<ClusterState> = fc
  .record({
    namespaces: fc.tuple(labels, labels, labels),
    pods: fc.array(
      fc.record({
        namespace: fc.constantFrom(...NS),
        labels,
        ports: containerPorts,
        nodeName: fc.constantFrom(undefined, 'n1', 'n2'),
      }),
      { minLength: 1, maxLength: 6 },
    ),
    policyCount: fc.integer({ min: 0, max: 5 }),
  })
  .chain(({ namespaces, pods, policyCount }) =>
    fc.tuple(...Array.from({ length: policyCount }, (_, i) => policy(i))).map((policies) => ({
      namespaces: NS.map((name, i) => ({ name, labels: namespaces[i]! })),
      pods: pods.map(
        (p, i): PolicyPod => ({
          namespace: p.namespace,
          name: `p${i}`,
          labels: p.labels,
          ips: [`10.0.0.${i + 1}`],
          ports: p.ports,
          ...(p.nodeName ? { nodeName: p.nodeName } : {}),
        }),
      ),
      nodes: NODES,
      policies,
    })),
  );

/** An end: a pod by address, a pod by object, or an outside address. */
const end = (c: ClusterState) =>
  fc.oneof(
    fc.constantFrom(...c.pods).map((p) => ({ by: 'ip' as const, pod: p })),
    fc.constantFrom(...c.pods).map((p) => ({ by: 'object' as const, pod: p })),
    fc.constantFrom(...OUTSIDE).map((ip) => ({ by: 'outside' as const, ip })),
  );

const scenario = cluster.chain((c) =>
  fc.record({
    c: fc.constant(c),
    src: end(c),
    dst: end(c),
    proto: fc.constantFrom(6, 17, 132, 1),
    dport: fc.constantFrom(53, 79, 80, 81, 443, 8080, 8081),
  }),
);

type End = { by: 'ip' | 'object'; pod: PolicyPod } | { by: 'outside'; ip: string };

const flowEnd = (e: End) => (e.by === 'outside' ? e.ip : e.by === 'ip' ? e.pod.ips![0]! : e.pod);
const refEnd = (e: End): RefEnd =>
  e.by === 'outside'
    ? // An outside address that a pod has is that pod (10.0.0.3 is p2's when there are three).
      { pod: undefined, ip: e.ip }
    : { pod: e.pod, ip: e.pod.ips![0] };

function normal(v: FlowVerdict) {
  const side = (s: FlowVerdict['egress']) => ({
    allowed: s.allowed,
    isolatedBy: s.isolatedBy.map((p) => `${p.namespace}/${p.name}`).sort(),
    allowedBy: s.allowedBy.map((r) => `${r.namespace}/${r.name}#${r.rule}`).sort(),
  });
  return { allowed: v.allowed, egress: side(v.egress), ingress: side(v.ingress) };
}

function normalRef(v: RefVerdict) {
  return { allowed: v.allowed, egress: v.egress, ingress: v.ingress };
}

describe('NetworkPolicy evaluator against the naive reference', () => {
  it('agrees on the verdict of both sides and on the policies and rules named, on random clusters', () => {
    fc.assert(
      fc.property(scenario, ({ c, src, dst, proto, dport }) => {
        const ev = new PolicyEvaluator(c);
        const d = proto === 1 ? undefined : dport;
        const resolve = (e: End): RefEnd => {
          if (e.by !== 'outside') return refEnd(e);
          const owner = c.pods.find((p) => p.ips?.includes(e.ip));
          return owner ? { pod: owner, ip: e.ip } : { pod: undefined, ip: e.ip };
        };
        const got = normal(ev.evaluate({ src: flowEnd(src), dst: flowEnd(dst), proto, dport: d }));
        const want = normalRef(referenceVerdict(c, resolve(src), resolve(dst), proto, d));
        expect(got).toEqual(want);
      }),
      { numRuns: 5000 },
    );
  });

  it('covers both outcomes and every reason often enough to mean something', () => {
    const seen = new Map<string, number>();
    fc.assert(
      fc.property(scenario, ({ c, src, dst, proto, dport }) => {
        const v = new PolicyEvaluator(c).evaluate({
          src: flowEnd(src),
          dst: flowEnd(dst),
          proto,
          dport: proto === 1 ? undefined : dport,
        });
        for (const k of [
          `allowed=${v.allowed}`,
          `egress:${v.egress.reason}`,
          `ingress:${v.ingress.reason}`,
        ])
          seen.set(k, (seen.get(k) ?? 0) + 1);
      }),
      { numRuns: 3000, seed: 42 },
    );
    for (const k of ['ingress:own-node', 'egress:own-node'])
      expect(seen.get(k) ?? 0, k).toBeGreaterThan(10);
    for (const k of [
      'allowed=true',
      'allowed=false',
      'egress:rule',
      'egress:isolated',
      'ingress:rule',
      'ingress:isolated',
      'ingress:not-a-pod',
      'ingress:not-isolated',
      'ingress:same-pod',
    ])
      expect(seen.get(k) ?? 0, k).toBeGreaterThan(100);
  });
});
