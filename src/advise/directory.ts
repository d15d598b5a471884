/**
 * Where pods' labels and ports, namespaces' labels and nodes' addresses
 * come from when the records do not carry them: an endpoints file (the
 * file source's format) or one list of each from the Kubernetes API.
 */
import { readFileSync } from 'node:fs';
import { CoreV1Api } from '@kubernetes/client-node';
import { parseEndpointsFile } from '../endpoints/file-source.js';
import { nodeInfo, podInfo } from '../endpoints/kubernetes-source.js';
import { FlowtrailError } from '../util/errors.js';
import { loadKubeConfig } from '../util/kube-informer.js';
import type { Directory } from './identity.js';

export function directoryFromFile(path: string): Directory {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new FlowtrailError(
      'ERR_ENDPOINTS_FILE',
      `${path}: cannot read the endpoints file (${code})`,
      { path },
    );
  }
  const { pods, nodes, namespaces } = parseEndpointsFile(text, path);
  return { pods, namespaces, nodes: nodes.map((n) => ({ name: n.name, ips: n.ips })) };
}

export async function directoryFromApi(kubeconfig: string | undefined): Promise<Directory> {
  const api = loadKubeConfig({ kubeconfig }).makeApiClient(CoreV1Api);
  try {
    const [pods, namespaces, nodes] = await Promise.all([
      api.listPodForAllNamespaces(),
      api.listNamespace(),
      api.listNode(),
    ]);
    return {
      pods: pods.items.map(podInfo).filter((p) => p !== undefined),
      namespaces: namespaces.items
        .filter((n) => n.metadata?.name)
        .map((n) => ({ name: n.metadata!.name!, labels: n.metadata?.labels ?? {} })),
      nodes: nodes.items
        .map(nodeInfo)
        .filter((n) => n !== undefined)
        .map((n) => ({ name: n.name, ips: n.ips })),
    };
  } catch (err) {
    const e = err as { code?: number; message?: string };
    throw new FlowtrailError(
      'ERR_KUBERNETES',
      `cannot list pods, namespaces and nodes from the Kubernetes API${e.code ? ` (HTTP ${e.code})` : ''}: ${(e.message ?? String(err)).split('\n')[0]}`,
      { code: e.code },
    );
  }
}
