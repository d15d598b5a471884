/**
 * The policy dataplane: are there NFLOG rules logging to the configured
 * groups (iptables, ip6tables or native nftables), and do their prefixes
 * follow the convention flowtrail parses into verdicts? Without such rules
 * denied traffic is invisible, whatever the agent does.
 */
import { execFileSync } from 'node:child_process';
import { parseRulePrefix } from '../nflog/prefix.js';
import { type CheckResult, fail, ok, warn } from './types.js';

export interface NflogRule {
  readonly source: 'iptables' | 'ip6tables' | 'nftables';
  readonly group: number;
  readonly prefix: string;
}

/** NFLOG targets in `iptables-save` output. */
export function parseIptablesSave(text: string, source: 'iptables' | 'ip6tables'): NflogRule[] {
  const out: NflogRule[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('-A ') || !/-j NFLOG\b/.test(line)) continue;
    const group = Number(/--nflog-group (\d+)/.exec(line)?.[1] ?? 0);
    const p = /--nflog-prefix\s+(?:"((?:[^"\\]|\\.)*)"|(\S+))/.exec(line);
    out.push({ source, group, prefix: p ? (p[1] ?? p[2] ?? '') : '' });
  }
  return out;
}

/** `log … group N` statements in `nft list ruleset` output (native nftables rules). */
export function parseNftRuleset(text: string): NflogRule[] {
  const out: NflogRule[] = [];
  for (const line of text.split('\n')) {
    const m = /\blog\b(?:.*?\bprefix "((?:[^"\\]|\\.)*)")?.*?\bgroup (\d+)/.exec(line);
    if (m) out.push({ source: 'nftables', group: Number(m[2]), prefix: m[1] ?? '' });
  }
  return out;
}

function tryRun(argv: string[]): { text: string } | { missing: true } | { error: string } {
  try {
    return {
      text: execFileSync(argv[0]!, argv.slice(1), {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        maxBuffer: 256 * 1024 * 1024,
      }),
    };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') return { missing: true };
    return { error: `${argv[0]}: ${(e.stderr ?? e.message).trim().split('\n')[0]}` };
  }
}

/** Every NFLOG rule the node has, and notes about tools that could not be asked. */
export function collectNflogRules(): { rules: NflogRule[]; notes: string[] } {
  const rules: NflogRule[] = [];
  const notes: string[] = [];
  for (const [tool, source] of [
    ['iptables-save', 'iptables'],
    ['ip6tables-save', 'ip6tables'],
  ] as const) {
    const r = tryRun([tool]);
    if ('text' in r) rules.push(...parseIptablesSave(r.text, source));
    else notes.push('missing' in r ? `${tool} is not installed` : r.error);
  }
  const n = tryRun(['nft', 'list', 'ruleset']);
  if ('text' in n) rules.push(...parseNftRuleset(n.text));
  else notes.push('missing' in n ? 'nft is not installed' : n.error);
  return { rules, notes };
}

export function checkNflogRules(
  groups: readonly number[],
  found: { rules: readonly NflogRule[]; notes: readonly string[] },
): CheckResult[] {
  const title = `NFLOG rules logging to groups ${groups.join(', ')}`;
  const mine = found.rules.filter((r) => groups.includes(r.group));
  const noted = found.notes.length > 0 ? ` (${found.notes.join('; ')})` : '';
  if (mine.length === 0) {
    const elsewhere = [...new Set(found.rules.map((r) => r.group))];
    return [
      fail(
        'policy.nflog-rules',
        title,
        `no NFLOG rule logs to these groups${elsewhere.length ? `; rules log to group(s) ${elsewhere.join(', ')}` : ''}${noted}: denied traffic will not be seen`,
        elsewhere.length
          ? `set nflog.ingressGroup / nflog.egressGroup to the groups the rules use (${elsewhere.join(', ')})`
          : 'the policy engine does not log through NFLOG (an eBPF dataplane such as Cilium or the VPC CNI network policy agent, or policy logging turned off): enable NFLOG logging of policy verdicts (Calico: flow logs / log actions) or expect allowed traffic only',
      ),
    ];
  }
  const counts = groups.map((g) => `group ${g}: ${mine.filter((r) => r.group === g).length}`);
  const out = [
    ok('policy.nflog-rules', title, `${mine.length} rules (${counts.join(', ')})${noted}`),
  ];
  const bad = [...new Set(mine.map((r) => r.prefix))].filter(
    (p) => parseRulePrefix(p) === undefined,
  );
  out.push(
    bad.length === 0
      ? ok(
          'policy.prefixes',
          'NFLOG rule prefixes parse into verdicts',
          `${new Set(mine.map((r) => r.prefix)).size} distinct prefixes, all parse`,
        )
      : warn(
          'policy.prefixes',
          'NFLOG rule prefixes parse into verdicts',
          `${bad.length} prefixes do not follow the AODIII|tier.policy convention: ${bad
            .slice(0, 5)
            .map((p) => JSON.stringify(p))
            .join(', ')}`,
          'their packets are counted but without action and policy name (docs/format.md, "Rule prefixes")',
        ),
  );
  return out;
}
