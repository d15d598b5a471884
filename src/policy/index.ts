/**
 * Kubernetes NetworkPolicy (networking.k8s.io/v1), evaluated in TypeScript.
 *
 * Naming the policy that denied a packet the data plane dropped without
 * saying why (kernel drop events, issue #20):
 *
 * ```ts
 * const store = new PolicyStore();                 // fed by startPolicySource (informers)
 * const evaluator = store.evaluator();             // recompiled only when policies/namespaces change
 * // Each end: the pod that had the address then (cache.policyPod: labels, container ports,
 * // node), or the bare address when it was no pod.
 * const end = (ip: string) => cache.policyPod(ip, packetTimeMs) ?? ip;
 * const v = evaluator.evaluate({ src: end(srcIp), dst: end(dstIp), proto: 6, dport: 6379 });
 * if (!v.allowed) {
 *   v.egress.allowed;   // false: the source's egress refused; v.egress.isolatedBy names the
 *                       //   policies that isolate the source for egress
 *   v.ingress.allowed;  // false: the destination's ingress refused; v.ingress.isolatedBy
 *   decidingPrefixes(v);  // ['DPI|stars.default-deny']: one per isolating policy of each
 *                         //   refusing side, egress first (rule-prefix convention)
 *   decidingPolicies(v);  // ['stars.default-deny']: the records' policies field
 * }
 * ```
 * For the own-node exception pass the nodes: store.evaluator({ nodes: cache.policyNodes() })
 * (compiled per call then: keep it while the cache's version stays the same).
 * `v.allowed` true for a dropped packet means the policies allow it: the
 * drop was not NetworkPolicy's (or the evaluator's view of the cluster is
 * stale); name no policy then.
 */
export {
  type Direction,
  effectivePolicyTypes,
  evaluateFlow,
  type Flow,
  type FlowEnd,
  type FlowVerdict,
  NAMESPACE_NAME_LABEL,
  PolicyEvaluator,
  type PolicyRef,
  type RuleRef,
  type SideReason,
  type SideVerdict,
} from './evaluate.js';
export { type PolicySource, startPolicySource } from './kubernetes-source.js';
export {
  allowPrefix,
  decidingPolicies,
  decidingPrefixes,
  denyPrefix,
  parsePolicyName,
  policyName,
} from './naming.js';
export { PolicyParseError, parseNetworkPolicy, parsePolicyYaml } from './parse.js';
export { PolicyStore } from './store.js';
export type * from './types.js';
