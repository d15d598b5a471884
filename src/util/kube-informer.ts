/**
 * What every list+watch source shares: the KubeConfig (given, a kubeconfig
 * file, or in-cluster / default), and an informer that restarts itself with
 * a delay when its watch fails, until the source is closed. (The informer
 * relists by itself on 410 Gone, emitting deletes for what vanished.)
 */
import { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from './log.js';

export function loadKubeConfig(opts: {
  kubeConfig?: KubeConfig;
  kubeconfig?: string | undefined;
}): KubeConfig {
  if (opts.kubeConfig) return opts.kubeConfig;
  const kc = new KubeConfig();
  if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
  else kc.loadFromDefault();
  return kc;
}

interface Restartable {
  on(verb: 'error', cb: (err?: unknown) => void): void;
  start(): Promise<void>;
}

/** Logs a failed watch and starts the informer again after `retryMs`, unless stopped. */
export function restartOnError(
  informer: Restartable,
  resource: string,
  logger: Logger,
  retryMs: number,
  stopped: () => boolean,
): void {
  informer.on('error', (err: unknown) => {
    if (stopped()) return;
    logger.warn(
      { resource, err: (err as Error)?.message ?? String(err) },
      'Kubernetes watch failed; restarting it',
    );
    setTimeout(() => {
      if (!stopped()) informer.start().catch(() => {});
    }, retryMs).unref();
  });
}
