/**
 * Kubernetes NetworkPolicy (networking.k8s.io/v1), evaluated in TypeScript.
 *
 * Naming the policy that denied a packet the data plane dropped without
 * saying why (kernel drop events, issue #20):
 *
 * ```ts
 * const evaluator = new PolicyEvaluator(clusterState);  // compile once per cluster state
 * // Each end: an address (looked up among clusterState.pods) or a PolicyPod.
 * const v = evaluator.evaluate({ src: '10.244.1.12', dst: '10.244.1.11', proto: 6, dport: 6379 });
 * if (!v.allowed) {
 *   v.egress.allowed;   // false: the source's egress refused; v.egress.isolatedBy names the
 *                       //   policies that isolate the source for egress
 *   v.ingress.allowed;  // false: the destination's ingress refused; v.ingress.isolatedBy
 *   decidingPrefixes(v);  // ['DPI|stars.default-deny']: one per isolating policy of each
 *                         //   refusing side, egress first (rule-prefix convention)
 *   decidingPolicies(v);  // ['stars.default-deny']: the records' policies field
 * }
 * ```
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
export {
  allowPrefix,
  decidingPolicies,
  decidingPrefixes,
  denyPrefix,
  parsePolicyName,
  policyName,
} from './naming.js';
export { PolicyParseError, parseNetworkPolicy, parsePolicyYaml } from './parse.js';
export type * from './types.js';
