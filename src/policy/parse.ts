/**
 * NetworkPolicy objects (networking.k8s.io/v1) from YAML files, JSON or the
 * API, validated as the API server validates them, so that the evaluator
 * never sees a policy Kubernetes would refuse. Errors name the file, the
 * document, the field path and the value.
 */
import { BlockList, isIP } from 'node:net';
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { FlowtrailError } from '../util/errors.js';
import { splitCidr } from './peers.js';
import type { NetworkPolicy } from './types.js';

export class PolicyParseError extends FlowtrailError {
  constructor(where: string, issues: readonly string[]) {
    super('ERR_POLICY', `${where}: ${issues.join('; ')}`, { where, issues });
  }
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
/** IANA_SVC_NAME: at most 15 lowercase letters, digits and '-', with a letter, no '--', no '-' at the ends. */
const SVC_NAME = /^(?=.*[a-z])(?!.*--)[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$/;

function cidrProblem(text: string): string | undefined {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(address);
  const bits = family === 4 ? 32 : 128;
  if (slash < 0 || family === 0 || !/^\d{1,3}$/.test(text.slice(slash + 1)))
    return `expected a CIDR such as 10.0.0.0/24 or 2001:db8::/64, got ${JSON.stringify(text)}`;
  const prefix = Number(text.slice(slash + 1));
  if (prefix > bits)
    return `prefix /${prefix} is longer than ${bits} bits in ${JSON.stringify(text)}`;
  return undefined;
}

/**
 * Whether `inner` lies strictly inside `outer` (both valid CIDRs): aligned
 * blocks either nest or are disjoint, so a longer prefix whose address is in
 * `outer` is inside it.
 */
function strictSubset(inner: string, outer: string): boolean {
  const i = splitCidr(inner);
  const o = splitCidr(outer);
  if (i.family !== o.family || i.prefix <= o.prefix) return false;
  const list = new BlockList();
  list.addSubnet(o.address, o.prefix, o.family);
  return list.check(i.address, i.family);
}

/**
 * The schema; strict (unknown fields refused) for files people write, where
 * a misspelt field would silently change a policy; lenient for objects from
 * the API server, which already validated them and may be newer than us.
 */
function schema(strict: boolean) {
  const O = strict ? z.strictObject : z.object;
  const labelMap = z.record(
    z.string().min(1),
    z.string({ error: 'expected a string label value' }),
  );

  const requirement = O({
    key: z.string().min(1, 'expected a label key'),
    operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist'], {
      error: (i) => `expected In, NotIn, Exists or DoesNotExist, got ${JSON.stringify(i.input)}`,
    }),
    values: z.array(z.string()).nullish(),
  })
    .superRefine((r, ctx) => {
      const n = r.values?.length ?? 0;
      if ((r.operator === 'In' || r.operator === 'NotIn') && n === 0)
        ctx.addIssue({
          code: 'custom',
          path: ['values'],
          message: `must be non-empty for ${r.operator}`,
        });
      if ((r.operator === 'Exists' || r.operator === 'DoesNotExist') && n > 0)
        ctx.addIssue({
          code: 'custom',
          path: ['values'],
          message: `must be empty for ${r.operator}`,
        });
    })
    .transform((r) => ({
      key: r.key,
      operator: r.operator,
      ...(r.values && r.values.length > 0 ? { values: r.values } : {}),
    }));

  const selector = O({
    matchLabels: labelMap.nullish(),
    matchExpressions: z.array(requirement).nullish(),
  }).transform((s) => ({
    ...(s.matchLabels ? { matchLabels: s.matchLabels } : {}),
    ...(s.matchExpressions && s.matchExpressions.length > 0
      ? { matchExpressions: s.matchExpressions }
      : {}),
  }));

  const cidr = z.string().superRefine((s, ctx) => {
    const problem = cidrProblem(s);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

  const ipBlock = O({ cidr, except: z.array(cidr).nullish() })
    .superRefine((b, ctx) => {
      if (cidrProblem(b.cidr)) return;
      (b.except ?? []).forEach((e, i) => {
        if (!cidrProblem(e) && !strictSubset(e, b.cidr))
          ctx.addIssue({
            code: 'custom',
            path: ['except', i],
            message: `${JSON.stringify(e)} must be a strict subset of cidr ${JSON.stringify(b.cidr)}`,
          });
      });
    })
    .transform((b) => ({
      cidr: b.cidr,
      ...(b.except && b.except.length > 0 ? { except: b.except } : {}),
    }));

  const peer = O({
    podSelector: selector.nullish(),
    namespaceSelector: selector.nullish(),
    ipBlock: ipBlock.nullish(),
  })
    .superRefine((p, ctx) => {
      const selectors = p.podSelector != null || p.namespaceSelector != null;
      if (p.ipBlock != null && selectors)
        ctx.addIssue({
          code: 'custom',
          message: 'ipBlock cannot be combined with podSelector or namespaceSelector',
        });
      if (p.ipBlock == null && !selectors)
        ctx.addIssue({
          code: 'custom',
          message: 'a peer needs podSelector, namespaceSelector or ipBlock',
        });
    })
    .transform((p) => ({
      ...(p.podSelector ? { podSelector: p.podSelector } : {}),
      ...(p.namespaceSelector ? { namespaceSelector: p.namespaceSelector } : {}),
      ...(p.ipBlock ? { ipBlock: p.ipBlock } : {}),
    }));

  const portNumber = z.number().int('expected an integer port').min(1).max(65535);

  const port = O({
    protocol: z
      .enum(['TCP', 'UDP', 'SCTP'], {
        error: (i) => `expected TCP, UDP or SCTP, got ${JSON.stringify(i.input)}`,
      })
      .nullish(),
    port: z
      .union([
        portNumber,
        z.string().regex(SVC_NAME, {
          error: (i) =>
            `expected a port number or a port name (up to 15 of a-z, 0-9 and '-', with a letter), got ${JSON.stringify(i.input)}`,
        }),
      ])
      .nullish(),
    endPort: portNumber.nullish(),
  })
    .superRefine((p, ctx) => {
      if (p.endPort == null) return;
      if (typeof p.port !== 'number')
        ctx.addIssue({
          code: 'custom',
          path: ['endPort'],
          message: 'needs a numeric port',
        });
      else if (p.endPort < p.port)
        ctx.addIssue({
          code: 'custom',
          path: ['endPort'],
          message: `must be at least port (${p.port}), got ${p.endPort}`,
        });
    })
    .transform((p) => ({
      ...(p.protocol ? { protocol: p.protocol } : {}),
      ...(p.port != null ? { port: p.port } : {}),
      ...(p.endPort != null ? { endPort: p.endPort } : {}),
    }));

  const ports = z.array(port).nullish();
  const ingressRule = O({ from: z.array(peer).nullish(), ports }).transform((r) => ({
    ...(r.from && r.from.length > 0 ? { from: r.from } : {}),
    ...(r.ports && r.ports.length > 0 ? { ports: r.ports } : {}),
  }));
  const egressRule = O({ to: z.array(peer).nullish(), ports }).transform((r) => ({
    ...(r.to && r.to.length > 0 ? { to: r.to } : {}),
    ...(r.ports && r.ports.length > 0 ? { ports: r.ports } : {}),
  }));

  const spec = O({
    podSelector: selector.nullish(),
    policyTypes: z
      .array(
        z.enum(['Ingress', 'Egress'], {
          error: (i) => `expected Ingress or Egress, got ${JSON.stringify(i.input)}`,
        }),
      )
      .nullish(),
    ingress: z.array(ingressRule).nullish(),
    egress: z.array(egressRule).nullish(),
  }).transform((s) => ({
    podSelector: s.podSelector ?? {},
    ...(s.policyTypes && s.policyTypes.length > 0 ? { policyTypes: s.policyTypes } : {}),
    ...(s.ingress ? { ingress: s.ingress } : {}),
    ...(s.egress ? { egress: s.egress } : {}),
  }));

  const metadata = z.object({
    name: z.string().regex(DNS_SUBDOMAIN, {
      error: (i) => `expected a DNS subdomain name, got ${JSON.stringify(i.input)}`,
    }),
    namespace: z
      .string()
      .regex(DNS_LABEL, {
        error: (i) => `expected a namespace name (DNS label), got ${JSON.stringify(i.input)}`,
      })
      .nullish(),
  });
  // Items of an API list carry no apiVersion/kind: the API object is metadata + spec.
  return strict
    ? z.object({
        apiVersion: z.literal('networking.k8s.io/v1', {
          error: (i) => `expected networking.k8s.io/v1, got ${JSON.stringify(i.input)}`,
        }),
        kind: z.literal('NetworkPolicy'),
        metadata,
        spec,
      })
    : z.object({ metadata, spec: spec.nullish().transform((x) => x ?? { podSelector: {} }) });
}

const STRICT = schema(true);
const LENIENT = schema(false);

function issuesOf(error: z.ZodError): string[] {
  return error.issues.map((i) => {
    const path = i.path
      .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
      .join('')
      .replace(/^\./, '');
    const message =
      i.code === 'unrecognized_keys' ? `unknown field(s) ${i.keys.join(', ')}` : i.message;
    return `${path || '(top)'}: ${message}`;
  });
}

/**
 * @kubernetes/client-node's models name an ingress rule's `from` `_from` (a
 * reserved word); list results come that way, watch events as plain JSON.
 */
function fromClientModel(value: unknown): unknown {
  const spec = (value as { spec?: { ingress?: unknown } } | undefined)?.spec;
  if (!spec || !Array.isArray(spec.ingress)) return value;
  const ingress = spec.ingress.map((r: unknown) => {
    if (!r || typeof r !== 'object' || !('_from' in r)) return r;
    const { _from, ...rest } = r as { _from?: unknown };
    return { ...rest, from: _from };
  });
  return { ...(value as object), spec: { ...spec, ingress } };
}

/**
 * One NetworkPolicy object (a parsed YAML/JSON document or an API object).
 * `defaultNamespace` stands in for a missing metadata.namespace, as kubectl
 * apply would use the current namespace.
 */
export function parseNetworkPolicy(
  value: unknown,
  where: string,
  defaultNamespace = 'default',
  options: { fromApi?: boolean } = {},
): NetworkPolicy {
  const r = options.fromApi ? LENIENT.safeParse(fromClientModel(value)) : STRICT.safeParse(value);
  if (!r.success) throw new PolicyParseError(where, issuesOf(r.error));
  return {
    namespace: r.data.metadata.namespace ?? defaultNamespace,
    name: r.data.metadata.name,
    spec: r.data.spec,
  };
}

/**
 * Every NetworkPolicy in a YAML text: several documents, and `kind: List`
 * (as `kubectl get -o yaml` writes) or NetworkPolicyList items. Other kinds
 * are skipped and counted; a document that claims to be a NetworkPolicy and
 * is not valid is an error.
 */
export function parsePolicyYaml(
  text: string,
  path: string,
  defaultNamespace = 'default',
): { policies: NetworkPolicy[]; skipped: number } {
  const policies: NetworkPolicy[] = [];
  let skipped = 0;
  const docs = parseAllDocuments(text);
  const list = Array.isArray(docs) ? docs : [docs];
  list.forEach((doc, d) => {
    const where = `${path} (document ${d + 1})`;
    if (doc.errors.length > 0)
      throw new PolicyParseError(where, [`invalid YAML: ${doc.errors[0]!.message.split('\n')[0]}`]);
    const value = doc.toJS() as unknown;
    if (value == null) return;
    const take = (v: unknown, at: string) => {
      const kind = (v as { kind?: unknown })?.kind;
      if (kind === 'NetworkPolicy') policies.push(parseNetworkPolicy(v, at, defaultNamespace));
      else skipped++;
    };
    const kind = (value as { kind?: unknown }).kind;
    if (kind === 'List' || kind === 'NetworkPolicyList') {
      const items = (value as { items?: unknown }).items;
      if (!Array.isArray(items)) throw new PolicyParseError(where, ['items: expected a list']);
      for (const [i, item] of items.entries()) take(item, `${where} items[${i}]`);
    } else take(value, where);
  });
  return { policies, skipped };
}
