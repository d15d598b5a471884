/**
 * How a Kubernetes NetworkPolicy is named in records, in the rule-prefix
 * convention of docs/architecture.md ("Rule prefixes"): the policy name is
 * `<namespace>.<policy>` (a namespace name has no dots, so the first dot
 * splits it; the policy name may have dots), the owner is P, the rule index
 * is the rule's position in the policy's `ingress` or `egress` list, and a
 * deny has no index: no rule denies, the policy's isolation does (like a
 * tier's default deny). Examples: `API0|stars.backend-policy` (ingress rule
 * 0 allowed), `DPE|client.default-deny` (client isolated for egress, nothing
 * allowed it).
 */
import type { Direction, FlowVerdict, PolicyRef, RuleRef, SideVerdict } from './evaluate.js';

/** `<namespace>.<policy>`, the name part of a rule prefix and of the records' policies field. */
export function policyName(ref: PolicyRef): string {
  return `${ref.namespace}.${ref.name}`;
}

/** The reverse of policyName; undefined when there is no dot to split at. */
export function parsePolicyName(name: string): PolicyRef | undefined {
  const dot = name.indexOf('.');
  if (dot <= 0 || dot === name.length - 1) return undefined;
  return { namespace: name.slice(0, dot), name: name.slice(dot + 1) };
}

const D: Record<Direction, string> = { ingress: 'I', egress: 'E' };

/** `AP<I|E><rule>|<namespace>.<policy>` */
export function allowPrefix(direction: Direction, rule: RuleRef): string {
  return `AP${D[direction]}${rule.rule}|${policyName(rule)}`;
}

/** `DP<I|E>|<namespace>.<policy>` */
export function denyPrefix(direction: Direction, policy: PolicyRef): string {
  return `DP${D[direction]}|${policyName(policy)}`;
}

function sidePrefixes(side: SideVerdict): string[] {
  if (!side.allowed) return side.isolatedBy.map((p) => denyPrefix(side.direction, p));
  return side.allowedBy.map((r) => allowPrefix(side.direction, r));
}

/**
 * The prefixes that decided a verdict: for a denied connection, one deny
 * prefix per policy isolating the side that refused it (egress at the
 * source first, then ingress at the destination); for an allowed one, the
 * allowing rules of both sides. Empty when no policy was involved.
 */
export function decidingPrefixes(verdict: FlowVerdict): string[] {
  if (verdict.allowed) return [...sidePrefixes(verdict.egress), ...sidePrefixes(verdict.ingress)];
  return [
    ...(verdict.egress.allowed ? [] : sidePrefixes(verdict.egress)),
    ...(verdict.ingress.allowed ? [] : sidePrefixes(verdict.ingress)),
  ];
}

/** The policies that decided a verdict, named `<namespace>.<policy>`, without repeats. */
export function decidingPolicies(verdict: FlowVerdict): string[] {
  return [...new Set(decidingPrefixes(verdict).map((p) => p.slice(p.indexOf('|') + 1)))];
}
