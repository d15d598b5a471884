/**
 * The Logs Insights query pack: the auditors' questions as queries over the
 * 24 fields, parsed by position. `flowtrail setup` saves them as query
 * definitions; docs/queries.md shows them for the console.
 */
import { RECORD_FIELDS } from '../format/record.js';

/** `parse` with one `*` per field, in record order. */
export const PARSE_LINE = `parse @message "${RECORD_FIELDS.map(() => '*').join(' ')}" as ${RECORD_FIELDS.join(', ')}`;

export interface PackQuery {
  readonly name: string;
  readonly title: string;
  readonly body: string;
}

export const QUERY_PACK: readonly PackQuery[] = [
  {
    name: 'denied-flows',
    title: 'Which flows did policy deny, and between whom?',
    body: `filter action = "deny"
| stats sum(packetsIn + packetsOut) as packets, sum(numFlows) as flows by srcNamespace, srcName, dstNamespace, dstName, dstPort
| sort packets desc`,
  },
  {
    name: 'egress-internet',
    title: 'Which pods sent traffic to the public internet?',
    body: `filter reporter = "src" and dstType = "net" and dstName = "pub"
| stats sum(bytesOut) as bytesSent, sum(numFlows) as flows by srcNamespace, srcName, dstIP, dstPort
| sort bytesSent desc`,
  },
  {
    name: 'cross-namespace-ingress',
    title: 'Who connected into namespace prod from another namespace?',
    body: `filter reporter = "dst" and dstNamespace = "prod" and srcNamespace != "prod" and action = "allow"
| stats sum(numFlows) as flows, sum(bytesIn) as bytes by srcNamespace, srcName, dstName, dstPort`,
  },
  {
    name: 'namespace-talkers',
    title: 'What did namespace stars talk to?',
    body: `filter (reporter = "src" and srcNamespace = "stars") or (reporter = "dst" and dstNamespace = "stars")
| stats sum(packetsIn + packetsOut) as packets by srcNamespace, srcName, dstNamespace, dstName, dstPort, action`,
  },
  {
    name: 'top-talkers',
    title: 'Top talkers by bytes',
    body: `filter action = "allow"
| stats sum(bytesIn + bytesOut) as bytes by srcNamespace, srcName, dstNamespace, dstName
| sort bytes desc
| limit 10`,
  },
];

/** The full query text of a pack entry. */
export function queryText(q: PackQuery): string {
  return `${PARSE_LINE}\n| ${q.body}`;
}
