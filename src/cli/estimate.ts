/**
 * `flowtrail estimate`: records and bytes per day, and the monthly
 * CloudWatch ingest cost, at each aggregation kind and with the configured
 * volume controls, from record files, a CloudWatch time range, or a live
 * node sampled for a few minutes (kind 0, so every coarser kind can be
 * computed from the same sample).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { type Config, setOverrides, validateConfig } from '../config.js';
import { type Estimate, estimate } from '../estimate/estimate.js';
import type { FlowRecord } from '../format/record.js';
import { type BadLine, cloudWatchLines, decodeAll, fileLines } from '../report/sources.js';
import { regionRequired, resolveRegion } from '../util/aws-region.js';
import { ConfigError, FlowtrailError } from '../util/errors.js';
import { createLogger } from '../util/log.js';
import { loadConfigOrExit, overridesOrExit } from './load-config.js';
import {
  clusterOption,
  collect,
  configFile,
  configOption,
  EXIT_USAGE,
  exitCodes,
  logGroupFor,
} from './options.js';
import { type Style, stdoutStyle } from './output.js';
import { parseTime } from './report.js';

interface EstimateFlags {
  file: string[];
  cluster?: string;
  logGroup?: string;
  stream?: string;
  since: string;
  until?: string;
  region?: string;
  endpoint?: string;
  live?: string;
  config?: string;
  set: string[];
  priceStandard?: string;
  priceIa?: string;
  json?: boolean;
}

function fail(message: string): never {
  process.stderr.write(`flowtrail estimate: ${message}\n`);
  process.exit(EXIT_USAGE);
}

function settings(flags: EstimateFlags): Config {
  const sets = [...flags.set];
  if (flags.priceStandard !== undefined)
    sets.push(`pricing.ingestStandardPerGb=${flags.priceStandard}`);
  if (flags.priceIa !== undefined)
    sets.push(`pricing.ingestInfrequentAccessPerGb=${flags.priceIa}`);
  const overrides = overridesOrExit(() => setOverrides(sets));
  const file = configFile(flags);
  if (file) return loadConfigOrExit(file, overrides, { nodeName: 'estimate' });
  // No config file: the defaults, as an agent without one would run.
  try {
    return validateConfig({ clusterName: 'estimate', nodeName: 'estimate', ...overrides });
  } catch (err) {
    if (err instanceof ConfigError) fail(err.issues.join('; '));
    throw err;
  }
}

/** Runs the agent at kind 0 into a temporary file for `minutes`, and returns that file. */
async function sampleLive(config: Config, minutes: number, dir: string): Promise<string> {
  const file = join(dir, 'sample.log');
  const sample: Config = {
    ...config,
    flowLogs: {
      ...config.flowLogs,
      aggregationKindForAllowed: 0,
      aggregationKindForDenied: 0,
      enabledForAllowed: true,
      enabledForDenied: true,
      includeNamespaces: [],
      excludeNamespaces: [],
      maxRecordsPerFlush: 0,
      flushIntervalSeconds: Math.max(1, Math.min(config.flowLogs.flushIntervalSeconds, 60)),
    },
    sinks: { file: { path: file, maxBytes: Number.MAX_SAFE_INTEGER, maxFiles: 1 }, stdout: false },
    metrics: { ...config.metrics, enabled: false },
    spool: { ...config.spool, dir: join(dir, 'spool') },
    http: { listen: '' },
  };
  const { runAgent } = await import('../agent/run.js');
  process.stderr.write(`sampling this node at kind 0 for ${minutes} min…\n`);
  await runAgent(sample, {
    logger: createLogger({ level: 'warn' }),
    stopSignal: new Promise((r) => setTimeout(r, minutes * 60_000)),
  });
  return file;
}

const usd = (v: number) => `$${v < 1 ? v.toFixed(4) : v.toFixed(2)}`;

function printTable(e: Estimate, source: string, style: Style): void {
  const w = e.sample;
  process.stdout.write(
    `from ${e.inputRecords} records (kind ${e.inputKind}) over ${(e.spanSeconds / 3600).toFixed(2)} h of ${source}: ${w.intervals} flush interval${w.intervals === 1 ? '' : 's'} of ${w.intervalSeconds} s\n`,
  );
  for (const warning of e.warnings)
    process.stdout.write(`${style.c.yellow(`warning: ${warning}`)}\n`);
  const t = style.table([
    'aggregation',
    'records/day',
    'MB/day',
    'ingest GB/day',
    `$/month standard ($${e.prices.standardPerGb}/GB)`,
    '95% range',
    `$/month IA ($${e.prices.infrequentAccessPerGb}/GB)`,
  ]);
  for (const r of e.rows) {
    const range = r.range95?.monthlyUsdStandard;
    t.push([
      r.label,
      r.recordsPerDay.toLocaleString('en-US'),
      (r.bytesPerDay / 1e6).toFixed(2),
      r.ingestGbPerDay.toFixed(4),
      usd(r.monthlyUsdStandard),
      range ? `${usd(range[0])}–${usd(range[1])}` : 'unknown',
      usd(r.monthlyUsdInfrequentAccess),
    ]);
  }
  process.stdout.write(`${t.toString()}\n`);
  for (const n of e.notes) process.stdout.write(`note: ${n}\n`);
  process.stdout.write(
    'Ingest counts each record + 26 bytes (CloudWatch event overhead); GB = 10^9 bytes; month = 30 days; prices from pricing.* (not fetched).\n' +
      "95% range: from the variation between the sample's flush intervals (docs/operations.md).\n",
  );
}

export function registerEstimate(program: Command): void {
  const cmd = program
    .command('estimate')
    .description(
      'records, bytes and CloudWatch cost per day at each aggregation kind, from records or a live sample',
    )
    .option('-f, --file <path>', 'record file (the file sink; gzip ok), repeatable', collect, [])
    .addOption(clusterOption())
    .option('--log-group <name>', 'read records from this CloudWatch log group')
    .option('--stream <name>', 'only this log stream (e.g. <node>_Flowlogs)')
    .option('--since <time>', 'with --log-group: start, 30m/2h/7d ago or ISO date', '24h')
    .option('--until <time>', 'with --log-group: end (default now)')
    .option('--region <region>', 'AWS region for --log-group (default: config, then AWS_REGION)')
    .option('--endpoint <url>', 'CloudWatch Logs endpoint (emulators)')
    .option('--live <minutes>', 'sample this node at kind 0 for N minutes (root, node netns)')
    .addOption(configOption('agent config: aggregation kinds, volume controls, prices'))
    .option('--set <key=value>', 'override a config key (repeatable)', collect, [])
    .option('--price-standard <usd>', 'USD per GB ingested, standard class (pricing.*)')
    .option('--price-ia <usd>', 'USD per GB ingested, infrequent access (pricing.*)')
    .option('--json', 'print the estimate as JSON')
    .addHelpText(
      'after',
      '\nKinds finer than the input cannot be estimated: sample at kind 0 (--live, or an agent\n' +
        'with aggregationKindForAllowed: 0) to see all three. A sample shorter than an hour is\n' +
        'warned about; each row carries a 95% range (JSON: range95, sample, warnings).',
    );
  exitCodes(cmd, {
    0: 'estimated (warnings, if any, say how far to trust it)',
    1: 'CloudWatch Logs could not be read, or the live sample failed',
    2: 'bad input: no records, unreadable file, bad flag or config',
  });
  cmd.action(async (flags: EstimateFlags, self: Command) => {
    const config = settings(flags);
    const logGroup = logGroupFor(flags);
    const sources = [flags.file.length > 0, !!logGroup, flags.live !== undefined];
    if (sources.filter(Boolean).length !== 1) {
      fail(
        'give exactly one of --file PATH, --log-group NAME (or --cluster NAME) or --live MINUTES',
      );
    }
    const bad: BadLine[] = [];
    const counter = { bad: 0 };
    let records: FlowRecord[] = [];
    let source: string;
    const tmp = mkdtempSync(join(tmpdir(), 'flowtrail-estimate-'));
    try {
      if (flags.live !== undefined) {
        const minutes = Number(flags.live);
        if (!(minutes > 0 && minutes <= 1440)) {
          fail(`--live: expected minutes from 0 to 1440, got ${JSON.stringify(flags.live)}`);
        }
        let file: string;
        try {
          file = await sampleLive(config, minutes, tmp);
        } catch (err) {
          const e = err as Error;
          process.stderr.write(`flowtrail estimate: live sample failed: ${e.message}\n`);
          process.exit(1);
        }
        records = decodeAll(fileLines(file), bad, counter);
        source = `a live sample of ${config.nodeName}`;
      } else if (logGroup) {
        const now = Date.now();
        const since = parseTime(flags.since, now);
        const until = flags.until === undefined ? now : parseTime(flags.until, now);
        if (since === undefined || until === undefined) {
          fail('--since/--until: expected 30m, 2h, 7d or an ISO date');
        }
        const region = resolveRegion(flags.region, config.sinks.cloudwatch?.region);
        if (!region) fail(regionRequired(true));
        let lines: Awaited<ReturnType<typeof cloudWatchLines>>;
        try {
          lines = await cloudWatchLines(logGroup, since, until, {
            region,
            endpoint: flags.endpoint ?? config.sinks.cloudwatch?.endpoint,
            ...(flags.stream ? { logStreamNames: [flags.stream] } : {}),
          });
        } catch (err) {
          const e = err as Error;
          process.stderr.write(`flowtrail estimate: ${logGroup}: ${e.name}: ${e.message}\n`);
          process.exit(1);
        }
        // The events stream holds JSON loss lines, not records: not counted as bad.
        records = decodeAll(
          lines.filter(([, l]) => !l.startsWith('{')),
          bad,
          counter,
        );
        source = `log group ${logGroup}`;
      } else {
        for (const f of flags.file) records.push(...decodeAll(fileLines(f), bad, counter));
        source = flags.file.join(', ');
      }
      const fl = config.flowLogs;
      const result = estimate(records, {
        prices: {
          standardPerGb: config.pricing.ingestStandardPerGb,
          infrequentAccessPerGb: config.pricing.ingestInfrequentAccessPerGb,
        },
        aggregationKindForAllowed: fl.aggregationKindForAllowed,
        aggregationKindForDenied: fl.aggregationKindForDenied,
        enabledForAllowed: fl.enabledForAllowed,
        enabledForDenied: fl.enabledForDenied,
        includePolicies: fl.includePolicies,
        volume: fl,
      });
      if (counter.bad > 0) {
        result.notes.push(
          `${counter.bad} lines were not records and were skipped (first: ${bad[0]?.where}: ${bad[0]?.message})`,
        );
      }
      if (flags.json) {
        for (const w of result.warnings)
          process.stderr.write(`flowtrail estimate: warning: ${w}\n`);
        process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      } else {
        printTable(result, source, stdoutStyle(self.optsWithGlobals()));
      }
    } catch (err) {
      if (err instanceof FlowtrailError) fail(err.message);
      throw err;
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
}
