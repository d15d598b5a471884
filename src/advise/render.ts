/**
 * A proposal as YAML ready for `kubectl apply`, one text per namespace, a
 * comment above every rule saying which flows and how many justified it
 * (and what to review); and as JSON for tools.
 */
import { Document, type YAMLMap, type YAMLSeq } from 'yaml';
import { type PolicyDiff, whatIf } from './diff.js';
import type { Proposal, ProposedPolicy, ProposedRule } from './propose.js';

const SHOWN_FLOWS = 6;

function ruleComment(r: ProposedRule): string {
  const j = r.justification;
  const lines =
    j.records === 0
      ? [...j.flows]
      : [
          `${r.peer}: ${j.flows.length} flow${j.flows.length === 1 ? '' : 's'}, ${j.records} record${j.records === 1 ? '' : 's'}, ${j.connections} connection${j.connections === 1 ? '' : 's'}`,
          ...j.flows.slice(0, SHOWN_FLOWS).map((f) => `  ${f}`),
          ...(j.flows.length > SHOWN_FLOWS ? [`  … and ${j.flows.length - SHOWN_FLOWS} more`] : []),
        ];
  if (r.review) lines.push(`REVIEW: ${r.review}`);
  return lines.map((l) => ` ${l}`).join('\n');
}

export function policyDocument(p: ProposedPolicy): Document {
  const doc = new Document({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: {
      name: p.policy.name,
      namespace: p.policy.namespace,
      labels: { 'app.kubernetes.io/managed-by': 'flowtrail' },
    },
    spec: p.policy.spec,
  });
  doc.commentBefore = ` workload ${p.workload}: isolated for ingress and egress; allows what was observed`;
  for (const r of p.rules) {
    const seq = doc.getIn(['spec', r.direction], true) as YAMLSeq<YAMLMap> | undefined;
    const item = seq?.items[r.index];
    if (item) item.commentBefore = ruleComment(r);
  }
  return doc;
}

/** namespace → YAML text (documents separated by ---). */
export function renderYaml(proposal: Proposal, header: string): Map<string, string> {
  const out = new Map<string, string>();
  const byNs = new Map<string, ProposedPolicy[]>();
  for (const p of proposal.policies)
    byNs.set(p.policy.namespace, [...(byNs.get(p.policy.namespace) ?? []), p]);
  for (const [ns, list] of byNs) {
    const head = header
      .split('\n')
      .map((l) => `# ${l}`.trimEnd())
      .join('\n');
    out.set(ns, `${head}\n${list.map((p) => String(policyDocument(p))).join('---\n')}`);
  }
  return out;
}

/** The JSON `advise --json` prints. */
export function adviseJson(proposal: Proposal, replay: PolicyDiff, extra: Record<string, unknown>) {
  return {
    // title, newlyDenied, newlyAllowed: the replay's disagreements as `report --html --diff FILE` reads them.
    ...whatIf(replay, 'flowtrail advise: the replay of the proposal'),
    ...extra,
    policies: proposal.policies.map((p) => ({
      workload: p.workload,
      policy: {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: p.policy.name, namespace: p.policy.namespace },
        spec: p.policy.spec,
      },
      rules: p.rules,
    })),
    notes: proposal.notes,
    replay: {
      agrees: replay.summary.newlyAllowed === 0 && replay.summary.newlyDenied === 0,
      ...replay.summary,
      disagreements: replay.rows.filter((r) => r.change !== 'unchanged'),
    },
  };
}
