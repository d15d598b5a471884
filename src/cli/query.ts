/**
 * `flowtrail query NAME`: runs a query from the pack (src/queries/pack.ts)
 * with Logs Insights over [since, until] (by default the query's own range)
 * and prints the rows as a table, JSON or CSV. `--param name=value` sets the
 * query's parameters; `flowtrail query --list` lists the pack.
 */
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import type { Command } from 'commander';
import {
  QUERY_PACK,
  type QueryDefinition,
  QueryParamError,
  queryText,
  resolveParams,
  titleFor,
} from '../queries/pack.js';
import { runInsightsQuery } from '../report/insights.js';
import { regionRequired, resolveRegion } from '../util/aws-region.js';
import { FlowtrailError } from '../util/errors.js';
import { loadConfigOrExit } from './load-config.js';
import {
  clusterOption,
  collect,
  configFile,
  configOption,
  EXIT_USAGE,
  exitCodes,
  logGroupFor,
} from './options.js';
import { csvLine, stdoutStyle } from './output.js';
import { parseTime } from './report.js';

interface QueryFlags {
  list?: boolean;
  param: string[];
  since?: string;
  until?: string;
  cluster?: string;
  config?: string;
  logGroup?: string;
  region?: string;
  endpoint?: string;
  timeout: string;
  json?: boolean;
  csv?: boolean;
}

function fail(message: string): never {
  process.stderr.write(`flowtrail query: ${message}\n`);
  process.exit(EXIT_USAGE);
}

/** `--param name=value` flags as a map (the last of a repeated name wins). */
export function parseParamFlags(flags: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of flags) {
    const eq = f.indexOf('=');
    if (eq <= 0) fail(`--param: expected name=value, got ${JSON.stringify(f)}`);
    out[f.slice(0, eq)] = f.slice(eq + 1);
  }
  return out;
}

function paramsSummary(q: QueryDefinition): string {
  return Object.entries(q.params ?? {})
    .map(([name, spec]) => `--param ${name}=${spec.default}`)
    .join(' ');
}

function listPack(json: boolean): void {
  if (json) {
    process.stdout.write(
      `${JSON.stringify(
        QUERY_PACK.map((q) => ({
          name: q.name,
          title: q.title,
          defaultSince: q.defaultSince,
          params: q.params ?? {},
          query: queryText(q),
        })),
        null,
        2,
      )}\n`,
    );
    return;
  }
  const width = Math.max(...QUERY_PACK.map((q) => q.name.length));
  for (const q of QUERY_PACK) {
    const params = paramsSummary(q);
    process.stdout.write(
      `${q.name.padEnd(width)}  ${q.title}  (default --since ${q.defaultSince}${params ? `; ${params}` : ''})\n`,
    );
  }
}

export function registerQuery(program: Command): void {
  const cmd = program
    .command('query')
    .argument('[name]', 'a query from the pack (see --list)')
    .description('run a saved Logs Insights query from the pack')
    .option('--list', 'list the queries in the pack, their default ranges and parameters')
    .option(
      '--param <name=value>',
      'set a query parameter, e.g. --param namespace=payments (repeatable; see --list)',
      collect,
      [],
    )
    .option('--since <time>', "30m, 2h, 7d ago or an ISO date (default: the query's own range)")
    .option('--until <time>', 'end of the range (default now)')
    .addOption(clusterOption())
    .option('--log-group <name>', 'log group name (default flowtrail-flowlogs-<cluster>)')
    .addOption(configOption('take cluster, log group, region and endpoint from the agent config'))
    .option('--region <region>', 'AWS region (default: config, then AWS_REGION; required if unset)')
    .option('--endpoint <url>', 'CloudWatch Logs endpoint override (emulators)')
    .option('--timeout <seconds>', 'give up (and stop the query) after this long', '120')
    .option('--json', 'rows as a JSON array')
    .option('--csv', 'rows as CSV');
  exitCodes(cmd, {
    0: 'rows printed (also when the reader of stdout went away, e.g. `| head`)',
    1: 'the query failed or timed out in CloudWatch',
    2: 'bad usage: unknown query or parameter, bad value, no log group or region',
  });
  cmd.action(async (name: string | undefined, flags: QueryFlags, self: Command) => {
    if (flags.list) {
      listPack(flags.json === true);
      return;
    }
    if (!name) fail('give a query NAME or --list');
    const entry = QUERY_PACK.find((q) => q.name === name);
    if (!entry)
      fail(
        `no query named ${JSON.stringify(name)}; known: ${QUERY_PACK.map((q) => q.name).join(', ')}`,
      );
    let params: Record<string, string>;
    try {
      params = { ...resolveParams(entry, parseParamFlags(flags.param)) };
    } catch (err) {
      if (err instanceof QueryParamError) fail(err.message);
      throw err;
    }
    const file = configFile(flags);
    const config = file ? loadConfigOrExit(file, {}, { nodeName: 'query' }) : undefined;
    const logGroupName = logGroupFor(flags, config);
    if (!logGroupName) fail('give --cluster NAME, --log-group NAME or --config FILE');
    const now = Date.now();
    const sinceText = flags.since ?? entry.defaultSince;
    const since = parseTime(sinceText, now);
    if (since === undefined)
      fail(`--since: expected 30m, 2h, 7d or an ISO date, got ${JSON.stringify(sinceText)}`);
    const until = flags.until ? parseTime(flags.until, now) : now;
    if (until === undefined)
      fail(`--until: expected 30m, 2h, 7d or an ISO date, got ${JSON.stringify(flags.until)}`);
    const timeout = Number(flags.timeout);
    if (!Number.isFinite(timeout) || timeout <= 0)
      fail(`--timeout: expected seconds > 0, got ${JSON.stringify(flags.timeout)}`);
    const cw = config?.sinks.cloudwatch;
    const region = resolveRegion(flags.region, cw?.region);
    if (!region) fail(regionRequired(true));
    const endpoint = flags.endpoint ?? cw?.endpoint;
    const client = new CloudWatchLogsClient({ region, ...(endpoint ? { endpoint } : {}) });
    try {
      const result = await runInsightsQuery(
        client,
        {
          logGroupName,
          startTime: Math.floor(since / 1000),
          endTime: Math.ceil(until / 1000),
          queryString: queryText(entry, params),
        },
        {
          deadlineMs: timeout * 1000,
          pollMs: 500,
          onPoll: (status, polls) => {
            if (process.stderr.isTTY) process.stderr.write(`\r${entry.name}: ${status} (${polls})`);
          },
        },
      );
      if (process.stderr.isTTY) process.stderr.write('\n');
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(result.rows, null, 2)}\n`);
      } else if (flags.csv) {
        process.stdout.write(csvLine(result.fields));
        for (const row of result.rows)
          process.stdout.write(csvLine(result.fields.map((f) => row[f] ?? '')));
      } else {
        const { c, table: newTable } = stdoutStyle(self.optsWithGlobals());
        process.stdout.write(`${c.bold(titleFor(entry, params))}  ${c.dim(logGroupName)}\n`);
        if (result.rows.length === 0) {
          process.stdout.write(c.dim('  no rows\n'));
        } else {
          const table = newTable(result.fields);
          for (const row of result.rows) table.push(result.fields.map((f) => row[f] ?? ''));
          process.stdout.write(`${table.toString()}\n`);
        }
        const s = result.statistics;
        if (s)
          process.stdout.write(
            c.dim(`${s.recordsMatched ?? 0} matched, ${s.recordsScanned ?? 0} scanned\n`),
          );
      }
    } catch (err) {
      const message =
        err instanceof FlowtrailError
          ? `${err.code}: ${err.message}`
          : `${(err as Error).name ?? 'Error'}: ${(err as Error).message ?? String(err)}`;
      process.stderr.write(`flowtrail query: ${message}\n`);
      process.exit(1);
    } finally {
      client.destroy();
    }
  });
}
