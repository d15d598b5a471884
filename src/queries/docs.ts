/**
 * docs/queries.md, rendered from the query pack so the two cannot drift:
 * `npm run docs:queries` writes it, test/unit/query-pack.test.ts compares.
 */
import { PARSE_LINE, QUERY_PACK } from './pack.js';

export function renderQueriesMarkdown(): string {
  const out: string[] = [
    '# Querying flow logs with CloudWatch Logs Insights',
    '',
    '<!-- Generated from src/queries/pack.ts by `npm run docs:queries`; edit the pack, not this file. -->',
    '',
    '`flowtrail setup` saves these queries in CloudWatch as `flowtrail/<name>`',
    '(the pack lives in `src/queries/pack.ts`); `flowtrail query <name>` runs one;',
    '`flowtrail report` answers the same questions from record files or a log',
    'group without Logs Insights, selecting the same records.',
    '',
    '```sh',
    'flowtrail query --list                               # names, default ranges, parameters',
    'flowtrail query denied-flows --cluster prod          # over its default range',
    'flowtrail query namespace-talkers --cluster prod --param namespace=payments --since 6h',
    '```',
    '',
    'Without `--since`, a query runs over its default range below. `--param',
    'name=value` sets a parameter; a name the query does not take is refused',
    '(exit 2) with the names it does take.',
    '',
    'Records are space-delimited; Logs Insights splits them with `parse`, by',
    'position. Every query below starts with the same line, which reads both',
    'record variants: 24 fields, and 27 with `flowLogs.includePolicies` (the',
    'default), whose `srcNameAggr`, `dstNameAggr` and `policies` it extracts too',
    '(unset on 24-field lines):',
    '',
    '```',
    PARSE_LINE,
    '```',
    '',
    'Add your own commands after it; for instance the policies that denied',
    'traffic, from 27-field records:',
    '',
    '```',
    '| filter action = "deny" and ispresent(policies)',
    '| stats sum(packetsIn + packetsOut) as packets by policies, dstNamespace, dstName',
    '| sort packets desc',
    '```',
    '',
  ];
  for (const q of QUERY_PACK) {
    out.push(`## ${q.name}: ${q.title}`, '', q.description, '');
    const facts = [`Default range: last ${q.defaultSince}.`];
    for (const [name, spec] of Object.entries(q.params ?? {})) {
      facts.push(
        `Parameter \`${name}\`: ${spec.description}, default \`${spec.default}\` (\`flowtrail query ${q.name} --param ${name}=VALUE\`; the query saved by \`flowtrail setup\` uses the default).`,
      );
    }
    out.push(facts.join(' '), '', '```', `| ${q.body}`, '```', '');
  }
  out.push(
    'A flow between two pods on the same node appears twice (reporter `src` and',
    '`dst`); each query filters on one reporter so that it is counted once.',
    '',
  );
  return out.join('\n');
}
