/**
 * `advise --kubernetes` and `policy test --kubeconfig`: when the records
 * carry no labels, pods (labels, container ports), namespaces and nodes come
 * from one list each of the Kubernetes API, here a local server speaking the
 * API server's wire protocol (test/helpers/fake-kube-api.ts; no API server
 * is available here). Named ports in a policy resolve with the ports the
 * API gave, and only with them.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { STARS_PODS } from '../../src/demo/stars.js';
import { encodeRecord } from '../../src/format/codec.js';
import { runCli } from '../harness/cli.js';
import { FakeApiServer } from '../helpers/fake-kube-api.js';
import { starsEndpointsYaml, starsRecords } from '../helpers/stars-policy.js';

const PORTS: Record<string, { name: string; containerPort: number }[]> = {
  frontend: [{ name: 'http', containerPort: 80 }],
  backend: [{ name: 'redis', containerPort: 6379 }],
};

describe('advise and policy test with pods from the Kubernetes API', () => {
  const api = new FakeApiServer();
  const dir = mkdtempSync(join(tmpdir(), 'ft-advise-k8s-'));
  const file = join(dir, 'flows.log');
  const kubeconfig = join(dir, 'kubeconfig');
  const since = ['--since', '1970-01-01T00:00:00Z'];
  beforeAll(async () => {
    for (const p of STARS_PODS)
      api.pods.set(p.name, {
        metadata: {
          name: p.name,
          namespace: p.namespace,
          generateName: p.generateName,
          labels: p.labels,
          uid: p.name,
        },
        spec: { nodeName: 'node-1', containers: [{ name: 'c', ports: PORTS[p.key] ?? [] }] },
        status: { phase: 'Running', podIP: p.ip, podIPs: [{ ip: p.ip }] },
      });
    for (const ns of ['stars', 'client', 'management-ui'])
      api.namespaces.set(ns, {
        metadata: { name: ns, labels: { 'kubernetes.io/metadata.name': ns } },
      });
    const url = await api.start();
    writeFileSync(
      kubeconfig,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'fake', cluster: { server: url, 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'u', user: {} }],
        contexts: [{ name: 'c', context: { cluster: 'fake', user: 'u' } }],
        'current-context': 'c',
      }),
    );
    writeFileSync(
      file,
      `${starsRecords({ labels: false, kind: 1 })
        .map((r) => encodeRecord(r))
        .join('\n')}\n`,
    );
  });
  afterAll(async () => {
    await api.stop();
  });

  it('advise --kubernetes --kubeconfig: labels from the API; the replay agrees', async () => {
    const r = await runCli([
      'advise',
      '--file',
      file,
      ...since,
      '--kubernetes',
      '--kubeconfig',
      kubeconfig,
      '--json',
    ]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.replay).toMatchObject({ agrees: true, newlyDenied: 0, newlyAllowed: 0 });
    expect(out.policies.map((p: { workload: string }) => p.workload)).toEqual([
      'client/client',
      'management-ui/management-ui',
      'stars/backend',
      'stars/frontend',
    ]);
    expect(api.lists).toMatchObject({ pods: 1, namespaces: 1, nodes: 1 });
  });

  it('policy test: a named port resolves with the container ports the API gave, and not without them', async () => {
    const policy = join(dir, 'named.yaml');
    writeFileSync(
      policy,
      stringify({
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: 'redis-only', namespace: 'stars' },
        spec: {
          podSelector: { matchLabels: { role: 'backend' } },
          ingress: [{ ports: [{ port: 'redis' }] }],
        },
      }),
    );
    const test = async (...who: string[]) => {
      const r = await runCli([
        'policy',
        'test',
        '--policies',
        policy,
        '--file',
        file,
        ...since,
        ...who,
        '--json',
      ]);
      return JSON.parse(r.stdout).rows as {
        src: string;
        dst: string;
        port: number;
        observed: string;
        proposed: string;
      }[];
    };
    const backendRows = (rows: Awaited<ReturnType<typeof test>>) =>
      rows
        .filter((r) => r.dst === 'stars/backend')
        .map((r) => `${r.src} ${r.observed}->${r.proposed}`)
        .sort();
    const fromApi = backendRows(await test('--kubeconfig', kubeconfig));
    // 6379 is `redis` on the backend: every source passes (client → backend newly allowed).
    expect(fromApi).toEqual([
      'client/client deny->allow',
      'management-ui/management-ui allow->allow',
      'management-ui/management-ui deny->allow',
      'stars/frontend allow->allow',
      'stars/frontend deny->allow',
    ]);
    const endpoints = join(dir, 'endpoints.yaml');
    writeFileSync(endpoints, starsEndpointsYaml()); // no container ports
    const fromFile = backendRows(await test('--endpoints', endpoints));
    expect(fromFile).toContain('stars/frontend allow->deny');
    expect(fromFile.filter((r) => r.endsWith('->allow'))).toEqual([]);
  });
});
