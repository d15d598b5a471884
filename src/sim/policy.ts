/**
 * Network policy on the simulated node, written as iptables rules the way a
 * policy engine like Calico's Felix writes them: each decision is an NFLOG
 * rule carrying a prefix in the DESIGN.md convention (`API0|default.allow-x`,
 * `DPI|default.default-deny`), followed by ACCEPT or DROP. Rules live in one
 * chain of the node namespace, jumped to from FORWARD (pod ↔ pod, pod ↔ sink)
 * and INPUT (pod → host endpoint), after the node's established-traffic
 * ACCEPT, so they see each connection's first packet only.
 */
import type { SimNode } from './simnode.js';

export type Proto = 'tcp' | 'udp' | 'icmp';
export type Direction = 'ingress' | 'egress';

export interface RuleSpec {
  /** Source IP (a pod's or any address); omitted = any. */
  from?: string | { ip: string };
  to?: string | { ip: string };
  proto?: Proto;
  port?: number;
  /** tier.policy, e.g. default.allow-frontend. */
  name: string;
  direction?: Direction;
}

export interface RuleCounters {
  readonly prefix: string;
  readonly target: 'ACCEPT' | 'DROP';
  readonly packets: number;
  readonly bytes: number;
}

interface Rule {
  readonly prefix: string;
  readonly target: 'ACCEPT' | 'DROP';
}

const CHAIN = 'ft-policy';

function ipOf(x: string | { ip: string } | undefined): string | undefined {
  return typeof x === 'string' ? x : x?.ip;
}

export class Policy {
  private readonly rules: Rule[] = [];
  private defaultRule: Rule | undefined;
  private readonly indexByName = new Map<string, number>();

  constructor(
    private readonly node: SimNode,
    private readonly groups: { ingress: number; egress: number } = { ingress: 1, egress: 2 },
  ) {
    node.exec(['iptables', '-w', '-N', CHAIN]);
    node.exec(['iptables', '-w', '-A', 'FORWARD', '-j', CHAIN]);
    node.exec(['iptables', '-w', '-A', 'INPUT', '!', '-i', 'lo', '-j', CHAIN]);
  }

  allow(spec: RuleSpec): string {
    return this.add(spec, 'A', 'ACCEPT');
  }

  deny(spec: RuleSpec): string {
    return this.add(spec, 'D', 'DROP');
  }

  /** The tier's default deny, always last: `DPI|<name>` with no rule index. */
  defaultDeny(name = 'default.default-deny', direction: Direction = 'ingress'): string {
    if (this.defaultRule) return this.defaultRule.prefix;
    const prefix = `DP${direction === 'ingress' ? 'I' : 'E'}|${name}`;
    const group = direction === 'ingress' ? this.groups.ingress : this.groups.egress;
    this.node.exec([
      'iptables',
      '-w',
      '-A',
      CHAIN,
      '-j',
      'NFLOG',
      '--nflog-group',
      String(group),
      '--nflog-prefix',
      prefix,
    ]);
    this.node.exec(['iptables', '-w', '-A', CHAIN, '-j', 'DROP']);
    this.defaultRule = { prefix, target: 'DROP' };
    return prefix;
  }

  private add(spec: RuleSpec, action: 'A' | 'D', target: 'ACCEPT' | 'DROP'): string {
    const direction = spec.direction ?? 'ingress';
    const index = this.indexByName.get(spec.name) ?? 0;
    this.indexByName.set(spec.name, index + 1);
    const prefix = `${action}P${direction === 'ingress' ? 'I' : 'E'}${index}|${spec.name}`;
    const group = direction === 'ingress' ? this.groups.ingress : this.groups.egress;
    const match: string[] = [];
    const src = ipOf(spec.from);
    const dst = ipOf(spec.to);
    if (src) match.push('-s', `${src}/32`);
    if (dst) match.push('-d', `${dst}/32`);
    if (spec.proto) match.push('-p', spec.proto);
    if (spec.port !== undefined) {
      if (!spec.proto || spec.proto === 'icmp')
        throw new Error(`policy ${spec.name}: a port needs proto tcp or udp`);
      match.push('--dport', String(spec.port));
    }
    // Explicit rules go before the default deny (two iptables rules per decision).
    const position = String(this.rules.length * 2 + 1);
    this.node.exec(['iptables', '-w', '-I', CHAIN, position, ...match, '-j', target]);
    this.node.exec([
      'iptables',
      '-w',
      '-I',
      CHAIN,
      position,
      ...match,
      '-j',
      'NFLOG',
      '--nflog-group',
      String(group),
      '--nflog-prefix',
      prefix,
    ]);
    this.rules.push({ prefix, target });
    return prefix;
  }

  /** Exact packet/byte counters of every decision (the ACCEPT/DROP rule's own counters). */
  counters(): RuleCounters[] {
    const text = this.node.exec([
      'iptables',
      '-w',
      '-L',
      CHAIN,
      '-n',
      '-v',
      '-x',
      '--line-numbers',
    ]);
    const rows = new Map<number, { packets: number; bytes: number; target: string }>();
    for (const line of text.split('\n')) {
      const m = /^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\S+)/.exec(line);
      if (m) rows.set(Number(m[1]), { packets: Number(m[2]), bytes: Number(m[3]), target: m[4]! });
    }
    const all = [...this.rules, ...(this.defaultRule ? [this.defaultRule] : [])];
    return all.map((rule, i) => {
      const row = rows.get(i * 2 + 2);
      if (!row || row.target !== rule.target) {
        throw new Error(
          `policy counters: rule ${i * 2 + 2} of ${CHAIN} is not ${rule.target} for ${rule.prefix}`,
        );
      }
      return { prefix: rule.prefix, target: rule.target, packets: row.packets, bytes: row.bytes };
    });
  }

  /** Sum of DROP counters (all deny decisions, or those of one prefix/policy). */
  dropped(match?: string): { packets: number; bytes: number } {
    let packets = 0;
    let bytes = 0;
    for (const c of this.counters()) {
      if (c.target !== 'DROP') continue;
      if (match && c.prefix !== match && !c.prefix.endsWith(`|${match}`)) continue;
      packets += c.packets;
      bytes += c.bytes;
    }
    return { packets, bytes };
  }

  /** Removes every rule (the chain stays, empty, still jumped to). */
  clear(): void {
    this.node.exec(['iptables', '-w', '-F', CHAIN]);
    this.rules.length = 0;
    this.defaultRule = undefined;
    this.indexByName.clear();
  }
}
