/** What a set of NetworkPolicies allows among the stars scenario's pods and its internet address. */
import { INTERNET_IP, STARS_PODS, TALKS } from '../../src/demo/stars.js';
import { PolicyEvaluator } from '../../src/policy/evaluate.js';
import type { NetworkPolicy, PolicyPod } from '../../src/policy/types.js';

export const STARS_POLICY_PODS: PolicyPod[] = STARS_PODS.map((p) => ({
  namespace: p.namespace,
  name: p.name,
  labels: p.labels!,
  ips: [p.ip],
}));

/** Address → the stars key (`frontend` …, `internet`). */
export const STARS_KEY_OF_IP = new Map([
  ...STARS_PODS.map((p) => [p.ip, p.key] as const),
  [INTERNET_IP, 'internet'] as const,
]);

/** The talks the scenario allows, as `from>to:port`, sorted. */
export const STARS_ALLOW_LIST = TALKS.filter((t) => t.allowedBy)
  .map((t) => `${t.from}>${t.to}:${t.port}`)
  .sort();

/** Every `from>to:port` (TCP, a few ports) the policies allow between two different ends. */
export function starsAllowedSet(policies: readonly NetworkPolicy[]): string[] {
  const ev = new PolicyEvaluator({ namespaces: [], pods: STARS_POLICY_PODS, policies });
  const out: string[] = [];
  for (const [fromIp, from] of STARS_KEY_OF_IP)
    for (const [toIp, to] of STARS_KEY_OF_IP)
      for (const port of [22, 80, 443, 6379, 9001])
        if (from !== to && ev.evaluate({ src: fromIp, dst: toIp, proto: 6, dport: port }).allowed)
          out.push(`${from}>${to}:${port}`);
  return out.sort();
}
