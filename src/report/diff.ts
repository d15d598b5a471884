/**
 * The what-if diff `flowtrail report --html --diff FILE` shows: which
 * recorded flows a proposed policy set would newly deny or newly allow
 * (written by `flowtrail policy test --json` / `flowtrail advise`, or by
 * hand). The file is one JSON object of this shape; fields not listed here
 * are ignored, so a writer may add its own.
 *
 * ```json
 * {
 *   "title": "flowtrail policy test --policies ./proposed",
 *   "newlyDenied": [
 *     { "srcNamespace": "client", "srcWorkload": "client",
 *       "dstNamespace": "stars", "dstWorkload": "frontend",
 *       "port": 80, "proto": "TCP", "count": 42,
 *       "policy": "stars/frontend" }
 *   ],
 *   "newlyAllowed": []
 * }
 * ```
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { FlowtrailError } from '../util/errors.js';
import { protoNumber } from './units.js';

/** One group of recorded flows whose verdict the proposal changes. */
export interface WhatIfFlow {
  /** The source's namespace; `-` for a host or an address outside the cluster. */
  readonly srcNamespace: string;
  /**
   * The source workload (Deployment, StatefulSet, DaemonSet… name). A pod
   * name or an aggregated name (`frontend-5d9b7c8f4-*`) is accepted and
   * shown as its workload. With namespace `-`: the host's name, or the
   * record's address class (`pub`, `pvt`, `aws`).
   */
  readonly srcWorkload: string;
  readonly dstNamespace: string;
  readonly dstWorkload: string;
  /** Destination port; null when the protocol has none (ICMP). */
  readonly port: number | null;
  /** IANA protocol number (6) or name (`TCP`, `UDP`, `ICMP`, `SCTP`…). */
  readonly proto: number | string;
  /** How many flows (numFlows summed over the window's records). */
  readonly count: number;
  /** The policy of the proposal that decides these flows, when known. */
  readonly policy?: string | undefined;
}

export interface WhatIfDiff {
  /** What was compared (shown as the section's subtitle). */
  readonly title?: string | undefined;
  /** Flows allowed in the records that the proposal would deny. */
  readonly newlyDenied: readonly WhatIfFlow[];
  /** Flows denied in the records that the proposal would allow. */
  readonly newlyAllowed: readonly WhatIfFlow[];
}

const name = z.string({ error: 'expected a string' }).min(1, { error: 'expected a name' });
const count = z
  .number({ error: 'expected a number' })
  .int({ error: 'expected an integer' })
  .min(0, { error: 'expected a count ≥ 0' });

const PROTO = 'expected an IANA protocol number 0-255 or a name (TCP, UDP, ICMP, SCTP…)';

const flowSchema = z.object({
  srcNamespace: name,
  srcWorkload: name,
  dstNamespace: name,
  dstWorkload: name,
  port: z
    .number({ error: 'expected a port 0-65535 or null' })
    .int({ error: 'expected a port 0-65535 or null' })
    .min(0, { error: 'expected a port 0-65535 or null' })
    .max(65535, { error: 'expected a port 0-65535 or null' })
    .nullable(),
  proto: z.union(
    [
      z.number().int({ error: PROTO }).min(0, { error: PROTO }).max(255, { error: PROTO }),
      z.string().refine((s) => protoNumber(s) !== undefined, { error: PROTO }),
    ],
    { error: PROTO },
  ),
  count,
  policy: z.string({ error: 'expected a string' }).optional(),
});

const diffSchema = z.object({
  title: z.string({ error: 'expected a string' }).optional(),
  newlyDenied: z.array(flowSchema, { error: 'expected a list of flows' }),
  newlyAllowed: z.array(flowSchema, { error: 'expected a list of flows' }),
});

// The schema and the documented type must not drift apart.
const _sameShape: z.ZodType<WhatIfDiff> = diffSchema;
void _sameShape;

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v = input;
  for (const k of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

function where(path: readonly PropertyKey[]): string {
  return path
    .map((k, i) => (typeof k === 'number' ? `[${k}]` : `${i > 0 ? '.' : ''}${String(k)}`))
    .join('');
}

/** Validates a parsed diff; the error names each bad field by its path and shows its value. */
export function parseWhatIfDiff(input: unknown, source = 'diff'): WhatIfDiff {
  const r = diffSchema.safeParse(input);
  if (r.success) return r.data;
  const issues = r.error.issues.slice(0, 5).map((i) => {
    const v = valueAt(input, i.path);
    const got = v === undefined ? 'missing' : `got ${JSON.stringify(v)}`;
    return `${where(i.path) || '(top level)'}: ${i.message}, ${got}`;
  });
  const more = r.error.issues.length > 5 ? `; and ${r.error.issues.length - 5} more` : '';
  throw new FlowtrailError('ERR_DIFF', `${source}: ${issues.join('; ')}${more}`, {
    source,
    issues,
  });
}

/** Reads and validates a diff file (JSON). */
export function readWhatIfDiff(path: string): WhatIfDiff {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new FlowtrailError('ERR_INPUT', `cannot read ${path} (${code})`, { path, code });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new FlowtrailError('ERR_DIFF', `${path}: not JSON (${(err as Error).message})`, {
      path,
    });
  }
  return parseWhatIfDiff(json, path);
}
