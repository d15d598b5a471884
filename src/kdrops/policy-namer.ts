/**
 * Names the Kubernetes NetworkPolicy behind a kernel drop (issue #20 item
 * 3): the data plane (VPC CNI agent, Cilium, a DROP rule) says only that it
 * dropped. The evaluator (src/policy/) judges the dropped packet against the
 * cluster's policies as the informers (or a file) last saw them; when it
 * refuses the packet, the policies that isolate the refusing end are named,
 * `<namespace>.<policy>` as in the rule-prefix convention, and that end
 * reports: the destination for an ingress refusal, the source for egress.
 * When both ends refuse, the end the hook points at (the preferred reporter)
 * wins. When the policies allow the packet, the drop was not
 * NetworkPolicy's (or the view is stale): no name.
 */
import { readFileSync } from 'node:fs';
import { parseEndpointsFile } from '../endpoints/file-source.js';
import type { DenyPolicyNamer, DropQuery } from '../flows/kernel-denies.js';
import type { PolicyEvaluator } from '../policy/index.js';
import { PolicyStore, parsePolicyYaml, policyName } from '../policy/index.js';
import type { PolicyNode, PolicyPod } from '../policy/types.js';
import { hasPorts } from '../util/ip-proto.js';
import type { Reporter } from './reasons.js';

/** What the namer needs of the endpoint cache. */
export interface PolicyEndpoints {
  policyPod(ip: string, timeMs: number): PolicyPod | undefined;
  policyNodes(): PolicyNode[];
  readonly version?: number;
}

export class NetworkPolicyNamer implements DenyPolicyNamer {
  private compiled:
    | { store: number; cache: number | undefined; evaluator: PolicyEvaluator }
    | undefined;
  /** Drops the policies allowed (not NetworkPolicy's, or a stale view). */
  notPolicy = 0;

  constructor(
    private readonly store: PolicyStore,
    private readonly endpoints: PolicyEndpoints,
  ) {}

  private evaluator(): PolicyEvaluator {
    const c = this.compiled;
    if (
      c?.store === this.store.version &&
      c.cache === this.endpoints.version &&
      c.cache !== undefined
    )
      return c.evaluator;
    // Compiled with the nodes (own-node exception) once per change of either side.
    const evaluator = this.store.evaluator({ nodes: this.endpoints.policyNodes() });
    this.compiled = { store: this.store.version, cache: this.endpoints.version, evaluator };
    return evaluator;
  }

  name(q: DropQuery, timeMs: number): { policy: string; reporter: Reporter } | undefined {
    if (!this.store.synced) return undefined;
    const v = this.evaluator().evaluate({
      src: this.endpoints.policyPod(q.srcIP, timeMs) ?? q.srcIP,
      dst: this.endpoints.policyPod(q.dstIP, timeMs) ?? q.dstIP,
      proto: q.proto,
      dport: hasPorts(q.proto) ? q.dport : undefined,
    });
    if (v.allowed) {
      this.notPolicy++;
      return undefined;
    }
    const refused: Reporter[] = [];
    if (!v.ingress.allowed) refused.push('dst');
    if (!v.egress.allowed) refused.push('src');
    const reporter = refused.includes(q.reporter) ? q.reporter : refused[0]!;
    const side = reporter === 'dst' ? v.ingress : v.egress;
    const names = side.isolatedBy.map(policyName);
    return names.length === 0 ? undefined : { policy: names.join('|'), reporter };
  }
}

/**
 * NetworkPolicies from a YAML file (manifests, `kind: List`), with the
 * namespaces' labels from the endpoints file: the file-based counterpart of
 * the informers, for hosts without an API server, the demo and tests.
 */
export function policyStoreFromFiles(
  policiesPath: string,
  endpointsPath: string | undefined,
): PolicyStore {
  const store = new PolicyStore();
  const { policies } = parsePolicyYaml(readFileSync(policiesPath, 'utf8'), policiesPath);
  const namespaces = endpointsPath
    ? parseEndpointsFile(readFileSync(endpointsPath, 'utf8'), endpointsPath).namespaces
    : [];
  store.replaceAll({
    policies: policies.map((p) => ({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { namespace: p.namespace, name: p.name },
      spec: p.spec,
    })),
    namespaces: namespaces.map((n) => ({ metadata: { name: n.name, labels: n.labels } })),
  });
  store.markSynced();
  return store;
}
