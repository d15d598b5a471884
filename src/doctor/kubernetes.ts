/** Kubernetes preconditions for the endpoint cache: API reachable, list pods and nodes allowed, this node known. */
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { type CheckResult, errnoOf, fail, ok } from './types.js';

/** The message of the v1 Status object the API server answers errors with, if the body is one. */
function statusMessage(body: unknown): string | undefined {
  try {
    const o = (typeof body === 'string' ? JSON.parse(body) : body) as { message?: unknown };
    return typeof o?.message === 'string' && o.message !== '' ? o.message : undefined;
  } catch {
    return undefined;
  }
}

function explain(err: unknown, what: string): { found: string; fix: string } {
  const e = err as {
    code?: number | string;
    body?: unknown;
    message?: string;
    cause?: { code?: string };
  };
  const status = typeof e.code === 'number' ? e.code : undefined;
  if (status === 401 || status === 403) {
    return {
      found: `${what}: ${status === 401 ? 'unauthorized' : 'forbidden'} (HTTP ${status})`,
      fix: 'apply deploy/kubernetes/rbac.yaml (get/list/watch on pods and nodes for the flowtrail service account)',
    };
  }
  const fix =
    'check the API server address (in-cluster: KUBERNETES_SERVICE_HOST; else endpoints.kubernetes.kubeconfig) and network policy to it';
  if (status !== undefined) {
    return { found: `${what}: ${statusMessage(e.body) ?? 'error'} (HTTP ${status})`, fix };
  }
  const errno = e.cause?.code ?? (typeof e.code === 'string' ? e.code : errnoOf(err));
  return { found: `${what}: ${(e.message ?? String(err)).split('\n')[0]} (${errno})`, fix };
}

export async function checkKubernetes(
  kubeconfig: string | undefined,
  nodeName: string,
): Promise<CheckResult[]> {
  const kc = new KubeConfig();
  try {
    if (kubeconfig) kc.loadFromFile(kubeconfig);
    else kc.loadFromDefault();
  } catch (err) {
    return [
      fail(
        'kubernetes.api',
        'Kubernetes API',
        `cannot load the kubeconfig (${(err as Error).message})`,
        'set endpoints.kubernetes.kubeconfig, or run in a pod with a service account',
      ),
    ];
  }
  const server = kc.getCurrentCluster()?.server ?? '(none)';
  const api = kc.makeApiClient(CoreV1Api);
  const out: CheckResult[] = [];
  try {
    await api.listNode({ limit: 1 });
    await api.listPodForAllNamespaces({ limit: 1 });
    out.push(
      ok('kubernetes.api', 'Kubernetes API: list pods and nodes', `${server}: list allowed`),
    );
  } catch (err) {
    const d = explain(err, `list pods/nodes at ${server}`);
    out.push(fail('kubernetes.api', 'Kubernetes API: list pods and nodes', d.found, d.fix));
    return out;
  }
  try {
    await api.readNode({ name: nodeName });
    out.push(ok('kubernetes.node', `this node (${nodeName})`, 'found among the cluster nodes'));
  } catch (err) {
    const notFound = (err as { code?: unknown }).code === 404;
    const d = notFound
      ? { found: `no node named ${nodeName} in the cluster (HTTP 404)` }
      : explain(err, `node ${nodeName}`);
    out.push(
      fail(
        'kubernetes.node',
        `this node (${nodeName})`,
        d.found,
        'set nodeName from the downward API (spec.nodeName → FLOWTRAIL_NODE_NAME)',
      ),
    );
  }
  return out;
}
