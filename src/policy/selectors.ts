/**
 * Label selectors (metav1.LabelSelector): matchLabels and matchExpressions
 * are ANDed; an empty selector matches every set of labels. NotIn and
 * DoesNotExist match labels that lack the key.
 */
import type { LabelSelector, LabelSelectorRequirement, Labels } from './types.js';

export type LabelPredicate = (labels: Labels) => boolean;

const EVERYTHING: LabelPredicate = () => true;

function has(labels: Labels, key: string): boolean {
  return Object.hasOwn(labels, key);
}

function requirement(r: LabelSelectorRequirement): LabelPredicate {
  const values = new Set(r.values ?? []);
  const key = r.key;
  switch (r.operator) {
    case 'In':
      return (l) => has(l, key) && values.has(l[key]!);
    case 'NotIn':
      return (l) => !has(l, key) || !values.has(l[key]!);
    case 'Exists':
      return (l) => has(l, key);
    case 'DoesNotExist':
      return (l) => !has(l, key);
  }
}

/** The selector as a predicate, built once per policy rather than per evaluation. */
export function compileSelector(selector: LabelSelector): LabelPredicate {
  const parts: LabelPredicate[] = [];
  for (const [key, value] of Object.entries(selector.matchLabels ?? {}))
    parts.push((l) => has(l, key) && l[key] === value);
  for (const r of selector.matchExpressions ?? []) parts.push(requirement(r));
  if (parts.length === 0) return EVERYTHING;
  if (parts.length === 1) return parts[0]!;
  return (l) => {
    for (const p of parts) if (!p(l)) return false;
    return true;
  };
}

export function selectorMatches(selector: LabelSelector, labels: Labels): boolean {
  return compileSelector(selector)(labels);
}
