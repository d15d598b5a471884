/**
 * The cluster's NetworkPolicies and namespaces as the informers last saw
 * them, for the evaluator. Pure: the Kubernetes source (or a test) feeds it;
 * evaluator() compiles the current state once and keeps it until the next
 * change. A policy the parser refuses is left out and remembered with its
 * error, so a caller can say which policy could not be judged.
 */
import { PolicyEvaluator } from './evaluate.js';
import { parseNetworkPolicy } from './parse.js';
import type { Labels, NetworkPolicy, PolicyNamespace, PolicyNode, PolicyPod } from './types.js';

interface ApiObject {
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
}

function keyOf(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export class PolicyStore {
  private readonly policies = new Map<string, NetworkPolicy>();
  private readonly namespaces = new Map<string, Labels>();
  private readonly refused = new Map<string, string>();
  private changes = 0;
  private compiled: { version: number; evaluator: PolicyEvaluator } | undefined;
  private syncedFlag = false;

  /** Bumped by every change. */
  get version(): number {
    return this.changes;
  }

  get synced(): boolean {
    return this.syncedFlag;
  }

  markSynced(): void {
    this.syncedFlag = true;
  }

  /** A NetworkPolicy object from the API (list item or watch event). */
  upsertPolicy(obj: unknown): void {
    const md = (obj as ApiObject)?.metadata;
    const key = keyOf(md?.namespace ?? 'default', md?.name ?? '?');
    this.changes++;
    try {
      this.policies.set(
        key,
        parseNetworkPolicy(obj, `networkpolicy ${key}`, 'default', { fromApi: true }),
      );
      this.refused.delete(key);
    } catch (err) {
      this.policies.delete(key);
      this.refused.set(key, (err as Error).message);
    }
  }

  deletePolicy(obj: unknown): void {
    const md = (obj as ApiObject)?.metadata;
    const key = keyOf(md?.namespace ?? 'default', md?.name ?? '?');
    this.changes++;
    this.policies.delete(key);
    this.refused.delete(key);
  }

  upsertNamespace(obj: unknown): void {
    const md = (obj as ApiObject)?.metadata;
    if (!md?.name) return;
    this.changes++;
    this.namespaces.set(md.name, { ...(md.labels ?? {}) });
  }

  deleteNamespace(obj: unknown): void {
    const name = (obj as ApiObject)?.metadata?.name;
    if (!name) return;
    this.changes++;
    this.namespaces.delete(name);
  }

  /** Replaces everything (a first list). */
  replaceAll(snapshot: { policies: readonly unknown[]; namespaces: readonly unknown[] }): void {
    this.policies.clear();
    this.refused.clear();
    this.namespaces.clear();
    for (const p of snapshot.policies) this.upsertPolicy(p);
    for (const n of snapshot.namespaces) this.upsertNamespace(n);
    this.changes++;
  }

  list(): NetworkPolicy[] {
    return [...this.policies.values()];
  }

  namespaceList(): PolicyNamespace[] {
    return [...this.namespaces].map(([name, labels]) => ({ name, labels }));
  }

  /** Policies that could not be read, with why (`namespace/name` → message). */
  refusedPolicies(): ReadonlyMap<string, string> {
    return this.refused;
  }

  /**
   * An evaluator over the current policies and namespaces. Without pods it
   * is compiled once per change of the store, and flows name their ends as
   * PolicyPod objects (EndpointCache.policyPod) or addresses that are no
   * pod; with pods, addresses are looked up among them.
   */
  evaluator(
    extra: { pods?: readonly PolicyPod[]; nodes?: readonly PolicyNode[] } = {},
  ): PolicyEvaluator {
    const build = () =>
      new PolicyEvaluator({
        namespaces: this.namespaceList(),
        pods: extra.pods ?? [],
        nodes: extra.nodes ?? [],
        policies: this.list(),
      });
    if (extra.pods || extra.nodes) return build();
    if (this.compiled?.version !== this.changes)
      this.compiled = { version: this.changes, evaluator: build() };
    return this.compiled.evaluator;
  }
}
