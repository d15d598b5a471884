/**
 * `flowtrail report`: the audit questions answered from record files (the
 * file sink) or from CloudWatch Logs (FilterLogEvents over a time range), as
 * tables, JSON or CSV. Lines that are not records are counted and the first
 * few reported with their line numbers, never fatal.
 */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { FlowRecord } from '../format/record.js';
import {
  bucketFor,
  crossNamespaceIngress,
  deniedFlows,
  egressToInternet,
  namespaceTalkers,
  type PairRow,
  topTalkers,
  totals,
} from '../report/analyze.js';
import { readWhatIfDiff, type WhatIfDiff } from '../report/diff.js';
import { renderHtml } from '../report/html.js';
import { type BadLine, cloudWatchLines, decodeAll, fileLines } from '../report/sources.js';
import { pairsTable } from '../report/text.js';
import { regionRequired, resolveRegion } from '../util/aws-region.js';
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

interface ReportFlags {
  file: string[];
  config?: string;
  cluster?: string;
  logGroup?: string;
  region?: string;
  endpoint?: string;
  since?: string;
  until?: string;
  namespace?: string;
  ingressNamespace: string;
  action?: string;
  json?: boolean;
  csv?: boolean;
  html?: string;
  diff?: string;
}

function fail(message: string): never {
  process.stderr.write(`flowtrail report: ${message}\n`);
  process.exit(EXIT_USAGE);
}

/** `30m`, `2h`, `7d` (ago) or an ISO date → ms since the epoch. */
export function parseTime(text: string, nowMs: number): number | undefined {
  const rel = /^(\d+)(s|m|h|d)$/.exec(text);
  if (rel)
    return (
      nowMs - Number(rel[1]) * { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as 's']!
    );
  const t = Date.parse(text);
  return Number.isNaN(t) ? undefined : t;
}

export function registerReport(program: Command): void {
  const cmd = program
    .command('report')
    .description('answer the audit questions from record files or CloudWatch Logs')
    .option('-f, --file <path>', 'a record file written by the file sink (repeatable)', collect, [])
    .addOption(clusterOption())
    .option('--log-group <name>', 'read from this CloudWatch Logs group instead of files')
    .addOption(configOption('take cluster, log group, region and endpoint from the agent config'))
    .option(
      '--region <region>',
      'AWS region for CloudWatch (default: config, then AWS_REGION; required if unset)',
    )
    .option('--endpoint <url>', 'CloudWatch endpoint override (emulators)')
    .option(
      '--since <time>',
      'records ending after this: 30m, 2h, 7d ago or an ISO date (default: 24h from CloudWatch, the whole file for --file)',
    )
    .option('--until <time>', 'records ending before this (default: now; for --file, no limit)')
    .option('--namespace <ns>', 'only records with this source or destination namespace')
    .option(
      '--ingress-namespace <ns>',
      'namespace for the cross-namespace ingress question',
      'prod',
    )
    .option('--action <action>', 'only allow or deny records')
    .option('--json', 'one JSON object with every answer')
    .option(
      '--csv',
      'CSV rows: question,source,destination,port,proto,flows,packets,bytes,policies',
    )
    .option(
      '--html <file>',
      'also write a self-contained HTML page (inline CSS and SVG charts) to FILE',
    )
    .option(
      '--diff <file>',
      'with --html: show a what-if diff from FILE in the page (JSON, see docs/report.md)',
    );
  exitCodes(cmd, {
    0: 'answered (also when the reader of stdout went away, e.g. `| head`)',
    1: 'CloudWatch Logs could not be read',
    2: 'bad usage, or a record file that cannot be read',
  });
  cmd.action(async (flags: ReportFlags, self: Command) => {
    const now = Date.now();
    // Files are read whole unless a window is asked for; CloudWatch reads the last 24 h.
    const fromFiles = flags.file.length > 0;
    const since = flags.since
      ? parseTime(flags.since, now)
      : fromFiles
        ? Number.NEGATIVE_INFINITY
        : parseTime('24h', now);
    if (since === undefined)
      fail(`--since: expected 30m, 2h, 7d or an ISO date, got ${JSON.stringify(flags.since)}`);
    const until = flags.until
      ? parseTime(flags.until, now)
      : fromFiles
        ? Number.POSITIVE_INFINITY
        : now;
    if (until === undefined)
      fail(`--until: expected 30m, 2h, 7d or an ISO date, got ${JSON.stringify(flags.until)}`);
    if (flags.action && flags.action !== 'allow' && flags.action !== 'deny') {
      fail(`--action: expected allow or deny, got ${JSON.stringify(flags.action)}`);
    }
    const config =
      flags.file.length === 0 && configFile(flags)
        ? loadConfigOrExit(configFile(flags), {}, { nodeName: 'report' })
        : undefined;
    const logGroup = flags.file.length === 0 ? logGroupFor(flags, config) : undefined;
    if (flags.file.length === 0 && !logGroup)
      fail('give --file PATH (repeatable), --cluster NAME, --log-group NAME or --config FILE');
    if (flags.diff && !flags.html) fail('--diff needs --html FILE (the diff is shown in the page)');
    let diff: WhatIfDiff | undefined;
    try {
      diff = flags.diff ? readWhatIfDiff(flags.diff) : undefined;
    } catch (err) {
      fail(`--diff: ${(err as Error).message}`);
    }
    const bad: BadLine[] = [];
    const counter = { bad: 0 };
    let records: FlowRecord[] = [];
    if (logGroup) {
      const cw = config?.sinks.cloudwatch;
      const region = resolveRegion(flags.region, cw?.region);
      if (!region) fail(regionRequired(true));
      const endpoint = flags.endpoint ?? cw?.endpoint;
      let lines: Awaited<ReturnType<typeof cloudWatchLines>>;
      try {
        lines = await cloudWatchLines(logGroup, since, until, { region, endpoint });
      } catch (err) {
        const e = err as Error;
        process.stderr.write(`flowtrail report: ${logGroup}: ${e.name}: ${e.message}\n`);
        process.exit(1);
      }
      records = decodeAll(lines, bad, counter);
    } else {
      try {
        for (const f of flags.file) records.push(...decodeAll(fileLines(f), bad, counter));
      } catch (err) {
        fail((err as Error).message);
      }
    }
    const inWindow = records.filter((r) => r.endTime * 1000 >= since && r.endTime * 1000 <= until);
    const outside = records.length - inWindow.length;
    records = inWindow.filter(
      (r) =>
        (!flags.namespace ||
          r.srcNamespace === flags.namespace ||
          r.dstNamespace === flags.namespace) &&
        (!flags.action || r.action === flags.action),
    );
    const answers: [string, PairRow[]][] = [
      ['Which flows did policy deny, and between whom?', deniedFlows(records)],
      ['Which pods sent traffic to the public internet?', egressToInternet(records)],
      [
        `Who connected into namespace ${flags.ingressNamespace} from another namespace?`,
        crossNamespaceIngress(records, flags.ingressNamespace),
      ],
      ...(flags.namespace
        ? [
            [
              `What did namespace ${flags.namespace} talk to?`,
              namespaceTalkers(records, flags.namespace),
            ] as [string, PairRow[]],
          ]
        : []),
      ['Top talkers by bytes', topTalkers(records)],
    ];
    const t = totals(records);
    if (flags.html) {
      const span =
        t.firstTime !== undefined && t.lastTime !== undefined ? t.lastTime - t.firstTime : 0;
      const bucketSeconds = bucketFor(span);
      const html = renderHtml({
        title: 'flowtrail report',
        source: logGroup ? `log group ${logGroup}` : flags.file.join(', '),
        generatedAt: new Date(now),
        totals: t,
        badLines: counter.bad,
        answers,
        bucketSeconds,
        topTalkers: topTalkers(records),
        records,
        diff,
      });
      try {
        writeFileSync(flags.html, html);
      } catch (err) {
        fail(`cannot write ${flags.html} (${(err as NodeJS.ErrnoException).code ?? 'EIO'})`);
      }
    }
    if (flags.json) {
      process.stdout.write(
        `${JSON.stringify({ totals: t, badLines: counter.bad, answers: Object.fromEntries(answers) }, null, 2)}\n`,
      );
    } else if (flags.csv) {
      process.stdout.write('question,source,destination,port,proto,flows,packets,bytes,policies\n');
      for (const [q, rows] of answers) {
        for (const r of rows) {
          const policies = r.policies.join('|');
          process.stdout.write(
            csvLine([q, r.src, r.dst, r.dstPort, r.proto, r.flows, r.packets, r.bytes, policies]),
          );
        }
      }
    } else {
      const { c: pc, table: newTable } = stdoutStyle(self.optsWithGlobals());
      process.stdout.write(
        `${pc.bold(`${t.records} records`)} (${t.allowRecords} allow, ${t.denyRecords} deny; ${t.deniedPackets} denied packets)\n`,
      );
      for (const [q, rows] of answers) {
        process.stdout.write(`\n${pc.bold(q)}\n`);
        if (rows.length === 0) {
          process.stdout.write(pc.dim('  none\n'));
          continue;
        }
        process.stdout.write(`${pairsTable(rows, 20, newTable)}\n`);
      }
    }
    if (outside > 0) {
      process.stderr.write(
        `flowtrail report: ${outside} records outside the time window (${[flags.since ? `--since ${flags.since}` : !fromFiles && 'the default --since 24h', flags.until && `--until ${flags.until}`].filter(Boolean).join(', ')}) not counted\n`,
      );
    }
    if (counter.bad > 0) {
      process.stderr.write(
        `flowtrail report: ${counter.bad} lines are not flow records, skipped; first:\n`,
      );
      for (const b of bad) process.stderr.write(`  ${b.where}: ${b.message}\n`);
    }
  });
}
