/**
 * Recorded flows judged by a set of NetworkPolicies, against what the
 * records say: the replay of `advise` (expected: each flow's latest verdict)
 * and `policy test` (expected: each record's own verdict). The result is
 * plain JSON-able data (PolicyDiff), also for other views (the HTML map).
 */
import { PolicyEvaluator } from '../policy/evaluate.js';
import { decidingPolicies } from '../policy/naming.js';
import { protocolName } from '../policy/ports.js';
import type { NetworkPolicy, PolicyNamespace, PolicyNode } from '../policy/types.js';
import type { WhatIfDiff, WhatIfFlow } from '../report/diff.js';
import { type End, endLabel, evaluatorEnd } from './identity.js';
import type { Observed } from './observe.js';

export type Verdict = 'allow' | 'deny';
export type Change = 'unchanged' | 'newly-denied' | 'newly-allowed';

export interface DiffRow {
  /** `namespace/workload`, `net/pub 203.0.113.10`, `host/node-1`. */
  readonly src: string;
  readonly dst: string;
  /** Namespaces of pod ends ('-' otherwise), for grouping by namespace. */
  readonly srcNamespace: string;
  readonly dstNamespace: string;
  /** The workload; for an end that is no pod, the node's name or the address class (pub, pvt, aws). */
  readonly srcWorkload: string;
  readonly dstWorkload: string;
  readonly protocol: string;
  readonly port: number;
  readonly observed: Verdict;
  readonly proposed: Verdict;
  readonly change: Change;
  records: number;
  connections: number;
  packets: number;
  bytes: number;
  /** The policies that decided under the proposed set, `<namespace>.<policy>`. */
  readonly policies: string[];
}

export interface PolicyDiff {
  /** Changed rows first (newly denied, then newly allowed), then by bytes. */
  readonly rows: DiffRow[];
  readonly summary: {
    readonly records: number;
    readonly flows: number;
    readonly unchanged: number;
    readonly newlyDenied: number;
    readonly newlyAllowed: number;
    /** Records whose verdict a later record of the same flow overturned (replay only). */
    readonly superseded: number;
    readonly skipped: Record<string, number>;
  };
}

function workloadName(e: End): string {
  return e.kind === 'pod' ? e.workload : e.name.slice(e.name.indexOf('/') + 1);
}

/**
 * The changed flows in the shape `flowtrail report --html --diff FILE` reads
 * (src/report/diff.ts), so `policy test --json > diff.json` feeds the map.
 */
export function whatIf(diff: PolicyDiff, title: string): WhatIfDiff {
  const flows = (change: Change): WhatIfFlow[] =>
    diff.rows
      .filter((r) => r.change === change)
      .map((r) => ({
        srcNamespace: r.srcNamespace,
        srcWorkload: r.srcWorkload,
        dstNamespace: r.dstNamespace,
        dstWorkload: r.dstWorkload,
        port: r.port,
        proto: r.protocol,
        count: r.connections,
        ...(r.policies.length > 0 ? { policy: r.policies.join(' ') } : {}),
      }));
  return { title, newlyDenied: flows('newly-denied'), newlyAllowed: flows('newly-allowed') };
}

const ORDER: Record<Change, number> = { 'newly-denied': 0, 'newly-allowed': 1, unchanged: 2 };

export function diffFlows(
  observed: Observed,
  cluster: {
    policies: readonly NetworkPolicy[];
    namespaces: readonly PolicyNamespace[];
    nodes: readonly PolicyNode[];
  },
  expected: 'latest' | 'record',
): PolicyDiff {
  const ev = new PolicyEvaluator({ ...cluster, pods: [] });
  const rows = new Map<string, DiffRow>();
  let superseded = 0;
  const flows = new Set<string>();
  for (const { record, flow, src, dst } of observed.records) {
    const want: Verdict = expected === 'latest' ? flow.latest : record.action;
    if (expected === 'latest' && record.action !== flow.latest) superseded++;
    const v = ev.evaluate({
      src: evaluatorEnd(src),
      dst: evaluatorEnd(dst),
      proto: flow.proto,
      dport: flow.port,
    });
    const got: Verdict = v.allowed ? 'allow' : 'deny';
    const change: Change =
      want === got ? 'unchanged' : got === 'deny' ? 'newly-denied' : 'newly-allowed';
    const policies = decidingPolicies(v);
    const key = `${flow.key}|${want}|${got}|${policies.join(',')}`;
    flows.add(`${flow.key}|${want}`);
    let row = rows.get(key);
    if (!row) {
      row = {
        src: endLabel(src),
        dst: endLabel(dst),
        srcNamespace: src.kind === 'pod' ? src.namespace : '-',
        dstNamespace: dst.kind === 'pod' ? dst.namespace : '-',
        srcWorkload: workloadName(src),
        dstWorkload: workloadName(dst),
        protocol: protocolName(flow.proto)!,
        port: flow.port,
        observed: want,
        proposed: got,
        change,
        records: 0,
        connections: 0,
        packets: 0,
        bytes: 0,
        policies,
      };
      rows.set(key, row);
    }
    row.records++;
    row.connections += record.numFlows;
    row.packets += record.packetsIn + record.packetsOut;
    row.bytes += record.bytesIn + record.bytesOut;
  }
  const all = [...rows.values()].sort(
    (a, b) =>
      ORDER[a.change] - ORDER[b.change] ||
      b.bytes - a.bytes ||
      (a.src + a.dst < b.src + b.dst ? -1 : 1),
  );
  const count = (c: Change) => all.filter((r) => r.change === c).reduce((n, r) => n + r.records, 0);
  return {
    rows: all,
    summary: {
      records: observed.records.length,
      flows: flows.size,
      unchanged: count('unchanged'),
      newlyDenied: count('newly-denied'),
      newlyAllowed: count('newly-allowed'),
      superseded,
      skipped: observed.skipped,
    },
  };
}
