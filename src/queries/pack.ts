/**
 * The Logs Insights query pack: the auditors' questions as queries over the
 * record fields, parsed by position. `flowtrail setup` saves them as query
 * definitions (`flowtrail/<name>`), `flowtrail query NAME` runs them, and
 * docs/queries.md is generated from this file (`npm run docs:queries`; a
 * test fails when the two differ).
 *
 * Each query selects the same records as the matching answer of
 * `flowtrail report` (src/report/analyze.ts), so a flow between two local
 * pods, which is reported twice (once per reporter), is counted once
 * (test/unit/query-pack.test.ts checks the selections agree).
 */
import { POLICY_FIELDS, RECORD_FIELDS } from '../format/record.js';
import { FlowtrailError } from '../util/errors.js';

const field = (name: string) => `(?<${name}>[^ ]+)`;

/**
 * One regular expression for both record variants: the 24 fields, then the
 * 27-field variant's three in an optional group, so a 24-field line leaves
 * them unset. (A glob with 24 `*` would give `action` the rest of a 27-field
 * line, "deny a-* b-* default.deny", and match no filter on it.)
 */
export const PARSE_LINE = `parse @message /^${RECORD_FIELDS.map(field).join(' ')}(?: ${POLICY_FIELDS.map(field).join(' ')})?$/`;

/** Values a query is given, by parameter name (today: the namespace a question is about). */
export type QueryParams = Readonly<Record<string, string>>;

/** One parameter a query takes. */
export interface QueryParamSpec {
  readonly default: string;
  readonly description: string;
}

export interface QueryDefinition {
  /** Stable name: saved as `flowtrail/<name>`, run as `flowtrail query <name>`. */
  readonly name: string;
  /** The question, as a heading (with the default parameters). */
  readonly title: string;
  /** What the answer shows and how it counts, one paragraph. */
  readonly description: string;
  /** The parameters it takes, by name, with their defaults; absent when none. */
  readonly params?: Readonly<Record<string, QueryParamSpec>>;
  /** Default time range for an interactive run (e.g. `flowtrail query`). */
  readonly defaultSince: string;
  /** The query after the parse line, starting with its first command. */
  query(params?: QueryParams): string;
  /** The query after the parse line with the default parameters. */
  readonly body: string;
}

/**
 * A namespace is a DNS label (RFC 1123); anything else would have to be
 * escaped inside the query's string literal, so it is refused instead.
 */
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** A parameter the query does not take, or a value it cannot use: `flowtrail query` exits 2. */
export class QueryParamError extends FlowtrailError {
  constructor(message: string, context: { query: string; param: string; value?: string }) {
    super('ERR_QUERY_PARAM', message, context);
  }
}

function namespaceParam(params: QueryParams | undefined, fallback: string): string {
  const ns = params?.namespace ?? fallback;
  if (!NAMESPACE.test(ns)) {
    throw new RangeError(
      `namespace: expected a Kubernetes namespace name (RFC 1123 label), got ${JSON.stringify(ns)}`,
    );
  }
  return ns;
}

const namespaceSpec = (fallback: string, role: string): QueryParamSpec => ({
  default: fallback,
  description: `the namespace ${role} (a Kubernetes namespace name)`,
});

function define(
  d: Omit<QueryDefinition, 'body' | 'query'> & { query(params?: QueryParams): string },
): QueryDefinition {
  return { ...d, body: d.query() };
}

export const QUERY_PACK: readonly QueryDefinition[] = [
  define({
    name: 'denied-flows',
    title: 'Which flows did policy deny, and between whom?',
    description:
      'Denied records grouped by source and destination namespace and name and destination port, with the packets denied (packetsIn + packetsOut) and the number of flows, most packets first.',
    defaultSince: '1h',
    query: () => `filter action = "deny"
| stats sum(packetsIn + packetsOut) as packets, sum(numFlows) as flows by srcNamespace, srcName, dstNamespace, dstName, dstPort
| sort packets desc`,
  }),
  define({
    name: 'egress-internet',
    title: 'Which pods sent traffic to the public internet?',
    description:
      'Records whose destination has no endpoint and a public address (dstType net, dstName pub), as reported by the sending side (reporter src), grouped by source pod and destination address and port, most bytes sent first.',
    defaultSince: '24h',
    query: () => `filter reporter = "src" and dstType = "net" and dstName = "pub"
| stats sum(bytesOut) as bytesSent, sum(numFlows) as flows by srcNamespace, srcName, dstIP, dstPort
| sort bytesSent desc`,
  }),
  define({
    name: 'cross-namespace-ingress',
    title: 'Who connected into namespace prod from another namespace?',
    description:
      'Allowed records reported by the receiving side (reporter dst) whose destination is in the namespace (parameter `namespace`, default prod) and whose source is not, grouped by source pod and destination pod and port.',
    params: { namespace: namespaceSpec('prod', 'connected into') },
    defaultSince: '24h',
    query: (p) => {
      const ns = namespaceParam(p, 'prod');
      return `filter reporter = "dst" and dstNamespace = "${ns}" and srcNamespace != "${ns}" and action = "allow"
| stats sum(numFlows) as flows, sum(bytesIn) as bytes by srcNamespace, srcName, dstName, dstPort
| sort flows desc`;
    },
  }),
  define({
    name: 'namespace-talkers',
    title: 'What did namespace stars talk to?',
    description:
      'Everything the namespace (parameter `namespace`, default stars) sent, as reported by its side (reporter src), and everything it received from other namespaces (reporter dst), allowed and denied, grouped by both ends, port and action.',
    params: { namespace: namespaceSpec('stars', 'whose traffic is shown') },
    defaultSince: '1h',
    query: (p) => {
      const ns = namespaceParam(p, 'stars');
      return `filter (reporter = "src" and srcNamespace = "${ns}") or (reporter = "dst" and dstNamespace = "${ns}" and srcNamespace != "${ns}")
| stats sum(packetsIn + packetsOut) as packets, sum(bytesIn + bytesOut) as bytes by srcNamespace, srcName, dstNamespace, dstName, dstPort, action
| sort packets desc`;
    },
  }),
  define({
    name: 'top-talkers',
    title: 'Top talkers by bytes',
    description:
      'The ten pairs that moved the most bytes (bytesIn + bytesOut) in allowed flows, each flow counted once: from the source side when the source is a pod (srcType wep), else from the destination side.',
    defaultSince: '1h',
    query:
      () => `filter action = "allow" and ((srcType = "wep" and reporter = "src") or (srcType != "wep" and reporter = "dst"))
| stats sum(bytesIn + bytesOut) as bytes by srcNamespace, srcName, dstNamespace, dstName
| sort bytes desc
| limit 10`,
  }),
];

export function findQuery(name: string): QueryDefinition | undefined {
  return QUERY_PACK.find((q) => q.name === name);
}

/**
 * The parameters for a run of `q`: its defaults, overridden by `given`.
 * Throws QueryParamError naming an unknown parameter (and listing the ones
 * the query takes) or a value the query cannot use.
 */
export function resolveParams(q: QueryDefinition, given: QueryParams): QueryParams {
  const specs = q.params ?? {};
  const valid = Object.keys(specs);
  const out: Record<string, string> = {};
  for (const [name, spec] of Object.entries(specs)) out[name] = spec.default;
  for (const [name, value] of Object.entries(given)) {
    if (!Object.hasOwn(specs, name)) {
      throw new QueryParamError(
        `${q.name} has no parameter ${JSON.stringify(name)}; ${
          valid.length > 0
            ? `it takes ${valid.map((v) => `${v} (default ${specs[v]!.default})`).join(', ')}`
            : 'it takes none'
        }`,
        { query: q.name, param: name },
      );
    }
    out[name] = value;
  }
  try {
    q.query(out);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    const param = err.message.split(':')[0] ?? '';
    throw new QueryParamError(`${q.name}: --param ${err.message}`, {
      query: q.name,
      param,
      value: out[param],
    });
  }
  return out;
}

/** The question as a heading for these parameters ("… namespace payments …"). */
export function titleFor(q: QueryDefinition, params: QueryParams): string {
  let title = q.title;
  for (const [name, spec] of Object.entries(q.params ?? {})) {
    const value = params[name];
    if (value !== undefined) title = title.replace(`${name} ${spec.default}`, `${name} ${value}`);
  }
  return title;
}

/** The full query text of a pack entry: the parse line, then the query. */
export function queryText(q: QueryDefinition, params?: QueryParams): string {
  return `${PARSE_LINE}\n| ${params ? q.query(params) : q.body}`;
}
