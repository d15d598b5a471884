/**
 * NetworkPolicies and namespaces from the Kubernetes API: list+watch
 * informers (@kubernetes/client-node), the same design as the pod source
 * (src/endpoints/kubernetes-source.ts), feeding a PolicyStore. The store is
 * marked synced after the first list of both; a failed watch restarts with
 * a delay; on 410 Gone the informer relists and emits deletes for what
 * vanished meanwhile. Needs list/watch on networkpolicies
 * (networking.k8s.io) and namespaces (deploy/kubernetes/rbac.yaml).
 */
import {
  CoreV1Api,
  type KubeConfig,
  makeInformer,
  NetworkingV1Api,
  type V1Namespace,
  type V1NetworkPolicy,
} from '@kubernetes/client-node';
import { loadKubeConfig, restartOnError } from '../util/kube-informer.js';
import type { Logger } from '../util/log.js';
import type { PolicyStore } from './store.js';

export interface PolicySource {
  close(): Promise<void>;
}

export async function startPolicySource(opts: {
  store: PolicyStore;
  logger: Logger;
  kubeConfig?: KubeConfig;
  kubeconfig?: string | undefined;
  retryMs?: number;
}): Promise<PolicySource> {
  const kc = loadKubeConfig(opts);
  const core = kc.makeApiClient(CoreV1Api);
  const networking = kc.makeApiClient(NetworkingV1Api);
  const policies = makeInformer<V1NetworkPolicy>(
    kc,
    '/apis/networking.k8s.io/v1/networkpolicies',
    () => networking.listNetworkPolicyForAllNamespaces(),
  );
  const namespaces = makeInformer<V1Namespace>(kc, '/api/v1/namespaces', () =>
    core.listNamespace(),
  );
  const { store, logger } = opts;
  let stopped = false;
  policies.on('add', (p) => store.upsertPolicy(p));
  policies.on('update', (p) => store.upsertPolicy(p));
  policies.on('delete', (p) => store.deletePolicy(p));
  namespaces.on('add', (n) => store.upsertNamespace(n));
  namespaces.on('update', (n) => store.upsertNamespace(n));
  namespaces.on('delete', (n) => store.deleteNamespace(n));
  const retryMs = opts.retryMs ?? 5_000;
  restartOnError(policies, 'networkpolicies', logger, retryMs, () => stopped);
  restartOnError(namespaces, 'namespaces', logger, retryMs, () => stopped);
  await Promise.all([policies.start(), namespaces.start()]);
  store.replaceAll({ policies: policies.list(), namespaces: namespaces.list() });
  store.markSynced();
  for (const [key, why] of store.refusedPolicies())
    logger.warn(
      { policy: key, err: why },
      'NetworkPolicy not understood; it is left out of evaluations',
    );
  logger.info(
    { networkPolicies: store.list().length, namespaces: store.namespaceList().length },
    'Kubernetes NetworkPolicies synced',
  );
  return {
    async close() {
      stopped = true;
      await Promise.all([policies.stop(), namespaces.stop()]);
    },
  };
}
