/**
 * NFLOG rule prefixes in the Felix convention (docs/architecture.md, "Rule
 * prefixes"): `AODIII|tier.policy`, where A is the action (A allow, D deny,
 * P pass), O the owner (P policy, R profile), D the direction (I ingress,
 * E egress), III an optional decimal rule index (absent for a tier's or
 * profile's default action), then `|` and the policy name.
 * Examples: `API0|default.allow-frontend`, `APE12|security.egress-dns`,
 * `DPI|default.default-deny`.
 */
import type { RuleAction, RuleDirection, RuleOwner, RuleVerdict } from './types.js';

const ACTIONS: Record<string, RuleAction> = { A: 'allow', D: 'deny', P: 'pass' };
const OWNERS: Record<string, RuleOwner> = { P: 'policy', R: 'profile' };
const DIRECTIONS: Record<string, RuleDirection> = { I: 'ingress', E: 'egress' };

const cache = new Map<string, RuleVerdict | undefined>();
const CACHE_LIMIT = 10_000;

function parse(prefix: string): RuleVerdict | undefined {
  const bar = prefix.indexOf('|');
  if (bar < 3) return undefined;
  const action = ACTIONS[prefix[0]!];
  const owner = OWNERS[prefix[1]!];
  const direction = DIRECTIONS[prefix[2]!];
  if (!action || !owner || !direction) return undefined;
  const digits = prefix.slice(3, bar);
  if (digits !== '' && !/^\d{1,9}$/.test(digits)) return undefined;
  const policyName = prefix.slice(bar + 1);
  if (policyName === '' || /[\s|]/.test(policyName)) return undefined;
  return {
    action,
    owner,
    direction,
    ruleIndex: digits === '' ? undefined : Number(digits),
    policyName,
    prefix,
  };
}

/** The verdict a prefix encodes, or undefined when it does not follow the convention. */
export function parseRulePrefix(prefix: string): RuleVerdict | undefined {
  // Rule sets are small and prefixes repeat on every packet: memoise.
  if (cache.has(prefix)) return cache.get(prefix);
  const verdict = parse(prefix);
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(prefix, verdict);
  return verdict;
}
