/**
 * Endpoints from the Kubernetes API: list+watch informers on pods and nodes
 * (@kubernetes/client-node), feeding the endpoint cache. All pods are
 * watched, not only this node's: remote peers need names too. The cache is
 * marked synced only after the first list of both; a watch that fails is
 * restarted with backoff, and an expired resourceVersion (410 Gone) makes the
 * informer relist, which the cache applies as a replacement so pods deleted
 * while we were not watching end at that time.
 */
import {
  CoreV1Api,
  type KubeConfig,
  makeInformer,
  type V1Node,
  type V1Pod,
} from '@kubernetes/client-node';
import type { ContainerPort, PortProtocol } from '../policy/types.js';
import { loadKubeConfig, restartOnError } from '../util/kube-informer.js';
import type { Logger } from '../util/log.js';
import type { EndpointCache, NodeInfo, PodInfo } from './cache.js';

export function podInfo(p: V1Pod): PodInfo | undefined {
  const md = p.metadata;
  if (!md?.name || !md.namespace) return undefined;
  const ips = (p.status?.podIPs ?? []).map((x) => x.ip).filter((x): x is string => !!x);
  if (ips.length === 0 && p.status?.podIP) ips.push(p.status.podIP);
  // Named ports in NetworkPolicies resolve against these.
  const ports: ContainerPort[] = (p.spec?.containers ?? []).flatMap((c) =>
    (c.ports ?? []).map((cp) => ({
      ...(cp.name ? { name: cp.name } : {}),
      containerPort: cp.containerPort,
      ...(cp.protocol ? { protocol: cp.protocol as PortProtocol } : {}),
    })),
  );
  return {
    ...(md.uid ? { uid: md.uid } : {}),
    namespace: md.namespace,
    name: md.name,
    ...(md.generateName ? { generateName: md.generateName } : {}),
    ips,
    ...(p.spec?.nodeName ? { nodeName: p.spec.nodeName } : {}),
    labels: md.labels ?? {},
    ...(p.spec?.hostNetwork ? { hostNetwork: true } : {}),
    ...(p.status?.phase ? { phase: p.status.phase } : {}),
    ...(ports.length > 0 ? { ports } : {}),
  };
}

export function nodeInfo(n: V1Node): NodeInfo | undefined {
  const name = n.metadata?.name;
  if (!name) return undefined;
  const ips = (n.status?.addresses ?? [])
    .filter((a) => a.type === 'InternalIP' || a.type === 'ExternalIP')
    .map((a) => a.address);
  return { name, ips, labels: n.metadata?.labels ?? {} };
}

export interface KubernetesSource {
  close(): Promise<void>;
}

export async function startKubernetesSource(opts: {
  cache: EndpointCache;
  logger: Logger;
  nodeName: string;
  kubeConfig?: KubeConfig;
  kubeconfig?: string | undefined;
  now?: () => number;
  retryMs?: number;
}): Promise<KubernetesSource> {
  const now = opts.now ?? Date.now;
  const kc = loadKubeConfig(opts);
  const api = kc.makeApiClient(CoreV1Api);
  const pods = makeInformer<V1Pod>(kc, '/api/v1/pods', () => api.listPodForAllNamespaces());
  const nodes = makeInformer<V1Node>(kc, '/api/v1/nodes', () => api.listNode());
  let stopped = false;
  const { cache, logger } = opts;

  const upsertPod = (p: V1Pod) => {
    const info = podInfo(p);
    if (info) cache.upsertPod(info, now());
  };
  pods.on('add', upsertPod);
  pods.on('update', upsertPod);
  pods.on('delete', (p) => {
    const info = podInfo(p);
    if (info) cache.deletePod(info, now());
  });
  const upsertNode = (n: V1Node) => {
    const info = nodeInfo(n);
    if (info) cache.upsertNode(info, now());
  };
  nodes.on('add', upsertNode);
  nodes.on('update', upsertNode);
  nodes.on('delete', (n) => {
    if (n.metadata?.name) cache.deleteNode(n.metadata.name, now());
  });
  restartOnError(pods, 'pods', logger, opts.retryMs ?? 5_000, () => stopped);
  restartOnError(nodes, 'nodes', logger, opts.retryMs ?? 5_000, () => stopped);
  // Readiness only after the first full list of both resources.
  await Promise.all([pods.start(), nodes.start()]);
  cache.replaceAll(
    {
      pods: pods
        .list()
        .map(podInfo)
        .filter((p): p is PodInfo => p !== undefined),
      nodes: nodes
        .list()
        .map(nodeInfo)
        .filter((n): n is NodeInfo => n !== undefined),
    },
    now(),
  );
  cache.markSynced();
  if (!nodes.get(opts.nodeName)) {
    logger.warn(
      { nodeName: opts.nodeName },
      'this node is not in the Kubernetes node list: check nodeName',
    );
  }
  logger.info(
    { pods: pods.list().length, nodes: nodes.list().length },
    'Kubernetes endpoints synced',
  );
  return {
    async close() {
      stopped = true;
      await Promise.all([pods.stop(), nodes.stop()]);
    },
  };
}
