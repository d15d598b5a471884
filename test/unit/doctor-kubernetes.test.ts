/**
 * `flowtrail doctor`'s Kubernetes checks against a local server speaking the
 * API server's wire protocol (test/helpers/fake-kube-api.ts; no API server
 * is available here), through a kubeconfig as a user would give it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkKubernetes } from '../../src/doctor/kubernetes.js';
import { FakeApiServer } from '../helpers/fake-kube-api.js';

describe('doctor: Kubernetes checks', () => {
  let api: FakeApiServer;
  let server = '';
  const dir = mkdtempSync(join(tmpdir(), 'flowtrail-doctor-kube-'));
  const kubeconfig = (url: string): string => {
    const file = join(dir, `kubeconfig-${url.replace(/\W/g, '')}`);
    writeFileSync(
      file,
      [
        'apiVersion: v1',
        'kind: Config',
        // Plain HTTP: client-node allows it only with TLS verification off.
        `clusters: [{ name: c, cluster: { server: '${url}', insecure-skip-tls-verify: true } }]`,
        'users: [{ name: u, user: { token: doctor-test } }]',
        'contexts: [{ name: x, context: { cluster: c, user: u } }]',
        'current-context: x',
      ].join('\n'),
    );
    return file;
  };

  beforeAll(async () => {
    api = new FakeApiServer();
    server = await api.start();
  });
  afterAll(async () => {
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('API reachable, lists allowed, this node found: two ✓', async () => {
    api.refuse = undefined;
    const r = await checkKubernetes(kubeconfig(server), 'node-1');
    expect(r.map((c) => [c.id, c.status])).toEqual([
      ['kubernetes.api', 'ok'],
      ['kubernetes.node', 'ok'],
    ]);
    expect(r[0]!.found).toBe(`${server}: list allowed`);
    expect(api.lists).toMatchObject({ pods: expect.any(Number), nodes: expect.any(Number) });
  });

  it('nodeName not among the nodes: ✗ kubernetes.node, fix says where nodeName comes from', async () => {
    api.refuse = undefined;
    const r = await checkKubernetes(kubeconfig(server), 'ip-10-0-0-99');
    const node = r.find((c) => c.id === 'kubernetes.node')!;
    expect(node.status).toBe('fail');
    expect(node.found).toBe('no node named ip-10-0-0-99 in the cluster (HTTP 404)');
    expect(node.fix).toMatch(/FLOWTRAIL_NODE_NAME/);
  });

  it('RBAC missing (403 Forbidden): ✗ kubernetes.api naming the RBAC manifest', async () => {
    api.refuse = 403;
    try {
      const r = await checkKubernetes(kubeconfig(server), 'node-1');
      expect(r).toHaveLength(1);
      expect(r[0]).toMatchObject({
        id: 'kubernetes.api',
        status: 'fail',
        found: `list pods/nodes at ${server}: forbidden (HTTP 403)`,
      });
      expect(r[0]!.fix).toMatch(/deploy\/kubernetes\/rbac\.yaml/);
    } finally {
      api.refuse = undefined;
    }
  });

  it('another API error: ✗ kubernetes.api with the Status message the server gave', async () => {
    api.refuse = 500;
    try {
      const r = await checkKubernetes(kubeconfig(server), 'node-1');
      expect(r).toEqual([
        expect.objectContaining({
          id: 'kubernetes.api',
          status: 'fail',
          found: `list pods/nodes at ${server}: refused by the test (HTTP 500)`,
        }),
      ]);
    } finally {
      api.refuse = undefined;
    }
  });

  it('API server not answering: ✗ kubernetes.api with the errno', async () => {
    // A port just closed: nothing listens there.
    const gone = new FakeApiServer();
    const url = await gone.start();
    await gone.stop();
    const r = await checkKubernetes(kubeconfig(url), 'node-1');
    expect(r).toHaveLength(1);
    expect(r[0]).toMatchObject({ id: 'kubernetes.api', status: 'fail' });
    expect(r[0]!.found).toMatch(new RegExp(`^list pods/nodes at ${url}: .*\\(ECONNREFUSED\\)$`));
  });

  it('a kubeconfig that cannot be read: ✗ kubernetes.api saying so', async () => {
    const r = await checkKubernetes(join(dir, 'missing-kubeconfig'), 'node-1');
    expect(r).toEqual([
      expect.objectContaining({
        id: 'kubernetes.api',
        status: 'fail',
        found: expect.stringMatching(/^cannot load the kubeconfig \(.*ENOENT/),
      }),
    ]);
  });
});
