/**
 * Endpoints from a YAML file (docs/architecture.md "Contracts"): for the
 * demo, tests and hosts without Kubernetes. Reloaded when the file changes; a
 * bad file keeps the last good state and logs what is wrong.
 */
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { parse } from 'yaml';
import { z } from 'zod';
import { FlowtrailError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import type { EndpointCache, NodeInfo, PodInfo } from './cache.js';

const labels = z.record(
  z.string(),
  z.union([z.string(), z.number(), z.boolean()]).transform(String),
);
const fileSchema = z.strictObject({
  /** Namespace labels, for NetworkPolicy namespaceSelectors (flowtrail advise / policy test). */
  namespaces: z
    .array(z.strictObject({ name: z.string().min(1), labels: labels.optional() }))
    .default([]),
  nodes: z
    .array(
      z.strictObject({
        name: z.string().min(1),
        ips: z.array(z.string().min(1)).default([]),
        labels: labels.optional(),
      }),
    )
    .default([]),
  pods: z
    .array(
      z.strictObject({
        namespace: z.string().min(1),
        name: z.string().min(1),
        uid: z.string().optional(),
        generateName: z.string().optional(),
        ip: z.string().min(1).optional(),
        ips: z.array(z.string().min(1)).optional(),
        node: z.string().optional(),
        labels: labels.optional(),
        hostNetwork: z.boolean().optional(),
        phase: z.string().optional(),
        ports: z
          .array(
            z.strictObject({
              name: z.string().min(1).optional(),
              containerPort: z.number().int().min(1).max(65535),
              protocol: z.enum(['TCP', 'UDP', 'SCTP']).optional(),
            }),
          )
          .optional(),
      }),
    )
    .default([]),
});

export function parseEndpointsFile(
  text: string,
  path: string,
): {
  pods: PodInfo[];
  nodes: NodeInfo[];
  namespaces: { name: string; labels: Record<string, string> }[];
} {
  let raw: unknown;
  try {
    raw = parse(text) ?? {};
  } catch (err) {
    throw new FlowtrailError(
      'ERR_ENDPOINTS_FILE',
      `${path}: invalid YAML: ${(err as Error).message.split('\n')[0]}`,
      { path },
    );
  }
  const result = fileSchema.safeParse(raw);
  if (!result.success) {
    const issues = result.error.issues.map((i) => {
      const where = i.path
        .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
        .join('')
        .replace(/^\./, '');
      return `${where || '(top)'}: ${i.code === 'unrecognized_keys' ? `unknown key(s) ${i.keys.join(', ')}` : i.message}`;
    });
    throw new FlowtrailError('ERR_ENDPOINTS_FILE', `${path}: ${issues.join('; ')}`, {
      path,
      issues,
    });
  }
  const pods: PodInfo[] = result.data.pods.map((p) => {
    const ips = p.ips ?? (p.ip ? [p.ip] : []);
    return {
      namespace: p.namespace,
      name: p.name,
      ...(p.uid ? { uid: p.uid } : {}),
      ...(p.generateName ? { generateName: p.generateName } : {}),
      ips,
      ...(p.node ? { nodeName: p.node } : {}),
      labels: p.labels ?? {},
      ...(p.hostNetwork ? { hostNetwork: true } : {}),
      ...(p.phase ? { phase: p.phase } : {}),
      ...(p.ports ? { ports: p.ports } : {}),
    };
  });
  const nodes: NodeInfo[] = result.data.nodes.map((n) => ({
    name: n.name,
    ips: n.ips,
    labels: n.labels ?? {},
  }));
  const namespaces = result.data.namespaces.map((n) => ({ name: n.name, labels: n.labels ?? {} }));
  return { pods, nodes, namespaces };
}

export interface FileSource {
  close(): Promise<void>;
  readonly reloads: number;
  readonly errors: number;
}

export async function startFileSource(opts: {
  path: string;
  cache: EndpointCache;
  logger: Logger;
  now?: () => number;
  pollMs?: number;
}): Promise<FileSource> {
  const now = opts.now ?? Date.now;
  let lastText: string | undefined;
  const state = { reloads: 0, errors: 0 };
  let lastBadText: string | undefined;
  const load = (initial: boolean) => {
    let text: string;
    try {
      text = readFileSync(opts.path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
      throw new FlowtrailError(
        'ERR_ENDPOINTS_FILE',
        `${opts.path}: cannot read the endpoints file (${code})`,
        {
          path: opts.path,
          errno: code,
        },
      );
    }
    // Unchanged, or the same bad content already reported.
    if (text === lastText || text === lastBadText) return;
    let snapshot: ReturnType<typeof parseEndpointsFile>;
    try {
      snapshot = parseEndpointsFile(text, opts.path);
    } catch (err) {
      lastBadText = text;
      throw err;
    }
    opts.cache.replaceAll(snapshot, now());
    lastText = text;
    state.reloads++;
    opts.cache.markSynced();
    opts.logger.info(
      { path: opts.path, pods: snapshot.pods.length, nodes: snapshot.nodes.length, initial },
      'endpoints loaded',
    );
  };
  load(true);
  const onChange = () => {
    try {
      load(false);
    } catch (err) {
      state.errors++;
      opts.logger.error(
        { err: (err as Error).message },
        'endpoints file not reloaded; keeping the last good state',
      );
    }
  };
  // Polling survives editors' atomic renames, which fs.watch loses track of.
  const pollMs = opts.pollMs ?? 1_000;
  watchFile(opts.path, { interval: pollMs, persistent: false }, onChange);
  // The poller's first stat is its baseline, taken asynchronously: a change
  // written between load() and that stat would go unseen until the next one.
  // One read after the first interval closes the gap (same text: no reload).
  const settle = setTimeout(onChange, pollMs * 2);
  settle.unref();
  return {
    get reloads() {
      return state.reloads;
    },
    get errors() {
      return state.errors;
    },
    async close() {
      clearTimeout(settle);
      unwatchFile(opts.path, onChange);
    },
  };
}
