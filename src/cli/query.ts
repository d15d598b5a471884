/**
 * `flowtrail query NAME`: runs a query from the pack (src/queries/pack.ts)
 * with Logs Insights over [since, until] and prints the rows as a table,
 * JSON or CSV. `flowtrail query --list` lists the pack.
 */
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import Table from 'cli-table3';
import type { Command } from 'commander';
import pc from 'picocolors';
import { QUERY_PACK, queryText } from '../queries/pack.js';
import { runInsightsQuery } from '../report/insights.js';
import { regionRequired, resolveRegion } from '../util/aws-region.js';
import { FlowtrailError } from '../util/errors.js';
import { parseTime } from './report.js';

interface QueryFlags {
  list?: boolean;
  since: string;
  until?: string;
  cluster?: string;
  logGroup?: string;
  region?: string;
  endpoint?: string;
  timeout: string;
  json?: boolean;
  csv?: boolean;
}

function fail(message: string): never {
  process.stderr.write(`flowtrail query: ${message}\n`);
  process.exit(2);
}

function csvCell(v: unknown): string {
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function registerQuery(program: Command): void {
  program
    .command('query')
    .argument('[name]', 'a query from the pack (see --list)')
    .description('run a saved Logs Insights query from the pack')
    .option('--list', 'list the queries in the pack')
    .option('--since <time>', '30m, 2h, 7d ago or an ISO date', '30m')
    .option('--until <time>', 'end of the range (default now)')
    .option('--cluster <name>', 'cluster name (log group flowtrail-flowlogs-<cluster>)')
    .option('--log-group <name>', 'log group name (default flowtrail-flowlogs-<cluster>)')
    .option('--region <region>', 'AWS region (default AWS_REGION; required if unset)')
    .option('--endpoint <url>', 'CloudWatch Logs endpoint override (emulators)')
    .option('--timeout <seconds>', 'give up (and stop the query) after this long', '120')
    .option('--json', 'rows as a JSON array')
    .option('--csv', 'rows as CSV')
    .action(async (name: string | undefined, flags: QueryFlags) => {
      if (flags.list) {
        if (flags.json) {
          process.stdout.write(
            `${JSON.stringify(
              QUERY_PACK.map((q) => ({ name: q.name, title: q.title, query: queryText(q) })),
              null,
              2,
            )}\n`,
          );
          return;
        }
        const width = Math.max(...QUERY_PACK.map((q) => q.name.length));
        for (const q of QUERY_PACK) process.stdout.write(`${q.name.padEnd(width)}  ${q.title}\n`);
        return;
      }
      if (!name) fail('give a query NAME or --list');
      const entry = QUERY_PACK.find((q) => q.name === name);
      if (!entry)
        fail(
          `no query named ${JSON.stringify(name)}; known: ${QUERY_PACK.map((q) => q.name).join(', ')}`,
        );
      const logGroupName =
        flags.logGroup ?? (flags.cluster ? `flowtrail-flowlogs-${flags.cluster}` : undefined);
      if (!logGroupName) fail('give --cluster NAME or --log-group NAME');
      const now = Date.now();
      const since = parseTime(flags.since, now);
      if (since === undefined)
        fail(`--since: expected 30m, 2h, 7d or an ISO date, got ${JSON.stringify(flags.since)}`);
      const until = flags.until ? parseTime(flags.until, now) : now;
      if (until === undefined)
        fail(`--until: expected 30m, 2h, 7d or an ISO date, got ${JSON.stringify(flags.until)}`);
      const timeout = Number(flags.timeout);
      if (!Number.isFinite(timeout) || timeout <= 0)
        fail(`--timeout: expected seconds > 0, got ${JSON.stringify(flags.timeout)}`);
      const region = resolveRegion(flags.region);
      if (!region) fail(regionRequired(false));
      const client = new CloudWatchLogsClient({
        region,
        ...(flags.endpoint ? { endpoint: flags.endpoint } : {}),
      });
      try {
        const result = await runInsightsQuery(
          client,
          {
            logGroupName,
            startTime: Math.floor(since / 1000),
            endTime: Math.ceil(until / 1000),
            queryString: queryText(entry),
          },
          {
            deadlineMs: timeout * 1000,
            pollMs: 500,
            onPoll: (status, polls) => {
              if (process.stderr.isTTY)
                process.stderr.write(`\r${entry.name}: ${status} (${polls})`);
            },
          },
        );
        if (process.stderr.isTTY) process.stderr.write('\n');
        if (flags.json) {
          process.stdout.write(`${JSON.stringify(result.rows, null, 2)}\n`);
        } else if (flags.csv) {
          process.stdout.write(`${result.fields.map(csvCell).join(',')}\n`);
          for (const row of result.rows)
            process.stdout.write(`${result.fields.map((f) => csvCell(row[f] ?? '')).join(',')}\n`);
        } else {
          process.stdout.write(`${pc.bold(entry.title)}  ${pc.dim(logGroupName)}\n`);
          if (result.rows.length === 0) {
            process.stdout.write(pc.dim('  no rows\n'));
          } else {
            const table = new Table({ head: [...result.fields], style: { head: ['cyan'] } });
            for (const row of result.rows) table.push(result.fields.map((f) => row[f] ?? ''));
            process.stdout.write(`${table.toString()}\n`);
          }
          const s = result.statistics;
          if (s)
            process.stdout.write(
              pc.dim(`${s.recordsMatched ?? 0} matched, ${s.recordsScanned ?? 0} scanned\n`),
            );
        }
      } catch (err) {
        if (err instanceof FlowtrailError) fail(`${err.code}: ${err.message}`);
        const e = err as { name?: string; message?: string };
        fail(`${e.name ?? 'Error'}: ${e.message ?? String(err)}`);
      } finally {
        client.destroy();
      }
    });
}
